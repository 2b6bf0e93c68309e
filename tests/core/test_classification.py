import keras
import numpy as np

from pipelines.core.classification import SmoothedSparseCrossentropy


def test_smoothed_loss_matches_dense_label_smoothing_and_survives_save_load(tmp_path):
    y = np.array([0, 2])
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], dtype="float32")
    loss = SmoothedSparseCrossentropy(0.1, 3)
    expected = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(np.eye(3)[y], p)
    np.testing.assert_allclose(float(loss(y, p)), float(expected), rtol=1e-6)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss=loss)
    model.save(tmp_path / "m.keras")
    assert isinstance(keras.models.load_model(tmp_path / "m.keras").loss, SmoothedSparseCrossentropy)
