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
