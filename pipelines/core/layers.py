"""Layer recipes every domain's models share.

Custom layers live here, registered once: Keras finds a saved layer by its registered name
("dlapps>PositionEmbedding"), so two domains registering the same name would load each
other's layer.
"""

from __future__ import annotations

import keras
import numpy as np
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


@keras.saving.register_keras_serializable(package="dlapps")
class Whitening(layers.Layer):
    """Decorrelated inputs of unit variance: ``(x - mean) @ C^-1/2``, with C the covariance of the training inputs
    (ZCA whitening), fixed by :meth:`adapt` and saved with the model.

    Gradient descent on strongly correlated inputs (a week of half-hourly demand, where neighbours correlate near
    1) moves along the few large directions and crawls along the rest: after any practical number of epochs a
    linear model is still far from its least-squares weights. Whitened, every direction learns at the same pace.
    ``shrinkage`` (a fraction of the largest eigenvalue, added to each) keeps directions of pure noise from being
    blown up."""

    def __init__(self, shrinkage: float = 1e-4, **kwargs):
        super().__init__(**kwargs)
        self.shrinkage = shrinkage

    def build(self, input_shape):
        size = input_shape[-1]
        self.mean = self.add_weight(shape=(size,), initializer="zeros", trainable=False, name="mean")
        self.matrix = self.add_weight(shape=(size, size), initializer="identity", trainable=False, name="matrix")

    def adapt(self, x: np.ndarray) -> None:
        """Mean and whitening matrix from ``x`` [examples, features]; fewer than two examples, or inputs that never
        vary, leave the identity."""
        x = np.asarray(x, np.float64)
        if not self.built:
            self.build(x.shape)
        if len(x) < 2:
            return
        mean = x.mean(axis=0)
        eigenvalues, vectors = np.linalg.eigh(np.cov(x - mean, rowvar=False))
        largest = float(eigenvalues.max())
        if largest <= 1e-12:
            return
        scale = 1 / np.sqrt(np.clip(eigenvalues, 0, None) + self.shrinkage * largest)
        self.mean.assign(mean.astype("float32"))
        self.matrix.assign(((vectors * scale) @ vectors.T).astype("float32"))

    def call(self, x):
        return keras.ops.matmul(x - self.mean, self.matrix)

    def get_config(self):
        return {**super().get_config(), "shrinkage": self.shrinkage}


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
