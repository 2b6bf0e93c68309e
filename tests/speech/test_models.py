"""Every registered speech model builds on its input kind, trains a step, and survives a save/load;
the augmentation layers act in training only."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipelines.core.errors import UserError
from pipelines.speech.audio import Frontend
from pipelines.speech.models import MODELS, WAVEFORM_MODELS, SpecAugment, TimeShift, Warp
from pipelines.speech.pipeline import SpeechData, SpeechModelConfig


def tiny_data(kind: str, rng) -> tuple[SpeechData, np.ndarray]:
    frontend = Frontend(kind, 8000, 4000)
    x = frontend(tf.constant(rng.normal(0, 0.1, (6, 4000)), tf.float32)).numpy()
    silence = frontend(tf.zeros([1, 4000]))[0, 0].numpy()
    stats = tf.data.Dataset.from_tensor_slices(x).batch(3)
    data = SpeechData(
        None,
        None,
        None,
        input_shape=frontend.output_shape,
        sizes={},
        source="test",
        fingerprint="test",
        class_names=["a", "b", "c"],
        frontend=frontend,
        silence=silence,
        stats_source=stats,
    )
    return data, x


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_builds_trains_and_round_trips(name, tmp_path):
    kind = "waveform" if name in WAVEFORM_MODELS else "logmel"
    augment = ["shift"] if kind == "waveform" else ["shift", "warp", "specaugment"]
    data, x = tiny_data(kind, np.random.default_rng(0))
    model = MODELS.get(name)(SpeechModelConfig(name=name, width=8, depth=1, augment=augment), data)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, np.array([0, 1, 2, 0, 1, 2]), epochs=1, verbose=0)
    p = model.predict(x, verbose=0)
    assert p.shape == (6, 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(model.predict(x, verbose=0), p, rtol=1e-6)  # no augmentation at inference
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras", compile=False)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), p, rtol=1e-4, atol=1e-6)


def test_models_refuse_the_wrong_input_kind():
    data, _ = tiny_data("waveform", np.random.default_rng(0))
    with pytest.raises(UserError, match="reads spectral features"):
        MODELS.get("cnn")(SpeechModelConfig(), data)
    with pytest.raises(UserError, match="SpecAugment needs spectral input"):
        MODELS.get("wave_cnn")(SpeechModelConfig(name="wave_cnn", augment=["specaugment"]), data)
    with pytest.raises(UserError, match="unknown augmentation echo"):
        MODELS.get("wave_cnn")(SpeechModelConfig(name="wave_cnn", augment=["echo"]), data)


def test_time_shift_moves_frames_and_fills_with_silence():
    keras.utils.set_random_seed(0)
    x = tf.reshape(tf.range(1.0, 11.0), [1, 10, 1]) * tf.ones([4, 1, 2])
    shifted = TimeShift(3, silence=[-5.0, -5.0])(x, training=True).numpy()
    for row in shifted[..., 0]:
        kept = row[row != -5.0]
        assert len(kept) >= 7 and np.all(np.diff(kept) == 1)  # a contiguous run of the original frames
    assert np.array_equal(TimeShift(3, silence=[0.0, 0.0])(x, training=False), x)


def test_spec_augment_masks_bands_of_time_and_frequency():
    keras.utils.set_random_seed(1)
    masked = SpecAugment(2, 3, 2, 2)(tf.ones([8, 20, 10]), training=True).numpy()
    assert 0 < (masked == 0).mean() < 0.6
    zero_frames = (masked == 0).all(axis=2)
    assert zero_frames.any()  # whole frames silenced: a time mask


def test_warp_is_the_identity_at_zero_and_stretches_otherwise():
    keras.utils.set_random_seed(2)
    x = tf.random.normal([4, 30, 12])
    np.testing.assert_allclose(Warp(0.0, 0.0, np.zeros(12))(x, training=True), x, atol=1e-6)
    ramp = tf.tile(tf.range(12.0)[None, None, :], [4, 30, 1])  # bin b holds the value b
    warped = Warp(0.0, 0.2, np.zeros(12))(ramp, training=True).numpy()
    slopes = warped[:, 0, 1] - warped[:, 0, 0]  # the warp factor of each clip
    assert np.all((slopes >= 0.8 - 1e-5) & (slopes <= 1.2 + 1e-5)) and np.ptp(slopes) > 0
    np.testing.assert_allclose(Warp(0.3, 0.3, np.zeros(12))(ramp, training=False), ramp)
