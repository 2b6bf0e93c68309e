"""Fraud models on raw transaction columns: preprocessing layers first, then a scorer.

Every model takes one input per feature column (numbers float32 [batch, 1], text and datetimes
string [batch, 1]) and returns [p(legitimate), p(fraud)], so the shared classification
metrics, the tuned threshold and the export treat it like any two-class model. The
preprocessing (log1p, missing values, normalisation, category lookup, calendar parts of a
datetime) is adapted on the training split and saved inside the model.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from pipelines.core.registry import Registry

MODELS = Registry("fraud model")


@dataclasses.dataclass
class Feature:
    """One raw column as the model sees it (decided on the training split)."""

    column: str  # as the file names it
    input_name: str  # the model's (and serving signature's) name for it
    kind: str  # numeric | categorical | datetime
    log1p: bool = False
    fill: float | None = None  # replaces missing values (NaN); None: none expected
    vocabulary: list[str] | None = None  # categorical: the most frequent training values

    def describe(self) -> str:
        notes = (
            [self.kind]
            + (["log1p"] if self.log1p else [])
            + ([f"missing -> {self.fill:g}"] if self.fill is not None else [])
        )
        if self.vocabulary is not None:
            notes.append(f"{len(self.vocabulary)} values")
        return f"{self.column} ({', '.join(notes)})"


@keras.saving.register_keras_serializable(package="dlapps")
class SignedLog1p(layers.Layer):
    """sign(x) * log(1 + |x|): long-tailed amounts and counts onto a scale a dense layer can use."""

    def call(self, x):
        return tf.sign(x) * tf.math.log1p(tf.abs(x))


@keras.saving.register_keras_serializable(package="dlapps")
class FillMissing(layers.Layer):
    """NaN -> a fixed value (the training median or zero, as data.missing asked)."""

    def __init__(self, value: float, **kwargs):
        super().__init__(**kwargs)
        self.value = value

    def call(self, x):
        return tf.where(tf.math.is_nan(x), tf.cast(self.value, x.dtype), x)

    def get_config(self):
        return {**super().get_config(), "value": self.value}


@keras.saving.register_keras_serializable(package="dlapps")
class DateTimeParts(layers.Layer):
    """ISO datetime text ('2018-07-25 13:05:00', or a date alone) -> time of day and day of week as points on
    circles (sin, cos), so 23:59 sits next to 00:00 and Sunday next to Monday."""

    def call(self, text):
        shape = tf.shape(text)  # [batch, 1] or [batch, steps, 1]
        text = tf.strings.substr(tf.strings.join([tf.reshape(text, [-1]), " 00:00:00"]), 0, 19)
        part = lambda start, length: tf.strings.to_number(tf.strings.substr(text, start, length), tf.float32)  # noqa: E731
        year, month, day, hour, minute = part(0, 4), part(5, 2), part(8, 2), part(11, 2), part(14, 2)
        # Days since 1970-01-01 (H. Hinnant's days_from_civil), then Monday = 0 (1970-01-01 was a Thursday).
        y = year - tf.cast(month <= 2, tf.float32)
        era = tf.floor(y / 400)
        year_of_era = y - era * 400
        day_of_year = tf.floor((153 * tf.math.floormod(month + 9, 12) + 2) / 5) + day - 1
        day_of_era = year_of_era * 365 + tf.floor(year_of_era / 4) - tf.floor(year_of_era / 100) + day_of_year
        weekday = tf.math.floormod(era * 146097 + day_of_era - 719468 + 3, 7)
        hours = (hour + minute / 60) * (2 * math.pi / 24)
        days = weekday * (2 * math.pi / 7)
        parts = tf.stack([tf.sin(hours), tf.cos(hours), tf.sin(days), tf.cos(days)], axis=-1)
        return tf.reshape(parts, tf.concat([shape[:-1], [4]], axis=0))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 4)


@keras.saving.register_keras_serializable(package="dlapps")
class ReconstructionScore(layers.Layer):
    """Mean squared reconstruction error e -> [1 / (1 + e), e / (1 + e)]: a fraud score that rises with e.
    Cross-entropy on legitimate rows (label 0) is then log(1 + e), so training the class output
    trains the autoencoder."""

    def call(self, inputs):
        target, reconstruction = inputs
        error = tf.reduce_mean(tf.square(reconstruction - tf.stop_gradient(target)), axis=-1, keepdims=True)
        return tf.concat([1 / (1 + error), error / (1 + error)], axis=-1)

    def compute_output_shape(self, input_shapes):
        return (input_shapes[0][0], 2)


@keras.saving.register_keras_serializable(package="dlapps")
class SparseFocalCrossentropy(keras.losses.Loss):
    """Focal loss on integer labels: cross-entropy scaled by (1 - p_true)^gamma, so the many easy legitimate
    transactions weigh less than the hard ones."""

    def __init__(self, gamma: float = 2.0, name: str = "sparse_focal_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.gamma = gamma

    def call(self, y_true, y_pred):
        labels = tf.cast(tf.reshape(y_true, [-1]), tf.int32)
        p_true = tf.clip_by_value(tf.gather(y_pred, labels, axis=1, batch_dims=1), 1e-7, 1.0)
        return -tf.pow(1 - p_true, self.gamma) * tf.math.log(p_true)

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma}


@keras.saving.register_keras_serializable(package="dlapps")
class FraudPRAUC(keras.metrics.AUC):
    """Average precision (area under the precision-recall curve) of the fraud class, from [p(legit), p(fraud)]."""

    def __init__(self, name: str = "pr_auc", **kwargs):
        kwargs.setdefault("curve", "PR")
        kwargs.setdefault("num_thresholds", 1000)
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(tf.reshape(y_true, [-1]), y_pred[:, 1], sample_weight)


def feature_inputs(
    features: list[Feature], train_columns: dict[str, np.ndarray], steps: int = 0
) -> tuple[dict, tf.Tensor]:
    """Keras inputs, one per raw column, and their encoding as one float vector (adapted on ``train_columns``):
    [batch, 1] columns -> [batch, width], or with ``steps`` [batch, steps] columns (a customer's last transactions)
    -> [batch, steps, width]."""
    inputs, encoded = {}, []
    for feature in features:
        numeric = feature.kind == "numeric"
        x = inputs[feature.input_name] = keras.Input(
            (steps or 1,), dtype="float32" if numeric else "string", name=feature.input_name
        )
        if steps:
            x = layers.Reshape((steps, 1), name=f"{feature.input_name}_steps")(x)
        if feature.kind == "datetime":
            encoded.append(DateTimeParts(name=f"{feature.input_name}_parts")(x))
        elif feature.kind == "categorical":
            encoded.append(
                layers.StringLookup(
                    vocabulary=feature.vocabulary, output_mode="one_hot", name=f"{feature.input_name}_lookup"
                )(x)
            )
        else:
            encoded.append(numeric_encoding(feature, x, train_columns[feature.column]))
    vector = encoded[0] if len(encoded) == 1 else layers.Concatenate(name="features")(encoded)
    return inputs, vector


def numeric_encoding(feature: Feature, x, train_values: np.ndarray):
    values = train_values.astype(np.float32).reshape(-1, 1)
    if feature.fill is not None:
        x = FillMissing(feature.fill, name=f"{feature.input_name}_fill")(x)
        values = np.where(np.isnan(values), np.float32(feature.fill), values)
    if feature.log1p:
        x = SignedLog1p(name=f"{feature.input_name}_log1p")(x)
        values = np.sign(values) * np.log1p(np.abs(values))
    normalization = layers.Normalization(name=f"{feature.input_name}_normalized")
    normalization.adapt(values)
    return normalization(x)


def two_class_output(x, l2: float = 0.0):
    regularizer = keras.regularizers.L2(l2) if l2 else None
    return layers.Dense(2, activation="softmax", dtype="float32", kernel_regularizer=regularizer, name="probabilities")(
        x
    )


def hidden_layers(x, config, prefix: str):
    regularizer = keras.regularizers.L2(config.l2) if config.l2 else None
    for i in range(config.depth):
        x = layers.Dense(config.width, activation="relu", kernel_regularizer=regularizer, name=f"{prefix}_{i}")(x)
        if config.dropout:
            x = layers.Dropout(config.dropout)(x)
    return x


@MODELS.register("logistic")
def build_logistic(config, inputs: dict, encoded) -> keras.Model:
    """Logistic regression on the encoded columns (the handbook's baseline)."""
    return keras.Model(inputs, two_class_output(encoded, config.l2), name="logistic")


@MODELS.register("mlp")
def build_mlp(config, inputs: dict, encoded) -> keras.Model:
    """Feed-forward net with a linear skip from the encoded columns to the output (default)."""
    hidden = hidden_layers(encoded, config, "hidden")
    # The skip keeps logistic regression's linear view of the columns; the hidden layers add the interactions.
    return keras.Model(inputs, two_class_output(layers.Concatenate()([hidden, encoded]), config.l2), name="mlp")


@MODELS.register("autoencoder")
def build_autoencoder(config, inputs: dict, encoded) -> keras.Model:
    """Autoencoder trained on legitimate transactions only; its reconstruction error is the fraud score."""
    width = encoded.shape[-1]
    code = hidden_layers(encoded, dataclasses.replace(config, dropout=0.0), "encoder")
    code = layers.Dense(max(2, config.width // 4), activation="relu", name="code")(code)
    decoded = hidden_layers(code, dataclasses.replace(config, dropout=0.0), "decoder")
    reconstruction = layers.Dense(width, name="reconstruction")(decoded)
    return keras.Model(inputs, ReconstructionScore(name="probabilities")([encoded, reconstruction]), name="autoencoder")


@MODELS.register("sequence")
def build_sequence(config, inputs: dict, encoded) -> keras.Model:
    """LSTM over each customer's last model.sequence_length transactions, the scored one last (handbook ch. 7)."""
    regularizer = keras.regularizers.L2(config.l2) if config.l2 else None
    history = layers.LSTM(config.width, kernel_regularizer=regularizer, name="history")(encoded)
    if config.dropout:
        history = layers.Dropout(config.dropout)(history)
    steps = encoded.shape[1]
    current = layers.Flatten()(layers.Cropping1D((steps - 1, 0), name="scored_transaction")(encoded))
    return keras.Model(inputs, two_class_output(layers.Concatenate()([history, current]), config.l2), name="sequence")


UNSUPERVISED = ("autoencoder",)  # trained on legitimate transactions only
SEQUENCES = ("sequence",)  # their inputs are [batch, model.sequence_length]: a customer's last transactions
