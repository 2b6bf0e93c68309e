"""Layer recipes every domain's models share."""

from __future__ import annotations

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
