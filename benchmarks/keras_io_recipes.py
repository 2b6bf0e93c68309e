"""The keras-io "Simple MNIST convnet" recipe, as plain Keras: the baseline our figures are ratios to.

https://keras.io/examples/vision/mnist_convnet/ : two conv/pool stages, dropout 0.5, Adam,
batch 128, 15 epochs, 10% validation split. Scaling is a layer here so both models take
the same 0..255 pixels.
"""

import keras
from keras import layers


def simple_convnet(input_shape, n_classes: int) -> keras.Model:
    model = keras.Sequential([
        keras.Input(shape=input_shape),
        layers.Rescaling(1.0 / 255),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, kernel_size=(3, 3), activation="relu", padding="same" if input_shape[0] < 16 else "valid"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(n_classes, activation="softmax"),
    ])
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def fit_recipe(model, x, y, epochs: int = 15, callbacks=()):
    return model.fit(x, y, batch_size=128, epochs=epochs, validation_split=0.1, callbacks=list(callbacks), verbose=0)
