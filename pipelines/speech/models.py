"""Speech models, registered by name. Each takes the frontend's output (log-mel or MFCC frames
[frames, bins], or a waveform [samples]) and returns class probabilities.

Every model starts the same way: time shift (training only) -> per-bin normalisation,
adapted on the training split -> SpecAugment masks (training only, spectral inputs). Being
layers, they travel with the saved model; the augmentations are no-ops when serving.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from pipelines.core.errors import UserError
from pipelines.core.layers import PositionEmbedding, batch_norm, classifier_head, encoder_block
from pipelines.core.registry import Registry

MODELS = Registry("speech model")
MODEL_AUGMENTATIONS = ("shift", "warp", "specaugment")  # the others (noise, crop) act on waveforms in tf.data


@keras.saving.register_keras_serializable(package="dlapps")
class TimeShift(layers.Layer):
    """Shift each clip in time by up to ``max_shift`` steps either way, filling with silence."""

    def __init__(self, max_shift: int, silence, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.max_shift = int(max_shift)
        self.silence = np.asarray(silence, dtype=np.float32).tolist()
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if not training or self.max_shift == 0:
            return x
        batch, steps, m = tf.shape(x)[0], x.shape[1], self.max_shift
        fill = tf.broadcast_to(tf.constant(self.silence, x.dtype), tf.concat([[batch, m], tf.shape(x)[2:]], 0))
        padded = tf.concat([fill, x, fill], axis=1)
        start = keras.random.randint([batch], 0, 2 * m + 1, seed=self.seed_generator)
        positions = start[:, None] + tf.range(steps)[None, :]
        return tf.gather(padded, positions, batch_dims=1)

    def get_config(self):
        return {**super().get_config(), "max_shift": self.max_shift, "silence": self.silence}


def _resample_frames(x, positions, fill=None):
    """``x`` [batch, steps, bins] read at fractional step ``positions`` [batch, n] by linear
    interpolation; positions past either end read ``fill``, or the nearest edge when None."""
    last = x.shape[1] - 1.0
    lower = tf.clip_by_value(tf.floor(positions), 0.0, last)
    weight = tf.cast(tf.clip_by_value(positions - lower, 0.0, 1.0)[..., None], x.dtype)  # float16 under mixed precision
    below = tf.gather(x, tf.cast(lower, tf.int32), axis=1, batch_dims=1)
    above = tf.gather(x, tf.cast(tf.minimum(lower + 1.0, last), tf.int32), axis=1, batch_dims=1)
    out = below * (1.0 - weight) + above * weight
    if fill is None:
        return out
    outside = tf.logical_or(positions < 0.0, positions > last)[..., None]
    return tf.where(outside, tf.broadcast_to(fill, tf.shape(out)), out)


@keras.saving.register_keras_serializable(package="dlapps")
class Warp(layers.Layer):
    """Stretch each clip in time (speaking rate) and along the frequency axis (vocal tract length,
    as in VTLP, Jaitly & Hinton 2013) by random factors within 1 +- ``time`` and 1 +- ``freq``.

    The frequency warp makes a model hear new voices in the same words: it is what helps
    most with speakers the training data does not have.
    """

    def __init__(self, time: float, freq: float, silence, **kwargs):
        super().__init__(**kwargs)
        self.time, self.freq = float(time), float(freq)
        self.silence = np.asarray(silence, dtype=np.float32).tolist()
        self.seed_generator = keras.random.SeedGenerator()

    def call(self, x, training=None):
        if not training:
            return x
        batch = tf.shape(x)[0]
        steps, bins = x.shape[1], x.shape[2]
        stretch = keras.random.uniform([batch, 1], 1 - self.time, 1 + self.time, seed=self.seed_generator)
        centre = (steps - 1) / 2.0
        x = _resample_frames(
            x,
            centre + (tf.range(steps, dtype=tf.float32)[None, :] - centre) * stretch,
            tf.constant(self.silence, x.dtype),
        )
        warp = keras.random.uniform([batch, 1], 1 - self.freq, 1 + self.freq, seed=self.seed_generator)
        # The same interpolation along the bins: swap them into the step axis and back.
        swapped = _resample_frames(tf.transpose(x, [0, 2, 1]), tf.range(bins, dtype=tf.float32)[None, :] * warp)
        return tf.transpose(swapped, [0, 2, 1])

    def get_config(self):
        return {**super().get_config(), "time": self.time, "freq": self.freq, "silence": self.silence}


@keras.saving.register_keras_serializable(package="dlapps")
class SpecAugment(layers.Layer):
    """Zero out random bands of frames and of frequency bins (Park et al., 2019) on normalised input."""

    def __init__(self, time_masks: int, time_width: int, freq_masks: int, freq_width: int, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.time_masks, self.time_width = time_masks, time_width
        self.freq_masks, self.freq_width = freq_masks, freq_width
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _bands(self, batch, size: int, count: int, width: int):
        """[batch, size] float mask: 0 inside ``count`` random bands of up to ``width``, else 1."""
        keep = tf.ones([batch, size])
        positions = tf.range(size)[None, :]
        for _ in range(count):
            w = keras.random.randint([batch, 1], 0, width + 1, seed=self.seed_generator)
            start = keras.random.randint([batch, 1], 0, size, seed=self.seed_generator)
            start = tf.minimum(start, size - w)
            inside = tf.logical_and(positions >= start, positions < start + w)
            keep *= 1.0 - tf.cast(inside, keep.dtype)
        return keep

    def call(self, x, training=None):
        if not training:
            return x
        batch = tf.shape(x)[0]
        time_keep = self._bands(batch, x.shape[1], self.time_masks, self.time_width)
        freq_keep = self._bands(batch, x.shape[2], self.freq_masks, self.freq_width)
        return x * tf.cast(time_keep[:, :, None] * freq_keep[:, None, :], x.dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "time_masks": self.time_masks,
            "time_width": self.time_width,
            "freq_masks": self.freq_masks,
            "freq_width": self.freq_width,
        }


def model_input(config: Any, data, model: str, spectral: bool) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """Input -> time shift, warp (training) -> normalisation (adapted on training data) -> SpecAugment (training).

    ``spectral``: whether ``model`` reads frames of features (True) or the raw waveform.
    """
    if spectral != (len(data.input_shape) == 2):
        wanted = (
            "spectral features; set data.features=logmel or mfcc"
            if spectral
            else "the raw waveform; set data.features=waveform (or auto)"
        )
        raise UserError(f"model {model} reads {wanted}")
    unknown = set(config.augment) - set(MODEL_AUGMENTATIONS) - {"noise", "crop"}
    if unknown:
        raise UserError(
            f"unknown augmentation {', '.join(sorted(unknown))} in model.augment; "
            f"choose from: {', '.join(MODEL_AUGMENTATIONS)}, noise, crop"
        )
    inputs = keras.Input(shape=data.input_shape, name="features" if spectral else "waveform")
    x = inputs
    if "shift" in config.augment:
        x = TimeShift(int(round(config.shift * data.input_shape[0])), data.silence)(x)
    if "warp" in config.augment:
        if data.frontend.kind != "logmel":
            raise UserError(
                "warp bends the frequency axis of log-mel frames; drop 'warp' from model.augment "
                f"for data.features={data.frontend.kind}"
            )
        x = Warp(config.warp_time, config.warp_freq, data.silence)(x)
    # float32 under mixed precision too: its statistics are adapted in float32 (float16 would also lose them)
    normalize = layers.Normalization(axis=-1 if spectral else None, name="normalize", dtype="float32")
    normalize.adapt(data.stats_source)
    x = normalize(x)
    if "specaugment" in config.augment:
        if not spectral:
            raise UserError(
                "SpecAugment needs spectral input; drop 'specaugment' from model.augment for waveform models"
            )
        steps, bins = data.input_shape
        x = SpecAugment(
            config.time_masks,
            max(1, int(steps * config.time_mask)),
            config.freq_masks,
            max(1, int(bins * config.freq_mask)),
        )(x)
    return inputs, x


def conv2d_block(x, filters: int, pool: bool):
    """conv-ReLU-conv, one batch norm, ReLU, then 2x2 max-pool (one BN per block: Keras 3 does not fuse it)."""
    x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(filters, 3, padding="same")(x)
    x = layers.ReLU()(batch_norm()(x))
    return layers.MaxPooling2D(2)(x) if pool else x


@MODELS.register("cnn")
def build_cnn(config: Any, data) -> keras.Model:
    """2D CNN on log-mel frames (default): three conv blocks, doubling width, then global pooling."""
    inputs, x = model_input(config, data, "cnn", spectral=True)
    x = layers.Reshape((*data.input_shape, 1))(x)
    for stage in range(3):
        x = conv2d_block(x, config.width * 2**stage, pool=stage < 2)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, classifier_head(x, len(data.class_names), config.dropout), name="cnn")


@MODELS.register("lstm")
def build_lstm(config: Any, data) -> keras.Model:
    """Bidirectional LSTM over frames (config.depth layers of config.width * 2 units)."""
    inputs, x = model_input(config, data, "lstm", spectral=True)
    for layer in range(config.depth):
        last = layer == config.depth - 1
        x = layers.Bidirectional(layers.LSTM(config.width * 2, return_sequences=not last))(x)
    return keras.Model(inputs, classifier_head(x, len(data.class_names), config.dropout), name="lstm")


@MODELS.register("transformer")
def build_transformer(config: Any, data) -> keras.Model:
    """Small Transformer encoder over frames: projection, learned positions, config.depth blocks."""
    inputs, x = model_input(config, data, "transformer", spectral=True)
    dim = config.width * 2
    x = PositionEmbedding()(layers.Dense(dim)(x))
    for _ in range(config.depth):
        x = encoder_block(x, heads=4, dim=dim, dropout=config.dropout)
    x = layers.GlobalAveragePooling1D()(layers.LayerNormalization()(x))
    return keras.Model(inputs, classifier_head(x, len(data.class_names), config.dropout), name="transformer")


@MODELS.register("wave_cnn")
def build_wave_cnn(config: Any, data) -> keras.Model:
    """1D CNN on the raw waveform (M5, Dai et al. 2017): a wide strided first filter, then 3-tap convs."""
    inputs, x = model_input(config, data, "wave_cnn", spectral=False)
    x = layers.Reshape((data.input_shape[0], 1))(x)
    x = layers.Conv1D(config.width, 80, strides=4, padding="same", use_bias=False)(x)
    x = layers.MaxPooling1D(4)(layers.ReLU()(batch_norm()(x)))
    for _stage, filters in enumerate((config.width, config.width * 2, config.width * 4)):
        x = layers.Conv1D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.ReLU()(batch_norm()(x))
        x = layers.MaxPooling1D(4)(x) if x.shape[1] >= 16 else x
    x = layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, classifier_head(x, len(data.class_names), config.dropout), name="wave_cnn")


WAVEFORM_MODELS = {"wave_cnn"}  # data.features=auto gives these the raw waveform, the rest log-mel
