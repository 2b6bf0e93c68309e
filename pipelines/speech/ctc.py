"""Transcription models: log-mel frames of any length -> characters, trained with CTC, decoded inside the model.

A :class:`Transcriber` holds its character vocabulary and an encoder network (``features`` [batch, frames,
bins] and ``frames`` [batch], the true lengths -> per-step scores [batch, steps, characters + 1], the last
class CTC's blank). It takes transcripts as strings and gives them back as strings: the character lookup,
the CTC loss and greedy or beam-search decoding are TensorFlow ops, so checkpoints, ``predict`` and the
exported SavedModel transcribe alike.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from pipelines.core.layers import encoder_block, networks_from, with_networks
from pipelines.core.registry import Registry
from pipelines.core.steps import descend

MODELS = Registry("transcription model")


def normalised_transcript(text: str) -> str:
    """The stated normalisation of every transcript: Unicode NFKC, lower case, punctuation dropped (an
    apostrophe inside a word kept: "don't"), runs of spaces one space.

    >>> normalised_transcript("  Three, ONE -- four! Don't. ")
    "three one four don't"
    """
    text = unicodedata.normalize("NFKC", text).casefold().replace("’", "'")
    kept = "".join(c if not unicodedata.category(c).startswith(("P", "S")) or c == "'" else " " for c in text)
    words = [w.strip("'") for w in kept.split()]
    return " ".join(w for w in words if w)


def steps_after(frames, stride: int):
    """Encoder steps for ``frames`` input frames: the time axis is strided by ``stride`` ("same" padding)."""
    return (frames + stride - 1) // stride


@keras.saving.register_keras_serializable(package="dlapps")
class FrameMask(layers.Layer):
    """[batch, steps, ...] and the true step counts [batch] -> the steps that hold audio [batch, steps]."""

    def call(self, x, steps):
        return tf.sequence_mask(steps, tf.shape(x)[1])

    def compute_output_shape(self, x_shape, steps_shape):
        return x_shape[:2]


@keras.saving.register_keras_serializable(package="dlapps")
class MaskSteps(layers.Layer):
    """[batch, steps, ...] with the steps past each row's count [batch] set to zero."""

    def call(self, x, steps):
        present = tf.sequence_mask(steps, tf.shape(x)[1], dtype=x.dtype)
        return x * tf.reshape(present, tf.concat([tf.shape(present), tf.ones([len(x.shape) - 2], tf.int32)], 0))


@keras.saving.register_keras_serializable(package="dlapps")
class AttentionMask(layers.Layer):
    """The step mask [batch, steps] -> which steps each step may attend to [batch, steps, steps]."""

    def call(self, mask):
        mask = tf.cast(mask, self.compute_dtype)  # a Keras layer's output (FrameMask's) comes as floats
        return mask[:, :, None] * mask[:, None, :]


@keras.saving.register_keras_serializable(package="dlapps")
class SinePositions(layers.Layer):
    """Sinusoidal position vectors added to a sequence of any length (learned ones would fix the longest)."""

    def call(self, x):
        steps, dim = tf.shape(x)[1], x.shape[-1]
        position = tf.cast(tf.range(steps), tf.float32)[:, None]
        rates = tf.exp(-tf.math.log(10_000.0) * tf.range(0, dim, 2, dtype=tf.float32) / dim)
        angles = position * rates[None, :]
        encoding = tf.reshape(tf.stack([tf.sin(angles), tf.cos(angles)], axis=-1), [steps, -1])[:, :dim]
        return x + tf.cast(encoding, x.dtype)[None]


@keras.saving.register_keras_serializable(package="dlapps")
class Strided(layers.Layer):
    """Frame counts [batch] after the encoder's time stride."""

    def __init__(self, stride: int, **kwargs):
        super().__init__(**kwargs)
        self.stride = stride

    def call(self, frames):
        return steps_after(tf.cast(frames, tf.int32), self.stride)

    def get_config(self):
        return {**super().get_config(), "stride": self.stride}


@keras.saving.register_keras_serializable(package="dlapps")
class Transcriber(keras.Model):
    """(features, frames) in, transcripts out; trained with CTC on (inputs, transcript) batches."""

    NETWORKS = ("encoder",)

    def __init__(self, encoder, vocabulary: list[str], stride: int, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.vocabulary = list(vocabulary)
        self.stride = stride
        self.blank = len(self.vocabulary)  # CTC's blank is the last class, as TensorFlow's decoders expect
        self.characters = tf.constant(self.vocabulary)
        self.lookup = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(self.characters, tf.range(self.blank, dtype=tf.int32)),
            default_value=-1,
        )
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.built = True

    @property
    def metrics(self):
        return [self.loss_tracker]

    # --- ids -------------------------------------------------------------------------------------

    def label_ids(self, transcripts: tf.Tensor) -> tf.RaggedTensor:
        """Transcripts [batch] -> character ids, ragged; characters outside the vocabulary are left out (a
        validation transcript may hold one the training ones did not)."""
        ids = self.lookup.lookup(tf.strings.unicode_split(transcripts, "UTF-8"))
        return tf.ragged.boolean_mask(ids, ids >= 0)

    def steps(self, frames: tf.Tensor) -> tf.Tensor:
        return steps_after(tf.cast(frames, tf.int32), self.stride)

    # --- training --------------------------------------------------------------------------------

    def call(self, inputs, training=False):
        """Per-step class scores (logits) [batch, steps, characters + 1]."""
        features, frames = inputs["features"], inputs["frames"]

        def scores():
            return self.encoder({"features": features, "frames": frames}, training=training)

        def none():
            steps = steps_after(tf.shape(features)[1], self.stride)
            return tf.zeros([0, steps, self.blank + 1], self.compute_dtype)

        # A worker's share of a short last batch can be empty, and TensorFlow's convolution gives an empty batch its
        # input's shape (tf.nn.conv2d of [0, 60, 60, 1] is [0, 60, 60, 1] whatever the filters), which the next
        # convolution then refuses.
        return tf.cond(tf.shape(features)[0] > 0, scores, none)

    def loss_of(self, inputs, transcripts, training: bool):
        logits = tf.cast(self(inputs, training=training), tf.float32)
        labels = self.label_ids(transcripts)

        def ctc_losses():
            return tf.nn.ctc_loss(
                labels=labels.to_tensor(),
                logits=logits,
                label_length=tf.cast(labels.row_lengths(), tf.int32),
                logit_length=self.steps(inputs["frames"]),
                logits_time_major=False,
                blank_index=self.blank,
            )

        # Across workers a short last batch of a length group can leave a replica none to score (call()), and
        # TensorFlow's CTC loss fails on an empty batch: such a replica's loss is 0, not NaN.
        count = tf.shape(logits)[0]
        per_example = tf.cond(count > 0, ctc_losses, lambda: tf.zeros([0]))
        return (tf.math.divide_no_nan(tf.reduce_sum(per_example), tf.cast(count, tf.float32)),)

    def train_step(self, data):
        inputs, transcripts = data
        (loss,) = descend(
            self.optimizer, self.trainable_variables, lambda: self.loss_of(inputs, transcripts, training=True)
        )
        return self.track(loss, tf.shape(transcripts)[0])

    def test_step(self, data):
        inputs, transcripts = data
        (loss,) = self.loss_of(inputs, transcripts, training=False)
        return self.track(loss, tf.shape(transcripts)[0])

    def track(self, loss, count):
        self.loss_tracker.update_state(loss, sample_weight=tf.cast(count, tf.float32))
        return {m.name: m.result() for m in self.metrics}

    # --- decoding --------------------------------------------------------------------------------

    def greedy(self, inputs) -> tf.Tensor:
        """The best class at each step; repeats merged, blanks dropped: transcripts [batch]."""
        logits = self(inputs)
        best = tf.argmax(logits, axis=-1, output_type=tf.int32)
        steps = self.steps(inputs["frames"])
        present = tf.sequence_mask(steps, tf.shape(best)[1])
        previous = tf.pad(best[:, :-1], [[0, 0], [1, 0]], constant_values=-1)
        kept = present & (best != self.blank) & (best != previous)
        return self.text_of(tf.ragged.boolean_mask(best, kept))

    def beam(self, inputs, width: int) -> tf.Tensor:
        """CTC beam search (``tf.nn.ctc_beam_search_decoder``) over ``width`` beams: transcripts [batch]."""
        log_probabilities = tf.nn.log_softmax(tf.cast(self(inputs), tf.float32))
        decoded, _ = tf.nn.ctc_beam_search_decoder(
            tf.transpose(log_probabilities, [1, 0, 2]), self.steps(inputs["frames"]), beam_width=width, top_paths=1
        )
        best = decoded[0]
        rows = tf.shape(log_probabilities, out_type=tf.int64)[0]
        ids = tf.RaggedTensor.from_value_rowids(best.values, best.indices[:, 0], nrows=rows)
        return self.text_of(tf.cast(ids, tf.int32))

    def transcribe(self, inputs, beam_width: int = 1) -> tf.Tensor:
        return self.greedy(inputs) if beam_width <= 1 else self.beam(inputs, beam_width)

    def text_of(self, ids: tf.RaggedTensor) -> tf.Tensor:
        return tf.strings.reduce_join(tf.gather(self.characters, ids), axis=-1)

    # --- saving ----------------------------------------------------------------------------------

    def get_config(self):
        return with_networks({**super().get_config(), "vocabulary": self.vocabulary, "stride": self.stride}, self)

    @classmethod
    def from_config(cls, config):
        return cls(**networks_from(config, cls.NETWORKS))


@dataclasses.dataclass(frozen=True)
class Parts:
    """What a model builder needs besides its architecture: the character vocabulary, and each feature bin's mean
    and variance over the training frames (the model's first layer standardises with them)."""

    vocabulary: list[str]
    mean: np.ndarray
    variance: np.ndarray

    @property
    def bins(self) -> int:
        return len(self.mean)


def encoder_inputs(bins: int) -> dict[str, keras.KerasTensor]:
    return {
        "features": keras.Input((None, bins), name="features"),
        "frames": keras.Input((), dtype="int32", name="frames"),
    }


def conv_front(inputs, parts: Parts, width: int, dropout: float):
    """Two 2-D convolutions over (time, frequency), the first strided by 2 in both: [batch, steps, channels].

    Frames past an utterance's end are zeroed before each convolution, and time is padded explicitly (not
    "same", whose split of the padding depends on the padded length): an utterance's steps come out the same
    alone or padded in a batch."""
    frames = inputs["frames"]
    x = layers.Normalization(axis=-1, mean=parts.mean, variance=parts.variance)(inputs["features"])
    x = MaskSteps()(x, frames)
    x = layers.Reshape((-1, x.shape[-1], 1))(x)
    x = layers.ZeroPadding2D(((5, 5), (10, 10)))(x)
    x = layers.Conv2D(width, (11, 21), strides=(2, 2), use_bias=False)(x)
    steps = Strided(CONV_STRIDE)(frames)
    x = MaskSteps()(layers.ReLU()(x), steps)
    x = layers.ZeroPadding2D(((2, 2), (2, 2)))(x)
    x = layers.Conv2D(width, (5, 5), strides=(1, 2), use_bias=False)(x)
    x = MaskSteps()(layers.ReLU()(x), steps)
    x = layers.Reshape((-1, x.shape[2] * x.shape[3]))(x)
    return layers.Dropout(dropout)(x), steps


CONV_STRIDE = 2  # conv_front's stride along time


def transcriber(inputs, x, parts: Parts, dropout: float) -> Transcriber:
    logits = layers.Dense(len(parts.vocabulary) + 1, name="characters")(layers.Dropout(dropout)(x))
    encoder = keras.Model(inputs, logits, name="encoder")
    return Transcriber(encoder, parts.vocabulary, CONV_STRIDE)


@MODELS.register("ds2")
def build_ds2(config: Any, parts: Parts) -> Transcriber:
    """DeepSpeech2-style: 2-D convolutions over the log-mel spectrogram, bidirectional GRUs, a character layer."""
    inputs = encoder_inputs(parts.bins)
    x, steps = conv_front(inputs, parts, config.width, config.dropout)
    mask = FrameMask()(x, steps)
    for _ in range(config.depth):
        x = layers.Bidirectional(layers.GRU(config.units, return_sequences=True), merge_mode="concat")(x, mask=mask)
        x = layers.Dropout(config.dropout)(x)
    return transcriber(inputs, x, parts, config.dropout)


@MODELS.register("transformer")
def build_transformer(config: Any, parts: Parts) -> Transcriber:
    """Convolutional front, then sinusoidal positions and Transformer encoder blocks over the strided frames."""
    inputs = encoder_inputs(parts.bins)
    x, steps = conv_front(inputs, parts, config.width, config.dropout)
    x = SinePositions()(layers.Dense(config.units)(x))
    attention = AttentionMask()(FrameMask()(x, steps))
    for _ in range(config.depth):
        x = encoder_block(x, config.heads, config.units, config.dropout, attention_mask=attention)
    return transcriber(inputs, layers.LayerNormalization()(x), parts, config.dropout)
