"""Every generative model trains each of its networks, in float32 and under mixed float16 (loss scaling)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipelines.core.training import precision_policy
from pipelines.generative import models
from pipelines.generative.pipeline import GenerativeModelConfig
from tests.helpers import trains_every_network

CLASS_HEAD = [(name, 0.0) for name in sorted(models.MODELS)] + [("cgan", 1.0)]  # cgan with AC-GAN's class head too


@pytest.mark.parametrize("mixed", [False, True], ids=["float32", "mixed_float16"])
@pytest.mark.parametrize("name, class_loss_weight", CLASS_HEAD)
def test_every_model_trains_every_network(name, class_loss_weight, mixed):
    keras.utils.set_random_seed(0)
    config = GenerativeModelConfig(width=8, latent_dim=8, class_loss_weight=class_loss_weight)
    rng = np.random.default_rng(0)
    images, labels = rng.uniform(-1, 1, (32, 8, 8, 1)).astype("float32"), rng.integers(0, 3, 32)
    with precision_policy(mixed):
        model = models.MODELS.get(name)(config, models.Shape((8, 8, 1), 3))
        extra = {} if name == "vae" else {"discriminator_optimizer": keras.optimizers.Adam(1e-3)}
        model.compile(optimizer=keras.optimizers.Adam(1e-3), **extra)
    if mixed:  # every optimizer scales its loss, or float16 gradients underflow
        optimizers = [model.optimizer] + ([] if name == "vae" else [model.discriminator_optimizer])
        assert all(isinstance(o, keras.optimizers.LossScaleOptimizer) for o in optimizers)
    logs = trains_every_network(model, tf.data.Dataset.from_tensor_slices((images, labels)).batch(8))
    assert all(np.isfinite(value) for value in logs.values())
