"""Sample quality, measured with a classifier of the real images (for MNIST-like digits: >= 0.99 accuracy).

- ``frechet``: the Fréchet distance between Gaussians fitted to the classifier's penultimate-layer
  features of generated and of real held-out images (FID's formula, in a digit classifier's
  feature space instead of Inception's). Lower is better.
- ``recognisable``: the share of samples the classifier labels with confidence >= 0.9.
- ``class_shares`` and ``class_entropy``: how the samples spread over the classes (an even
  spread over 10 classes: shares 0.1, entropy log(10) = 2.303).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers

CONFIDENT = 0.9


def build_classifier(image_shape: tuple, classes: int) -> keras.Model:
    """A small CNN on images in [-1, 1]; its ``features`` layer is the space the Fréchet distance is measured in."""
    image = keras.Input(image_shape)
    x = image
    for filters in (32, 64):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D()(x) if min(x.shape[1:3]) >= 4 else x
    features = layers.Dense(128, activation="relu", name="features")(layers.Flatten()(x))
    probabilities = layers.Dense(classes, activation="softmax")(layers.Dropout(0.3)(features))
    return keras.Model(image, probabilities, name="quality_classifier")


def train_classifier(
    train: tf.data.Dataset, validation: tf.data.Dataset, image_shape: tuple, classes: int, epochs: int
) -> tuple[keras.Model, float]:
    """The classifier, fitted on the training split; its accuracy on ``validation``."""
    classifier = build_classifier(image_shape, classes)
    classifier.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    classifier.fit(train, epochs=epochs, verbose=0)
    return classifier, float(classifier.evaluate(validation, verbose=0)[1])


def embed(classifier: keras.Model, images: np.ndarray, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """(features, probabilities) of images in [-1, 1]."""
    both = keras.Model(classifier.inputs, [classifier.get_layer("features").output, classifier.outputs[0]])
    features, probabilities = both.predict(images, batch_size=batch_size, verbose=0)
    return features.astype(np.float64), probabilities.astype(np.float64)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2) between the Gaussians fitted to two feature sets."""
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # Tr((S_a S_b)^1/2) = sum of the square roots of the eigenvalues of S_a S_b (real and >= 0 up to rounding).
    root_trace = np.sqrt(np.clip(np.linalg.eigvals(cov_a @ cov_b).real, 0, None)).sum()
    return float(((mean_a - mean_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * root_trace)


def quality(features: np.ndarray, probabilities: np.ndarray, reference_features: np.ndarray) -> dict:
    """The figures of one set of images (generated, or real ones as the reference point)."""
    shares = np.bincount(probabilities.argmax(axis=1), minlength=probabilities.shape[1]) / len(probabilities)
    present = shares[shares > 0]
    return {
        "frechet": frechet_distance(features, reference_features),
        "recognisable": float((probabilities.max(axis=1) >= CONFIDENT).mean()),
        "class_shares": [round(float(s), 4) for s in shares],
        "class_entropy": float(-(present * np.log(present)).sum()),
        "images": int(len(features)),
    }
