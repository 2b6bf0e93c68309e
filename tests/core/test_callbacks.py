import keras
import numpy as np
import tensorflow as tf

from pipelines.core.callbacks import collect


def test_collect_keeps_every_answer_and_shows_mistakes_first():
    # An identity "model": its inputs are its probabilities, so the answers are known.
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6], [0.6, 0.4]], dtype="float32")
    labels = np.array([0, 1, 1, 1, 1])  # examples 2 and 4 are wrong
    model = keras.Sequential([keras.Input((2,)), keras.layers.Identity()])
    answers = collect(model, tf.data.Dataset.from_tensor_slices((probabilities, labels)).batch(2), keep=3)
    assert answers.y_true.tolist() == labels.tolist()
    np.testing.assert_allclose(answers.probabilities, probabilities, rtol=1e-6)
    assert answers.sample_index.tolist() == [2, 4, 0]
    np.testing.assert_allclose(answers.sample_inputs, probabilities[[2, 4, 0]])
    assert answers.render(lambda x, y, p, names: bytes(len(y)), ["a", "b"]) == bytes(3)
