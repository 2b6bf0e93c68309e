"""Forecasting models: ``values`` [batch, context] in model space -> ``quantiles`` [batch, horizon, q].

Every model ends in the same head (one output per future step and quantile) and trains on the pinball
loss, so each forecast carries an interval.
"""

from __future__ import annotations

import dataclasses

import keras
from keras import layers

from pipelines.core.layers import PositionEmbedding, encoder_block
from pipelines.core.registry import Registry

MODELS = Registry("forecast model")


@dataclasses.dataclass
class ForecastModelConfig:
    name: str = "mlp"
    width: int = 256  # units of the dense layers / filters / LSTM units / model dimension
    depth: int = 3  # N-BEATS blocks, convolution layers, LSTM layers, Transformer blocks
    dropout: float = 0.0
    kernel_size: int = 3  # cnn
    heads: int = 4  # transformer
    quantiles: list[float] = dataclasses.field(default_factory=lambda: [0.1, 0.5, 0.9])


@keras.saving.register_keras_serializable(package="dlapps")
class PinballLoss(keras.losses.Loss):
    """Mean quantile (pinball) loss of [batch, horizon, q] predictions against [batch, horizon] targets."""

    def __init__(self, quantiles, name="pinball_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.quantiles = [float(q) for q in quantiles]

    def call(self, y_true, y_pred):
        levels = keras.ops.convert_to_tensor(self.quantiles, dtype=y_pred.dtype)
        error = keras.ops.expand_dims(keras.ops.cast(y_true, y_pred.dtype), -1) - y_pred
        return keras.ops.mean(keras.ops.maximum(levels * error, (levels - 1) * error), axis=-1)

    def get_config(self):
        return {**super().get_config(), "quantiles": self.quantiles}


def _head(x, horizon: int, quantiles: int, dropout: float):
    if dropout > 0:
        x = layers.Dropout(dropout)(x)
    x = layers.Dense(horizon * quantiles, dtype="float32")(x)
    return layers.Reshape((horizon, quantiles), name="quantiles")(x)


def _last_step(x, context: int):
    """[batch, steps, features] -> the last step's features (layers only: no Lambda, which loads unsafely)."""
    return layers.Flatten()(layers.Cropping1D((context - 1, 0))(x))


def _input(context: int):
    return keras.Input((context,), name="values")


@MODELS.register("linear")
def linear(config: ForecastModelConfig, context: int, horizon: int) -> keras.Model:
    """One dense layer from the context to every step and quantile (an autoregression)."""
    values = _input(context)
    return keras.Model(values, _head(values, horizon, len(config.quantiles), 0.0), name="linear")


@MODELS.register("mlp")
def mlp(config: ForecastModelConfig, context: int, horizon: int) -> keras.Model:
    """N-BEATS-style generic blocks: each explains part of the context (backcast) and adds its forecast."""
    values = _input(context)
    residual, forecasts = values, []
    for _ in range(config.depth):
        hidden = residual
        for _ in range(2):
            hidden = layers.Dense(config.width, activation="relu")(hidden)
        residual = layers.Subtract()([residual, layers.Dense(context)(hidden)])
        forecasts.append(layers.Dense(config.width)(hidden))
    summed = forecasts[0] if len(forecasts) == 1 else layers.Add()(forecasts)
    return keras.Model(values, _head(summed, horizon, len(config.quantiles), config.dropout), name="mlp")


@MODELS.register("cnn")
def cnn(config: ForecastModelConfig, context: int, horizon: int) -> keras.Model:
    """Dilated causal convolutions (dilation 1, 2, 4, ...), residual; the last step's features forecast."""
    values = _input(context)
    x = layers.Conv1D(config.width, 1)(layers.Reshape((context, 1))(values))
    for level in range(config.depth):
        h = layers.Conv1D(
            config.width, config.kernel_size, padding="causal", dilation_rate=2**level, activation="relu"
        )(x)
        x = layers.Add()([x, h])
    last = _last_step(x, context)
    features = layers.Concatenate()([last, values])  # the raw context too: the level is not lost
    return keras.Model(values, _head(features, horizon, len(config.quantiles), config.dropout), name="cnn")


@MODELS.register("lstm")
def lstm(config: ForecastModelConfig, context: int, horizon: int) -> keras.Model:
    """Stacked LSTMs over the context; the last state forecasts every step at once."""
    values = _input(context)
    x = layers.Reshape((context, 1))(values)
    for level in range(config.depth):
        x = layers.LSTM(config.width, return_sequences=level < config.depth - 1)(x)
    return keras.Model(values, _head(x, horizon, len(config.quantiles), config.dropout), name="lstm")


@MODELS.register("transformer")
def transformer(config: ForecastModelConfig, context: int, horizon: int) -> keras.Model:
    """Transformer encoder over the context steps (learned positions); pooled and last step forecast."""
    values = _input(context)
    dim = max(config.heads, config.width // config.heads * config.heads)
    x = PositionEmbedding()(layers.Dense(dim)(layers.Reshape((context, 1))(values)))
    for _ in range(config.depth):
        x = encoder_block(x, config.heads, dim, config.dropout)
    x = layers.LayerNormalization()(x)
    last = _last_step(x, context)
    features = layers.Concatenate()([layers.GlobalAveragePooling1D()(x), last])
    return keras.Model(values, _head(features, horizon, len(config.quantiles), config.dropout), name="transformer")
