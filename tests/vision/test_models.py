"""Every registered vision model builds, predicts probabilities and survives a save/load."""

import numpy as np
import pytest

from pipelines.core.pipeline import LabelledData
from pipelines.vision.models import MODELS
from pipelines.vision.pipeline import VisionModelConfig


def tiny_data(shape):
    return LabelledData(None, None, None, shape, {}, "test", "no fingerprint", class_names=["a", "b", "c"])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_builds_and_predicts(name, tmp_path):
    import keras

    config = VisionModelConfig(name=name, width=8, depth=1, augment=["translate", "flip"])
    model = MODELS.get(name)(config, tiny_data((12, 12, 1)))
    x = np.random.default_rng(0).uniform(0, 255, (2, 12, 12, 1)).astype("float32")
    p = model.predict(x, verbose=0)
    assert p.shape == (2, 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras", compile=False)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), p, rtol=1e-4, atol=1e-6)
