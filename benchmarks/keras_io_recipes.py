"""The keras-io "Simple MNIST convnet" recipe, as plain Keras: the baseline our figures are ratios to.

https://keras.io/examples/vision/mnist_convnet/ : two conv/pool stages, dropout 0.5, Adam,
batch 128, 15 epochs, 10% validation split. Scaling is a layer here so both models take
the same 0..255 pixels.
"""

import keras
from keras import layers


def simple_convnet(input_shape, n_classes: int) -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Rescaling(1.0 / 255),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(
                64, kernel_size=(3, 3), activation="relu", padding="same" if input_shape[0] < 16 else "valid"
            ),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(n_classes, activation="softmax"),
        ]
    )
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def fit_recipe(model, x, y, epochs: int = 15, callbacks=()):
    return model.fit(x, y, batch_size=128, epochs=epochs, validation_split=0.1, callbacks=list(callbacks), verbose=0)


# --- "Text classification with Transformer" -------------------------------------------------
# https://keras.io/examples/nlp/text_classification_with_transformer/ : token + position
# embedding (dim 32), one Transformer block (2 heads, feed-forward 32), global average pooling,
# dropout 0.1, Dense 20, softmax; vocabulary 20,000, 200 tokens, Adam, batch 32, 2 epochs.
# The recipe reads IMDB as ready-made token ids; here a TextVectorization with the same
# vocabulary and length makes them from raw text in tf.data.


class TransformerBlock(layers.Layer):
    def __init__(self, embed_dim, num_heads, ff_dim, rate=0.1):
        super().__init__()
        self.att = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
        self.ffn = keras.Sequential([layers.Dense(ff_dim, activation="relu"), layers.Dense(embed_dim)])
        self.layernorm1 = layers.LayerNormalization(epsilon=1e-6)
        self.layernorm2 = layers.LayerNormalization(epsilon=1e-6)
        self.dropout1 = layers.Dropout(rate)
        self.dropout2 = layers.Dropout(rate)

    def call(self, inputs, training=False):
        attn_output = self.att(inputs, inputs)
        attn_output = self.dropout1(attn_output, training=training)
        out1 = self.layernorm1(inputs + attn_output)
        ffn_output = self.ffn(out1)
        ffn_output = self.dropout2(ffn_output, training=training)
        return self.layernorm2(out1 + ffn_output)


class TokenAndPositionEmbedding(layers.Layer):
    def __init__(self, maxlen, vocab_size, embed_dim):
        super().__init__()
        self.token_emb = layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
        self.pos_emb = layers.Embedding(input_dim=maxlen, output_dim=embed_dim)

    def call(self, x):
        maxlen = keras.ops.shape(x)[-1]
        positions = keras.ops.arange(start=0, stop=maxlen, step=1)
        return self.token_emb(x) + self.pos_emb(positions)


TEXT_VOCAB, TEXT_MAXLEN = 20_000, 200


def text_transformer(n_classes: int) -> keras.Model:
    embed_dim, num_heads, ff_dim = 32, 2, 32
    inputs = layers.Input(shape=(TEXT_MAXLEN,))
    x = TokenAndPositionEmbedding(TEXT_MAXLEN, TEXT_VOCAB, embed_dim)(inputs)
    x = TransformerBlock(embed_dim, num_heads, ff_dim)(x)
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dropout(0.1)(x)
    x = layers.Dense(20, activation="relu")(x)
    x = layers.Dropout(0.1)(x)
    outputs = layers.Dense(n_classes, activation="softmax")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def text_vectorizer(train_texts) -> layers.TextVectorization:
    vectorizer = layers.TextVectorization(max_tokens=TEXT_VOCAB, output_sequence_length=TEXT_MAXLEN)
    vectorizer.adapt(train_texts)
    return vectorizer


# --- "Automatic Speech Recognition using CTC" ----------------------------------------------
# https://keras.io/examples/audio/ctc_asr/ : features are the square root of the STFT magnitude
# (frame 256, step 160, FFT 384 -> 193 bins), each frame standardised over its bins; a
# DeepSpeech2-like network: two 2-D convolutions (32 filters, 11x41 strided 2x2, 11x21 strided
# 1x2, batch norm, ReLU), five bidirectional GRUs of 512 units with dropout 0.5 between them,
# a dense layer of 1,024 with dropout 0.5, and a character layer with CTC's blank; Adam 1e-4,
# batch 32, greedy decoding. Here the network is the encoder of dlapps' own CTC `Transcriber`
# (the same loss and decoders, with each utterance's true lengths where the recipe counts the
# padding too), so what differs is the recipe's features, network and optimiser.
CTC_ASR_FRAME, CTC_ASR_STEP, CTC_ASR_FFT = 256, 160, 384


def ctc_asr_features(wave):
    """One waveform [n] -> ``{"features": [frames, 193], "frames": int32}`` as the recipe computes them."""
    import tensorflow as tf

    spectrogram = tf.abs(tf.signal.stft(wave, CTC_ASR_FRAME, CTC_ASR_STEP, fft_length=CTC_ASR_FFT)) ** 0.5
    means = tf.reduce_mean(spectrogram, axis=1, keepdims=True)
    deviations = tf.math.reduce_std(spectrogram, axis=1, keepdims=True)
    return {"features": (spectrogram - means) / (deviations + 1e-10), "frames": tf.shape(spectrogram)[0]}


def ctc_asr(vocabulary: list[str], rnn_layers: int = 5, rnn_units: int = 512):
    from pipelines.speech.ctc import Transcriber

    bins = CTC_ASR_FFT // 2 + 1
    inputs = {
        "features": keras.Input((None, bins), name="features"),
        "frames": keras.Input((), dtype="int32", name="frames"),
    }
    x = layers.Reshape((-1, bins, 1))(inputs["features"])
    for filters, kernel, strides in ((32, (11, 41), (2, 2)), (32, (11, 21), (1, 2))):
        x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
        x = layers.ReLU()(layers.BatchNormalization()(x))
    x = layers.Reshape((-1, x.shape[-2] * x.shape[-1]))(x)
    for i in range(1, rnn_layers + 1):
        x = layers.Bidirectional(layers.GRU(rnn_units, return_sequences=True), merge_mode="concat")(x)
        if i < rnn_layers:
            x = layers.Dropout(0.5)(x)
    x = layers.Dropout(0.5)(layers.ReLU()(layers.Dense(rnn_units * 2)(x)))
    logits = layers.Dense(len(vocabulary) + 1)(x)
    model = Transcriber(keras.Model(inputs, logits, name="encoder"), vocabulary, stride=2)
    model.compile(optimizer=keras.optimizers.Adam(1e-4))
    return model
