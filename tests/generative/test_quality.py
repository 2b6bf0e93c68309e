"""The quality figures on sets whose answers are known, and seeds that always give the same latent."""

import numpy as np
import pytest
import tensorflow as tf

from pipelines.generative import quality
from pipelines.generative.pipeline import latents_from_seeds, to_uint8


def test_frechet_distance_of_known_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20_000, 3))
    assert quality.frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    shifted = a + np.array([3.0, 0, 0])
    assert quality.frechet_distance(a, shifted) == pytest.approx(9.0, rel=1e-6)  # the mean moved by 3
    wider = a * 2  # covariance 4I against I: 3 * (1 + 4 - 2 * 2) = 3
    assert quality.frechet_distance(a, wider) == pytest.approx(3.0, rel=0.02)


def test_quality_shares_and_confidence():
    probabilities = np.array([[0.95, 0.05], [0.6, 0.4], [0.1, 0.9], [0.02, 0.98]])
    found = quality.quality(np.eye(4), probabilities, np.eye(4))
    assert found["recognisable"] == 0.75 and found["class_shares"] == [0.5, 0.5]
    assert found["class_entropy"] == pytest.approx(np.log(2)) and found["images"] == 4


def test_a_seed_always_gives_the_same_latent():
    first = latents_from_seeds(tf.constant([5, 6, 7], tf.int64), 4).numpy()
    alone = latents_from_seeds(tf.constant([6], tf.int64), 4).numpy()
    assert np.array_equal(first[1], alone[0]) and not np.array_equal(first[0], first[1])
    assert to_uint8(tf.constant([-1.0, 0.0, 1.0, 2.0])).numpy().tolist() == [0, 128, 255, 255]
