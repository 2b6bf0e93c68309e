"""Text classifiers, registered by name. Each takes raw strings: its TextVectorization layers,
adapted on the training split, are its first layers, so checkpoints, ``predict`` and the
exported model all carry the vocabulary and tokenise exactly as training did.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from pipelines.core.layers import PositionEmbedding, classifier_head, encoder_block
from pipelines.core.registry import Registry

MODELS = Registry("text model")
BAG_MODELS = {"bag"}  # models over tf-idf n-gram counts rather than token sequences


@dataclasses.dataclass
class TextInputs:
    """What a model builder needs besides its own config: adapted vectorizers and the task's size."""

    vectorizers: list[keras.layers.TextVectorization]  # bag: word and/or char tf-idf; sequence models: one, int ids
    n_classes: int
    sequence_length: int  # sequence models: tokens per text


def string_input() -> keras.KerasTensor:
    return keras.Input(shape=(), dtype="string", name="text")


@keras.saving.register_keras_serializable(package="dlapps")
class KnownTokens(keras.layers.Layer):
    """Drops column 0 of a tf-idf vector, the count of out-of-vocabulary tokens. Training texts have
    none when the vocabulary holds them all, so the weight would stay untrained, while a new text's
    unseen n-grams would take a large share of its unit length and shrink every real feature."""

    def call(self, counts):
        return counts[:, 1:]


@MODELS.register("bag")
def bag(config: Any, inputs: TextInputs) -> keras.Model:
    """Bag of word and character n-grams, tf-idf weighted and L2-normalised, into an MLP: fast and strong."""
    text = string_input()
    counts = [KnownTokens()(vectorize(text)) for vectorize in inputs.vectorizers]
    # One unit-length vector per text, as for a linear SVM: long messages do not outvote short ones.
    x = keras.layers.UnitNormalization()(counts[0] if len(counts) == 1 else keras.layers.Concatenate()(counts))
    x = keras.layers.Dropout(config.input_dropout)(x)
    for layer in range(config.depth):
        if layer:
            x = keras.layers.Dropout(config.dropout)(x)
        x = keras.layers.Dense(config.width, activation="relu", kernel_regularizer=keras.regularizers.L2(config.l2))(x)
    return keras.Model(text, classifier_head(x, inputs.n_classes, config.dropout), name="bag")


def embedded_ids(config: Any, inputs: TextInputs, text: keras.KerasTensor, mask_zero: bool):
    ids = inputs.vectorizers[0](text)
    vocabulary = inputs.vectorizers[0].vocabulary_size()
    return ids, keras.layers.Embedding(vocabulary, config.width, mask_zero=mask_zero, name="token_embedding")(ids)


@MODELS.register("cnn")
def cnn(config: Any, inputs: TextInputs) -> keras.Model:
    """Token embeddings, 1D convolutions over 3- and 5-token windows, global max pooling."""
    text = string_input()
    _, x = embedded_ids(config, inputs, text, mask_zero=False)
    x = keras.layers.SpatialDropout1D(config.dropout)(x)
    for block in range(config.depth):
        x = keras.layers.Conv1D(config.width * 2, 5 if block else 3, padding="same", activation="relu")(x)
        if block < config.depth - 1:
            x = keras.layers.MaxPooling1D(2, padding="same")(x)
    x = keras.layers.GlobalMaxPooling1D()(x)
    return keras.Model(text, classifier_head(x, inputs.n_classes, config.dropout), name="cnn")


@MODELS.register("lstm")
def lstm(config: Any, inputs: TextInputs) -> keras.Model:
    """Token embeddings into bidirectional LSTMs (padding masked), the last states into the classifier."""
    text = string_input()
    _, x = embedded_ids(config, inputs, text, mask_zero=True)
    for layer in range(config.depth):
        more = layer < config.depth - 1
        x = keras.layers.Bidirectional(keras.layers.LSTM(config.width, return_sequences=more, dropout=config.dropout))(
            x
        )
    return keras.Model(text, classifier_head(x, inputs.n_classes, config.dropout), name="lstm")


@keras.saving.register_keras_serializable(package="dlapps")
class TokensPresent(keras.layers.Layer):
    """True where a token is not padding; the first position always counts, so an empty text
    (everything stripped by standardisation) still has one position to attend to, not NaN."""

    def call(self, ids):
        present = keras.ops.not_equal(ids, 0)
        first = keras.ops.arange(keras.ops.shape(ids)[1]) == 0
        return keras.ops.logical_or(present, first[None, :])


@keras.saving.register_keras_serializable(package="dlapps")
class MaskedMean(keras.layers.Layer):
    """The mean over the positions a mask marks present."""

    def call(self, x, present):
        weights = keras.ops.cast(present, x.dtype)[..., None]
        return keras.ops.sum(x * weights, axis=1) / keras.ops.maximum(keras.ops.sum(weights, axis=1), 1.0)


@MODELS.register("transformer")
def transformer(config: Any, inputs: TextInputs) -> keras.Model:
    """Token + position embeddings, Transformer encoder blocks with padding masks, masked mean pooling."""
    text = string_input()
    ids, x = embedded_ids(config, inputs, text, mask_zero=False)
    present = TokensPresent()(ids)
    x = keras.layers.Dropout(config.dropout)(PositionEmbedding()(x))
    attention_mask = keras.ops.logical_and(present[:, None, :], present[:, :, None])
    for _ in range(config.depth):
        x = encoder_block(x, config.heads, config.width, config.dropout, attention_mask)
    x = MaskedMean()(keras.layers.LayerNormalization()(x), present)
    return keras.Model(text, classifier_head(x, inputs.n_classes, config.dropout), name="transformer")


def learned_embeddings(model: keras.Model, most_frequent: int = 5000) -> tuple[np.ndarray, list[str]] | None:
    """Per-token vectors and their tokens for the embedding projector, the ``most_frequent`` tokens of each
    vocabulary: the token embedding of sequence models, or for the bag model each n-gram's weights into
    its first dense layer (the softmax itself when model.depth is 0)."""
    vectorizers = [layer for layer in model.layers if isinstance(layer, keras.layers.TextVectorization)]
    for layer in model.layers:
        if layer.name == "token_embedding":
            return np.asarray(layer.embeddings)[:most_frequent], vectorizers[0].get_vocabulary()[:most_frequent]
    dense = next((layer for layer in model.layers if isinstance(layer, keras.layers.Dense)), None)
    if dense is None or not vectorizers:
        return None
    kernel = np.asarray(dense.kernel)
    rows, tokens, start = [], [], 0
    for vectorizer in vectorizers:  # the bag model concatenates their outputs in this order
        vocabulary = vectorizer.get_vocabulary()[1:]  # without the out-of-vocabulary entry (KnownTokens)
        rows.append(kernel[start : start + most_frequent][: len(vocabulary)])
        tokens += vocabulary[:most_frequent]
        start += len(vocabulary)
    return (np.concatenate(rows), tokens) if start == kernel.shape[0] else None


def vectorizer_vocabularies(model: keras.Model) -> dict[str, list[str]]:
    """Each TextVectorization layer's vocabulary, by layer name."""
    return {
        layer.name: layer.get_vocabulary()
        for layer in model.layers
        if isinstance(layer, keras.layers.TextVectorization)
    }


def lengths_in_tokens(texts: np.ndarray, split: str) -> np.ndarray:
    """Token counts before padding: whitespace words, or characters."""
    strings = tf.constant(list(texts) or [""], dtype=tf.string)
    if split == "character":
        return tf.strings.length(strings, unit="UTF8_CHAR").numpy()
    return tf.strings.split(strings).row_lengths().numpy()
