"""Every registered fraud model builds on raw columns, trains a step and scores finitely; the custom layers
compute what they say."""

import datetime

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipelines.fraud import models
from pipelines.fraud.models import Feature
from pipelines.fraud.pipeline import FraudModelConfig

FEATURES = [
    Feature("amount", "amount", "numeric", log1p=True),
    Feature("rate", "rate", "numeric", fill=0.0),
    Feature("shop", "shop", "categorical", vocabulary=["a", "b"]),
    Feature("when", "when", "datetime"),
]


def raw_columns(n=64, seed=0):
    rng = np.random.default_rng(seed)
    rate = rng.random(n)
    rate[::7] = np.nan
    stamps = np.datetime64("2018-07-25T00:00:00") + rng.integers(0, 30 * 86_400, n).astype("timedelta64[s]")
    return {
        "amount": rng.exponential(50, n),
        "rate": rate,
        "shop": rng.choice(["a", "b", "c"], n).astype(object),
        "when": np.char.replace(np.datetime_as_string(stamps, unit="s"), "T", " ").astype(object),
    }


def batches(columns, labels=None, steps=1):
    """Each row as a history of ``steps`` transactions (the row and the ones before it, repeated at the start)."""
    history = np.maximum(
        np.arange(len(labels if labels is not None else columns["amount"]))[:, None] - np.arange(steps)[::-1], 0
    )
    inputs = {k: (v.astype(np.float32) if v.dtype != object else v.astype(str))[history] for k, v in columns.items()}
    return tf.data.Dataset.from_tensor_slices(inputs if labels is None else (inputs, labels)).batch(16)


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_every_model_trains_and_scores_finitely(name):
    keras.utils.set_random_seed(0)
    columns = raw_columns()
    steps = 3 if name in models.SEQUENCES else 0
    inputs, encoded = models.feature_inputs(FEATURES, columns, steps)
    model = models.MODELS.get(name)(FraudModelConfig(width=8, depth=1), inputs, encoded)
    assert encoded.shape[-1] == 1 + 1 + 3 + 4  # two numbers, a 2-value lookup with its unknown bucket, 4 calendar parts
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=[models.FraudPRAUC()])
    labels = (np.arange(64) % 8 == 0).astype(int)
    model.fit(batches(columns, labels, steps or 1), epochs=1, verbose=0)
    probabilities = model.predict(batches(raw_columns(seed=1), steps=steps or 1), verbose=0)
    assert probabilities.shape == (64, 2) and np.isfinite(probabilities).all()
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)


def test_datetime_parts_match_python_calendar():
    stamps = ["2018-07-25 13:30:00", "2000-02-29 00:00:00", "1999-12-31 23:59:59", "2024-03-01", "2018-04-01 06:00"]
    parts = models.DateTimeParts()(tf.constant(stamps)[:, None]).numpy()
    for text, (hour_sin, hour_cos, day_sin, day_cos) in zip(stamps, parts):
        when = datetime.datetime.fromisoformat(text)
        hours = (when.hour + when.minute / 60) * 2 * np.pi / 24
        weekday = when.weekday() * 2 * np.pi / 7
        assert np.allclose(
            [hour_sin, hour_cos, day_sin, day_cos],
            [np.sin(hours), np.cos(hours), np.sin(weekday), np.cos(weekday)],
            atol=1e-5,
        ), text


def test_preprocessing_layers():
    x = tf.constant([[0.0], [9.0], [-9.0], [np.nan]])
    assert np.allclose(models.SignedLog1p()(x).numpy()[:3, 0], [0, np.log(10), -np.log(10)])
    assert models.FillMissing(5.0)(x).numpy()[:, 0].tolist() == [0, 9, -9, 5]
    score = models.ReconstructionScore()([tf.zeros((2, 3)), tf.constant([[0.0, 0, 0], [3.0, 3, 3]])]).numpy()
    assert np.allclose(score, [[1, 0], [0.1, 0.9]])  # error 0 and 9


def test_focal_loss_weighs_easy_examples_down():
    loss = models.SparseFocalCrossentropy(gamma=2.0, reduction=None)
    easy, hard = loss(np.array([0, 0]), np.array([[0.99, 0.01], [0.4, 0.6]])).numpy()
    assert easy < 1e-5 < hard and np.isclose(hard, 0.6**2 * -np.log(0.4))
