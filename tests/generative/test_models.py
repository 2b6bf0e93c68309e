"""Every generative model trains each of its networks, in float32 and under mixed float16 (loss scaling)."""

import numpy as np
import pytest
import keras
import tensorflow as tf

from pipelines.core.training import precision_policy
from pipelines.generative import models
from pipelines.generative.pipeline import GenerativeModelConfig
from tests.helpers import trains_every_network


@pytest.mark.parametrize("mixed", [False, True], ids=["float32", "mixed_float16"])
@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_every_model_trains_every_network(name, mixed):
    keras.utils.set_random_seed(0)
    config = GenerativeModelConfig(width=8, latent_dim=8, class_loss_weight=1.0)
    rng = np.random.default_rng(0)
    images, labels = rng.uniform(-1, 1, (32, 8, 8, 1)).astype("float32"), rng.integers(0, 3, 32)
    with precision_policy(mixed):
        model = models.MODELS.get(name)(config, models.Shape((8, 8, 1), 3))
        extra = {} if name == "vae" else {"discriminator_optimizer": keras.optimizers.Adam(1e-3)}
        model.compile(optimizer=keras.optimizers.Adam(1e-3), **extra)
    logs = trains_every_network(model, tf.data.Dataset.from_tensor_slices((images, labels)).batch(8))
    assert all(np.isfinite(value) for value in logs.values())
