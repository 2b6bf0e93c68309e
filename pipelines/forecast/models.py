"""Forecasting models: ``values`` [batch, context] in model space -> ``quantiles`` [batch, horizon, q].

Covariates, where the data has them, come as two more inputs: ``known`` [batch, context + horizon, k] (known
in advance, so also for the steps to forecast) and ``past`` [batch, context, p] (observed up to the origin).
Models that read steps (cnn, lstm, transformer) see them as extra channels of each context step; dense
models (linear, mlp) read them flattened; every model reads the known values of the steps to forecast in its
head. Every model ends in the same head (one output per future step and quantile) and trains on the pinball
loss, so each forecast carries an interval.
"""

from __future__ import annotations

import dataclasses

import keras
from keras import layers

from pipelines.core.config import Dropout, Fraction, Small, Width
from pipelines.core.layers import PositionEmbedding, Whitening, encoder_block
from pipelines.core.registry import Registry

MODELS = Registry("forecast model")
# The longest context the linear model whitens: its matrix is context x context (64 MiB at 4,096 steps, and its
# eigendecomposition some seconds); beyond it the context goes in as it is.
WHITEN_AT_MOST = 4096


@dataclasses.dataclass
class ForecastModelConfig:
    # linear: on the shared electricity, CO2 and MSFT series it beats the mlp (benchmarks/README.md, issue 16)
    name: str = "linear"
    width: Width = 256  # units of the dense layers / filters / LSTM units / model dimension
    depth: Small = 3  # N-BEATS blocks, convolution layers, LSTM layers, Transformer blocks
    dropout: Dropout = 0.0
    kernel_size: Small = 3  # cnn
    heads: Small = 4  # transformer
    quantiles: list[Fraction] = dataclasses.field(default_factory=lambda: [0.1, 0.5, 0.9])
    # Copies of the model trained side by side, member k of M reading the last k/M of the context; the forecast
    # is their mean (N-BEATS' ensemble over lookback lengths). Two members of the linear default on the shared
    # electricity: MASE 0.62 -> 0.54, mean of 3 seeds (benchmarks/README.md). Each should see whole seasons: a
    # member that sees part of one forecasts badly and spoils the mean (three members of two weeks there: 1.17).
    members: Small = 2


@dataclasses.dataclass(frozen=True)
class Layout:
    """What a model reads and writes: steps of context and horizon, and its covariate columns."""

    context: int
    horizon: int
    known: int = 0  # columns known in advance
    past: int = 0  # columns observed up to the origin


@keras.saving.register_keras_serializable(package="dlapps")
class PinballLoss(keras.losses.Loss):
    """Mean quantile (pinball) loss of [batch, horizon, q] predictions (or [batch, members, horizon, q]: the mean
    over members) against [batch, horizon] targets."""

    def __init__(self, quantiles, name="pinball_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.quantiles = [float(q) for q in quantiles]

    def call(self, y_true, y_pred):
        levels = keras.ops.convert_to_tensor(self.quantiles, dtype=y_pred.dtype)
        y_true = keras.ops.expand_dims(keras.ops.cast(y_true, y_pred.dtype), -1)
        if len(y_pred.shape) == 4:  # [batch, members, horizon, q]: every member against the same targets
            y_true = keras.ops.expand_dims(y_true, 1)
        error = y_true - y_pred
        return keras.ops.mean(keras.ops.maximum(levels * error, (levels - 1) * error), axis=-1)

    def get_config(self):
        return {**super().get_config(), "quantiles": self.quantiles}


def _head(x, horizon: int, quantiles: int, dropout: float):
    if dropout > 0:
        x = layers.Dropout(dropout)(x)
    # float32 to the end under mixed precision: the scaling back to original units is float32 (and a layer of the
    # float16 policy after the float32 Dense would cast the quantiles back down)
    x = layers.Dense(horizon * quantiles, dtype="float32")(x)
    return layers.Reshape((horizon, quantiles), dtype="float32")(x)


def _last_step(x, context: int):
    """[batch, steps, features] -> the last step's features (layers only: no Lambda, which loads unsafely)."""
    return layers.Flatten()(layers.Cropping1D((context - 1, 0))(x))


def _inputs(layout: Layout) -> dict:
    inputs = {"values": keras.Input((layout.context,), name="values")}
    if layout.known:
        inputs["known"] = keras.Input((layout.context + layout.horizon, layout.known), name="known")
    if layout.past:
        inputs["past"] = keras.Input((layout.context, layout.past), name="past")
    return inputs


def _steps(inputs: dict, layout: Layout):
    """[batch, context, 1 + past + known]: each context step's value and covariates, as channels."""
    channels = [layers.Reshape((layout.context, 1))(inputs["values"])]
    if "past" in inputs:
        channels.append(inputs["past"])
    if "known" in inputs:
        channels.append(layers.Cropping1D((0, layout.horizon))(inputs["known"]))
    return channels[0] if len(channels) == 1 else layers.Concatenate()(channels)


def _covariates(inputs: dict, layout: Layout, ahead_only: bool = False) -> list:
    """The covariates flattened: the known ones of the steps to forecast (``ahead_only``) or all of them."""
    found = []
    if "known" in inputs:
        known = inputs["known"]
        found.append(layers.Flatten()(layers.Cropping1D((layout.context, 0))(known) if ahead_only else known))
    if "past" in inputs and not ahead_only:
        found.append(layers.Flatten()(inputs["past"]))
    return found


def _joined(tensors: list):
    return tensors[0] if len(tensors) == 1 else layers.Concatenate()(tensors)


def _model(name: str):
    """Registers ``build(config, layout, inputs) -> quantiles [batch, horizon, q]`` as a model of ``config.members``
    members: with one, the model outputs its quantiles; with more, each member reads the last part of the
    context its lookback names and the model outputs all of them, [batch, members, horizon, q], so the pinball
    loss trains every member on its own error (a loss on their mean would train one model of them all);
    the forecast (``combined``) is their mean."""

    def register(build):
        def model(config: ForecastModelConfig, layout: Layout) -> keras.Model:
            inputs = _inputs(layout)
            if config.members == 1:
                return keras.Model(inputs, build(config, layout, inputs), name=name)
            outputs = []
            for steps in lookbacks(layout.context, config.members):
                part = Layout(steps, layout.horizon, layout.known, layout.past)
                outputs.append(
                    layers.Reshape((1, layout.horizon, len(config.quantiles)), dtype="float32")(
                        build(config, part, _cropped(inputs, layout, steps))
                    )
                )
            return keras.Model(inputs, layers.Concatenate(axis=1, name="members", dtype="float32")(outputs), name=name)

        model.__doc__ = build.__doc__
        MODELS.register(name)(model)
        return build

    return register


def lookbacks(context: int, members: int) -> list[int]:
    """Context steps each member reads: k/M of the context for member k of M (at least one step)."""
    return [max(1, -(-context * k // members)) for k in range(1, members + 1)]


def _cropped(inputs: dict, layout: Layout, steps: int) -> dict:
    """The inputs of a member reading the last ``steps`` of the context (the known covariates' future stays)."""
    drop = layout.context - steps
    if not drop:
        return inputs
    cropped = {"values": layers.Cropping1D((drop, 0))(layers.Reshape((layout.context, 1))(inputs["values"]))}
    cropped["values"] = layers.Reshape((steps,))(cropped["values"])
    for key in ("known", "past"):
        if key in inputs:
            cropped[key] = layers.Cropping1D((drop, 0))(inputs[key])
    return cropped


def combined(quantiles):
    """A model's output as one forecast [batch, horizon, q]: the members' mean where it has several."""
    return keras.ops.mean(quantiles, axis=1) if len(quantiles.shape) == 4 else quantiles


@_model("linear")
def linear(config: ForecastModelConfig, layout: Layout, inputs: dict):
    """One dense layer from the whitened context (and covariates) to every step and quantile: an autoregression.
    The context is whitened on the training windows (the pipeline adapts the layer), so gradient descent on the
    pinball loss reaches the weights least squares would find on correlated values."""
    values = inputs["values"]
    if layout.context <= WHITEN_AT_MOST:
        values = Whitening()(values)
    features = _joined([values, *_covariates(inputs, layout)])
    return _head(features, layout.horizon, len(config.quantiles), 0.0)


@_model("mlp")
def mlp(config: ForecastModelConfig, layout: Layout, inputs: dict):
    """N-BEATS-style generic blocks: each explains part of the context (backcast) and adds its forecast; with
    covariates every block reads them beside the unexplained rest (as N-BEATSx does)."""
    covariates = _covariates(inputs, layout)
    residual, forecasts = inputs["values"], []
    for _ in range(config.depth):
        hidden = _joined([residual, *covariates])
        for _ in range(2):
            hidden = layers.Dense(config.width, activation="relu")(hidden)
        residual = layers.Subtract()([residual, layers.Dense(layout.context)(hidden)])
        forecasts.append(layers.Dense(config.width)(hidden))
    summed = forecasts[0] if len(forecasts) == 1 else layers.Add()(forecasts)
    return _head(summed, layout.horizon, len(config.quantiles), config.dropout)


@_model("cnn")
def cnn(config: ForecastModelConfig, layout: Layout, inputs: dict):
    """Dilated causal convolutions (dilation 1, 2, 4, ...), residual; the last step's features forecast."""
    x = layers.Conv1D(config.width, 1)(_steps(inputs, layout))
    for level in range(config.depth):
        h = layers.Conv1D(
            config.width, config.kernel_size, padding="causal", dilation_rate=2**level, activation="relu"
        )(x)
        x = layers.Add()([x, h])
    last = _last_step(x, layout.context)
    # The raw context too (the level is not lost), and the known covariates of the steps to forecast.
    features = _joined([last, inputs["values"], *_covariates(inputs, layout, ahead_only=True)])
    return _head(features, layout.horizon, len(config.quantiles), config.dropout)


@_model("lstm")
def lstm(config: ForecastModelConfig, layout: Layout, inputs: dict):
    """Stacked LSTMs over the context; the last state forecasts every step at once."""
    x = _steps(inputs, layout)
    for level in range(config.depth):
        x = layers.LSTM(config.width, return_sequences=level < config.depth - 1)(x)
    features = _joined([x, *_covariates(inputs, layout, ahead_only=True)])
    return _head(features, layout.horizon, len(config.quantiles), config.dropout)


@_model("transformer")
def transformer(config: ForecastModelConfig, layout: Layout, inputs: dict):
    """Transformer encoder over the context steps (learned positions); pooled and last step forecast."""
    dim = max(config.heads, config.width // config.heads * config.heads)
    x = PositionEmbedding()(layers.Dense(dim)(_steps(inputs, layout)))
    for _ in range(config.depth):
        x = encoder_block(x, config.heads, dim, config.dropout)
    x = layers.LayerNormalization()(x)
    pooled = [layers.GlobalAveragePooling1D()(x), _last_step(x, layout.context)]
    features = _joined([*pooled, *_covariates(inputs, layout, ahead_only=True)])
    return _head(features, layout.horizon, len(config.quantiles), config.dropout)
