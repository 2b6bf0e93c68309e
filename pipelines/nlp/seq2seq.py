"""Sequence-to-sequence translation models and the decoding that runs inside them.

A :class:`Translator` holds both vocabularies (StringLookup layers adapted on the training
pairs), an encoder (source ids -> memory) and a decoder (target prefix, memory, source ids ->
next-token logits). It takes and gives raw strings: tokenisation, greedy decoding and beam
search are TensorFlow ops, so checkpoints, ``predict`` and the exported SavedModel translate
alike, with no Python between the client's text and the translation. (One step stays outside:
Unicode normalisation, which core TensorFlow has no op for; ``predict`` applies it, a
SavedModel client sends normalised text.)

Tokens are words, with punctuation split off as tokens of its own (``"Hello, world!"`` ->
``hello , world !``): on a corpus of a few thousand pairs a subword vocabulary buys little
over words, and word tokens need no dependency beyond TensorFlow (tensorflow-text's
WordPiece would be one).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
import tensorflow as tf
from keras import layers

from pipelines.core.layers import PositionEmbedding, encoder_block, feed_forward, networks_from, with_networks
from pipelines.core.registry import Registry
from pipelines.core.steps import descend
from pipelines.nlp.models import TokensPresent

MODELS = Registry("translation model")
PAD, UNKNOWN, START, END = "", "[UNK]", "[start]", "[end]"
START_ID, END_ID = 2, 3  # StringLookup: 0 padding, 1 unknown, then the vocabulary, which starts with START, END
# Characters that are neither letters, digits, combining marks (Devanagari vowel signs) nor spaces are
# tokens of their own; an apostrophe (it's, l'eau, l’eau) stays in its word.
PUNCTUATION = r"([^\pL\pN\pM\s\p{Z}'’])"
SPACES = r"[\s\p{Z}]+"  # RE2's \s and tf.strings.split know ASCII spaces only: no-break spaces (French ' ?') too
NO_SPACE_BEFORE = r" ([.,!?;:%)\]}»।॥])"
NO_SPACE_AFTER = r"([(\[{«¿¡]) "


def words(texts: tf.Tensor, lowercase: bool) -> tf.RaggedTensor:
    """Strings [batch] -> their tokens, ragged [batch, None]."""
    if lowercase:
        texts = tf.strings.lower(texts, encoding="utf-8")
    texts = tf.strings.regex_replace(tf.strings.regex_replace(texts, PUNCTUATION, r" \1 "), SPACES, " ")
    return tf.strings.split(texts)


def detokenized(tokens: tf.Tensor) -> tf.Tensor:
    """Tokens [batch, length] (padding '' after the end) -> text [batch]: joined by spaces, none before closing
    punctuation or after opening punctuation."""
    text = tf.strings.strip(tf.strings.reduce_join(tokens, axis=-1, separator=" "))
    text = tf.strings.regex_replace(text, " +", " ")
    return tf.strings.regex_replace(tf.strings.regex_replace(text, NO_SPACE_BEFORE, r"\1"), NO_SPACE_AFTER, r"\1")


def vocabulary_layer(tokens: list[str]) -> layers.StringLookup:
    return layers.StringLookup(vocabulary=[START, END, *tokens], mask_token=PAD, oov_token=UNKNOWN)


def adapted_vocabulary(texts, lowercase: bool, max_tokens: int) -> layers.StringLookup:
    """The ``max_tokens`` most frequent tokens of the training texts (ties in a fixed order), plus START and END."""
    counter = layers.StringLookup(max_tokens=max_tokens - 2, mask_token=PAD, oov_token=UNKNOWN)
    counter.adapt(tf.data.Dataset.from_tensor_slices(texts).batch(512).map(lambda t: words(t, lowercase)))
    return vocabulary_layer([t for t in counter.get_vocabulary()[2:] if t not in (START, END)])


@keras.saving.register_keras_serializable(package="dlapps")
class Translator(keras.Model):
    """Text in, text out. Trained with teacher forcing on (source text, target text) batches; translates by
    greedy decoding or beam search over at most ``max_length`` target tokens."""

    NETWORKS = ("encoder", "decoder", "source_vocabulary", "target_vocabulary")

    def __init__(
        self,
        encoder,
        decoder,
        source_vocabulary,
        target_vocabulary,
        max_length: int,
        lowercase_source: bool = True,
        lowercase_target: bool = False,
        label_smoothing: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.source_vocabulary, self.target_vocabulary = source_vocabulary, target_vocabulary
        self.max_length = max_length
        self.lowercase_source, self.lowercase_target = lowercase_source, lowercase_target
        self.label_smoothing = label_smoothing
        self.target_tokens = tf.constant(target_vocabulary.get_vocabulary())
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.Mean(name="token_accuracy")
        self.built = True

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker]

    # --- ids -----------------------------------------------------------------------------------

    def source_ids(self, texts: tf.Tensor) -> tf.Tensor:
        ids = self.source_vocabulary(words(texts, self.lowercase_source))
        return ids.to_tensor(shape=[None, self.max_length])

    def target_ids(self, texts: tf.Tensor) -> tf.Tensor:
        """[START] tokens [END], padded or cut to max_length + 1 (inputs and labels are it shifted by one)."""
        ids = self.target_vocabulary(words(texts, self.lowercase_target))[:, : self.max_length - 1]
        batch = ids.nrows()
        ids = tf.concat(
            [
                tf.fill([batch, 1], tf.constant(START_ID, ids.dtype)),
                ids,
                tf.fill([batch, 1], tf.constant(END_ID, ids.dtype)),
            ],
            axis=1,
        )
        return ids.to_tensor(shape=[None, self.max_length + 1])

    def encode(self, source_ids, training=False):
        # tf.identity drops the Keras mask an LSTM encoder's output carries: the decoder takes the source's
        # padding from source_ids instead (and Keras would warn that it drops the mask).
        return tf.identity(self.encoder(source_ids, training=training))

    def logits(self, source_ids, target_in, training=False):
        return self.decoder([target_in, self.encode(source_ids, training), source_ids], training=training)

    # --- training ------------------------------------------------------------------------------

    def losses_of(self, sources, targets, training: bool):
        target = self.target_ids(targets)
        labels = target[:, 1:]
        logits = self.logits(self.source_ids(sources), target[:, :-1], training=training)
        log_probabilities = tf.nn.log_softmax(tf.cast(logits, tf.float32))
        picked = -tf.gather(log_probabilities, labels, batch_dims=2)
        # Label smoothing: part of each token's target spread evenly over the vocabulary.
        per_token = (1 - self.label_smoothing) * picked - self.label_smoothing * tf.reduce_mean(log_probabilities, -1)
        present = tf.cast(labels != 0, tf.float32)
        count = tf.maximum(tf.reduce_sum(present), 1.0)
        loss = tf.reduce_sum(per_token * present) / count
        correct = tf.cast(tf.argmax(logits, -1) == labels, tf.float32)
        return loss, tf.reduce_sum(correct * present) / count, count

    def train_step(self, data):
        sources, targets = data
        return self.track(
            *descend(self.optimizer, self.trainable_variables, lambda: self.losses_of(sources, targets, training=True))
        )

    def test_step(self, data):
        return self.track(*self.losses_of(*data, training=False))

    def track(self, loss, accuracy, count):
        self.loss_tracker.update_state(loss, sample_weight=count)  # per target token, over the whole split
        self.accuracy_tracker.update_state(accuracy, sample_weight=count)
        return {m.name: m.result() for m in self.metrics}

    # --- decoding ------------------------------------------------------------------------------

    def call(self, texts, training=False):
        return self.greedy(texts)

    def next_log_probabilities(self, source_ids, memory, tokens, position):
        """log p(next token) after ``tokens[:, :position + 1]`` (positions after it are padding the causal
        decoder never looks at): [rows, vocabulary]."""
        logits = tf.cast(self.decoder([tokens, memory, source_ids], training=False)[:, position], tf.float32)
        # Never padding, [UNK] or [START]: a translation names a word, even when training saw unknown ones.
        never = tf.concat([tf.fill([START_ID + 1], -1e9), tf.zeros([tf.shape(logits)[1] - START_ID - 1])], 0)
        return tf.nn.log_softmax(logits + never)

    def greedy(self, texts: tf.Tensor) -> tf.Tensor:
        """The most likely token at each step, until [END] or max_length tokens."""
        source_ids = self.source_ids(texts)
        memory = self.encode(source_ids)
        batch, length = tf.shape(source_ids)[0], self.max_length
        tokens = tf.concat(
            [tf.fill([batch, 1], tf.constant(START_ID, tf.int64)), tf.zeros([batch, length], tf.int64)], axis=1
        )
        done = tf.zeros([batch], tf.bool)

        def step(position, tokens, done):
            chosen = tf.argmax(self.next_log_probabilities(source_ids, memory, tokens[:, :-1], position), -1)
            chosen = tf.where(done, tf.zeros_like(chosen), chosen)  # padding after [END]
            tokens += tf.one_hot(position + 1, length + 1, dtype=tf.int64)[None, :] * chosen[:, None]
            return position + 1, tokens, done | (chosen == END_ID)

        # An explicit while loop (not a Python one for AutoGraph): the SavedModel export traces without AutoGraph.
        _, tokens, _ = tf.while_loop(
            lambda position, _, done: (position < length) & ~tf.reduce_all(done), step, [tf.constant(0), tokens, done]
        )
        return self.text_of(tokens[:, 1:])

    def beam(self, texts: tf.Tensor, beam_size: int, length_penalty: float = 0.6) -> tf.Tensor:
        """Beam search: the ``beam_size`` best prefixes by log-probability / ((5 + length) / 6) ** length_penalty
        (GNMT's normalisation, so long translations are not beaten by short ones for being long) are kept each
        step; a finished prefix keeps its score and competes until the end."""
        source_ids = self.source_ids(texts)
        memory = self.encode(source_ids)
        batch, length, k = tf.shape(source_ids)[0], self.max_length, beam_size
        vocabulary = tf.shape(self.target_tokens)[0]
        # Each source repeated beam_size times: row b * k + i is beam i of source b.
        source_rows = tf.repeat(source_ids, k, axis=0)
        memory_rows = tf.repeat(memory, k, axis=0)
        tokens = tf.concat(
            [tf.fill([batch * k, 1], tf.constant(START_ID, tf.int64)), tf.zeros([batch * k, length], tf.int64)], axis=1
        )
        # Only beam 0 is alive at the start: the others would repeat it.
        scores = tf.tile(tf.concat([[0.0], tf.fill([k - 1], -1e9)], 0)[None, :], [batch, 1])
        lengths = tf.zeros([batch, k], tf.float32)
        done = tf.zeros([batch, k], tf.bool)
        # A finished beam can only be continued by padding, at no cost: it stays itself.
        only_padding = tf.concat([[0.0], tf.fill([vocabulary - 1], -1e9)], 0)

        def step(position, tokens, scores, lengths, done):
            log_p = tf.reshape(
                self.next_log_probabilities(source_rows, memory_rows, tokens[:, :-1], position), [batch, k, vocabulary]
            )
            log_p = tf.where(done[..., None], only_padding[None, None, :], log_p)
            raw = scores[..., None] + log_p
            new_lengths = tf.where(done, lengths, lengths + 1)[..., None] + tf.zeros_like(raw)
            normalised = raw / ((5.0 + new_lengths) / 6.0) ** length_penalty
            _, best = tf.math.top_k(tf.reshape(normalised, [batch, -1]), k)
            origin, chosen = best // vocabulary, tf.cast(best % vocabulary, tf.int64)
            rows = tf.reshape(origin + tf.range(batch)[:, None] * k, [-1])
            tokens = tf.gather(tokens, rows)
            tokens += tf.one_hot(position + 1, length + 1, dtype=tf.int64)[None, :] * tf.reshape(chosen, [-1, 1])
            done = tf.reshape(tf.gather(tf.reshape(done, [-1]), rows), [batch, k]) | (chosen == END_ID) | (chosen == 0)
            return (
                position + 1,
                tokens,
                tf.gather(tf.reshape(raw, [batch, -1]), best, batch_dims=1),
                tf.gather(tf.reshape(new_lengths, [batch, -1]), best, batch_dims=1),
                done,
            )

        _, tokens, _, _, _ = tf.while_loop(
            lambda position, *state: (position < length) & ~tf.reduce_all(state[-1]),
            step,
            [tf.constant(0), tokens, scores, lengths, done],
        )
        # Beams are kept sorted by their normalised score: beam 0 is the best.
        best_rows = tf.range(batch) * k
        return self.text_of(tf.gather(tokens, best_rows)[:, 1:])

    def translate(self, texts: tf.Tensor, beam_size: int = 1, length_penalty: float = 0.6) -> tf.Tensor:
        return self.greedy(texts) if beam_size <= 1 else self.beam(texts, beam_size, length_penalty)

    def text_of(self, ids: tf.Tensor) -> tf.Tensor:
        """Target ids [batch, length] -> text, up to the first [END]."""
        ended = tf.cumsum(tf.cast(ids == END_ID, tf.int32), axis=1, exclusive=False) > 0
        ids = tf.where(ended, tf.zeros_like(ids), ids)
        return detokenized(tf.gather(self.target_tokens, ids))

    # --- saving --------------------------------------------------------------------------------

    def get_config(self):
        return with_networks(
            {
                **super().get_config(),
                "max_length": self.max_length,
                "lowercase_source": self.lowercase_source,
                "lowercase_target": self.lowercase_target,
                "label_smoothing": self.label_smoothing,
            },
            self,
        )

    @classmethod
    def from_config(cls, config):
        return cls(**networks_from(config, cls.NETWORKS))


@dataclasses.dataclass
class Parts:
    """What a model builder needs besides its architecture: the vocabularies, the sentence length in tokens,
    how texts are tokenised, and the training loss's label smoothing."""

    source_vocabulary: layers.StringLookup
    target_vocabulary: layers.StringLookup
    max_length: int
    lowercase_source: bool = True
    lowercase_target: bool = False
    label_smoothing: float = 0.0


def translator(parts: Parts, encoder, decoder, name: str) -> Translator:
    return Translator(
        encoder,
        decoder,
        parts.source_vocabulary,
        parts.target_vocabulary,
        parts.max_length,
        parts.lowercase_source,
        parts.lowercase_target,
        parts.label_smoothing,
        name=name,
    )


def id_inputs(parts: Parts):
    return (
        keras.Input((parts.max_length,), dtype="int64", name="source_ids"),
        keras.Input((parts.max_length,), dtype="int64", name="target_ids"),
    )


def decoder_block(x, memory, heads: int, dim: int, dropout: float, cross_mask):
    """Pre-norm Transformer decoder block: causal self-attention, attention over the source (where
    ``cross_mask`` [batch, 1, source] allows), a feed-forward layer, each residual."""
    normed = layers.LayerNormalization()(x)
    attended = layers.MultiHeadAttention(heads, dim // heads, dropout=dropout)(normed, normed, use_causal_mask=True)
    x = layers.Add()([x, attended])
    normed = layers.LayerNormalization()(x)
    attended = layers.MultiHeadAttention(heads, dim // heads, dropout=dropout)(
        normed, memory, attention_mask=cross_mask
    )
    return feed_forward(layers.Add()([x, attended]), dim, dropout)


def embedded(ids, vocabulary: layers.StringLookup, dim: int, dropout: float, name: str):
    x = layers.Embedding(vocabulary.vocabulary_size(), dim, name=name)(ids)
    return layers.Dropout(dropout)(PositionEmbedding()(x))


@MODELS.register("transformer")
def transformer(config: Any, parts: Parts) -> Translator:
    """Transformer encoder-decoder (the default): token + position embeddings, encoder blocks with padding masks,
    decoder blocks with causal self-attention and attention over the source."""
    source_ids, target_ids = id_inputs(parts)
    present = TokensPresent()(source_ids)  # padding masked; an empty source keeps one position
    x = embedded(source_ids, parts.source_vocabulary, config.width, config.dropout, "source_embedding")
    for _ in range(config.depth):
        x = encoder_block(
            x,
            config.heads,
            config.width,
            config.dropout,
            keras.ops.logical_and(present[:, None, :], present[:, :, None]),
        )
    encoder = keras.Model(source_ids, layers.LayerNormalization()(x), name="encoder")

    memory = keras.Input((parts.max_length, config.width), name="memory")
    source_for_mask = keras.Input((parts.max_length,), dtype="int64", name="source_ids")
    cross_mask = TokensPresent()(source_for_mask)[:, None, :]
    y = embedded(target_ids, parts.target_vocabulary, config.width, config.dropout, "target_embedding")
    for _ in range(config.depth):
        y = decoder_block(y, memory, config.heads, config.width, config.dropout, cross_mask)
    logits = layers.Dense(parts.target_vocabulary.vocabulary_size(), dtype="float32", name="logits")(
        layers.LayerNormalization()(y)
    )
    decoder = keras.Model([target_ids, memory, source_for_mask], logits, name="decoder")
    return translator(parts, encoder, decoder, "transformer")


@MODELS.register("lstm")
def lstm(config: Any, parts: Parts) -> Translator:
    """LSTM encoder-decoder with attention (Luong): a bidirectional LSTM encoder; an LSTM decoder whose every
    output attends over the source before predicting the next token."""
    source_ids, target_ids = id_inputs(parts)
    x = layers.Embedding(parts.source_vocabulary.vocabulary_size(), config.width, name="source_embedding")(source_ids)
    x = layers.Bidirectional(layers.LSTM(config.width // 2, return_sequences=True, dropout=config.dropout))(
        x, mask=TokensPresent()(source_ids)
    )
    encoder = keras.Model(source_ids, x, name="encoder")

    memory = keras.Input((parts.max_length, config.width), name="memory")
    source_for_mask = keras.Input((parts.max_length,), dtype="int64", name="source_ids")
    present = TokensPresent()(source_for_mask)
    y = layers.Embedding(parts.target_vocabulary.vocabulary_size(), config.width, name="target_embedding")(target_ids)
    y = layers.Dropout(config.dropout)(y)
    for _ in range(config.depth):
        y = layers.LSTM(config.width, return_sequences=True)(y)
    context = layers.Attention()([y, memory], mask=[None, present])
    y = layers.Dense(config.width, activation="tanh")(layers.Concatenate()([y, context]))
    logits = layers.Dense(parts.target_vocabulary.vocabulary_size(), dtype="float32", name="logits")(
        layers.Dropout(config.dropout)(y)
    )
    decoder = keras.Model([target_ids, memory, source_for_mask], logits, name="decoder")
    return translator(parts, encoder, decoder, "lstm")
