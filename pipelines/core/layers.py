"""Layer recipes every domain's models share.

Custom layers live here, registered once: Keras finds a saved layer by its registered name
("dlapps>PositionEmbedding"), so two domains registering the same name would load each
other's layer.
"""

from __future__ import annotations

import keras
from keras import layers


def classifier_head(x, n_classes: int, dropout: float):
    if dropout > 0:
        x = layers.Dropout(dropout)(x)
    # float32 output even under mixed precision: softmax in float16 loses small probabilities.
    return layers.Dense(n_classes, activation="softmax", dtype="float32", name="probabilities")(x)


def batch_norm():
    # Momentum 0.9, not Keras' 0.99: small datasets run few steps per epoch, and the moving
    # statistics must keep up with the weights for validation in the first epochs to mean anything.
    return layers.BatchNormalization(momentum=0.9)


@keras.saving.register_keras_serializable(package="dlapps")
class PositionEmbedding(layers.Layer):
    """Learned position vectors added to a fixed-length sequence."""

    def build(self, input_shape):
        self.positions = self.add_weight(shape=tuple(input_shape[1:]), initializer="zeros", name="positions")

    def call(self, x):
        return x + self.positions


def encoder_block(x, heads: int, dim: int, dropout: float, attention_mask=None):
    """Pre-norm Transformer encoder block: self-attention (where ``attention_mask`` [batch, query, key]
    allows) and a feed-forward layer, each residual."""
    normed = layers.LayerNormalization()(x)
    attended = layers.MultiHeadAttention(heads, dim // heads, dropout=dropout)(
        normed, normed, attention_mask=attention_mask
    )
    return feed_forward(layers.Add()([x, attended]), dim, dropout)


def feed_forward(x, dim: int, dropout: float):
    """A Transformer block's pre-norm feed-forward part (gelu, twice the width), residual."""
    hidden = layers.Dense(dim * 2, activation="gelu")(layers.LayerNormalization()(x))
    hidden = layers.Dropout(dropout)(layers.Dense(dim)(hidden))
    return layers.Add()([x, hidden])


def with_networks(config: dict, model: keras.Model) -> dict:
    """The config of a model made of networks (a GAN's two, a translator's encoder and decoder): its own settings
    plus each network named in ``model.NETWORKS``, serialised."""
    return {**config, **{name: keras.saving.serialize_keras_object(getattr(model, name)) for name in model.NETWORKS}}


def networks_from(config: dict, names: tuple) -> dict:
    """``with_networks`` undone: the constructor's arguments, each named network deserialised."""
    return {**config, **{name: keras.saving.deserialize_keras_object(config[name]) for name in names}}
