"""Vision models, registered by name. Each takes float32 images in 0..255 and returns probabilities.

Scaling and augmentation are layers of the model: the saved model scales exactly as in
training, and augmentation (active only in training) never reaches the served graph.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
from keras import layers

from pipelines.core.errors import UserError
from pipelines.core.layers import batch_norm, classifier_head
from pipelines.core.registry import Registry

MODELS = Registry("vision model")

AUGMENTATIONS = {
    "translate": lambda: layers.RandomTranslation(0.1, 0.1, fill_mode="constant"),
    "rotate": lambda: layers.RandomRotation(0.04, fill_mode="constant"),  # +-15 degrees
    "zoom": lambda: layers.RandomZoom(0.1, fill_mode="constant"),
    "contrast": lambda: layers.RandomContrast(0.2),
    "flip": lambda: layers.RandomFlip("horizontal"),  # wrong for digits and text: not a default
}


def augmented_input(input_shape: tuple, augment: list[str]) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """Input of 0..255 pixels -> augmentation layers (active in training only)."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for name in augment:
        if name not in AUGMENTATIONS:
            raise UserError(f"unknown augmentation '{name}' in model.augment; choose from: {', '.join(AUGMENTATIONS)}")
        x = AUGMENTATIONS[name]()(x)
    return inputs, x


def model_input(input_shape: tuple, augment: list[str]) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """Input of 0..255 pixels -> augmentation (training only) -> 0..1."""
    inputs, x = augmented_input(input_shape, augment)
    return inputs, layers.Rescaling(1.0 / 255.0)(x)


def conv_bn_relu(x, filters: int, strides: int = 1):
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
    x = batch_norm()(x)
    return layers.ReLU()(x)


def downsample_shortcut(shortcut, filters: int, strides: int, use_bias: bool):
    if strides != 1:
        # Average-pool then 1x1 conv (ResNet-D): keeps every input pixel, unlike a strided 1x1
        # conv, and sidesteps a oneDNN crash in the strided 1x1 conv's gradient (TF 2.21, CPU).
        shortcut = layers.AveragePooling2D(strides, padding="same")(shortcut)
    if shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, use_bias=use_bias)(shortcut)
        shortcut = shortcut if use_bias else batch_norm()(shortcut)
    return shortcut


def residual_block(x, filters: int, strides: int = 1):
    """The classic block: batch norm after every convolution."""
    shortcut = x
    x = conv_bn_relu(x, filters, strides)
    x = batch_norm()(layers.Conv2D(filters, 3, padding="same", use_bias=False)(x))
    shortcut = downsample_shortcut(shortcut, filters, strides, use_bias=False)
    return layers.ReLU()(layers.Add()([x, shortcut]))


def lean_residual_block(x, filters: int, strides: int = 1):
    """conv-ReLU-conv plus shortcut, then one batch norm after the addition.

    Keras 3 does not fuse batch norm, and on a CPU each one costs more than the convolution
    it follows: one per block instead of three made MNIST epochs about 1.6x faster here.
    """
    shortcut = x
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", activation="relu")(x)
    x = layers.Conv2D(filters, 3, padding="same")(x)
    shortcut = downsample_shortcut(shortcut, filters, strides, use_bias=True)
    return layers.ReLU()(batch_norm()(layers.Add()([x, shortcut])))


def _downsample_stride(x) -> int:
    # Tiny inputs (8x8 digits) cannot be halved as often as 224x224 photos.
    return 2 if min(x.shape[1], x.shape[2]) >= 4 else 1


def stem(x, filters: int, lean: bool = False):
    """3x3 conv at full resolution; from 24 px up, max-pool right away (most of the cost is here).

    The lean stem skips batch norm: this is the largest tensor, the costliest to normalise.
    """
    x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x) if lean else conv_bn_relu(x, filters)
    return layers.MaxPooling2D(2)(x) if min(x.shape[1], x.shape[2]) >= 24 else x


def residual_cnn(config: Any, data, name: str, lean: bool) -> keras.Model:
    """Stem, then three stages of residual blocks (config.depth each), doubling width, halving size."""
    block = lean_residual_block if lean else residual_block
    inputs, x = model_input(data.input_shape, config.augment)
    x = stem(x, config.width, lean)
    for stage in range(3):
        for index in range(config.depth):
            strides = _downsample_stride(x) if (stage > 0 and index == 0) else 1
            x = block(x, config.width * 2**stage, strides)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, classifier_head(x, len(data.class_names), config.dropout), name=name)


@MODELS.register("mlp")
def build_mlp(config: Any, data) -> keras.Model:
    """Feed-forward net on flattened pixels (the classic baseline)."""
    inputs, x = model_input(data.input_shape, config.augment)
    x = layers.Flatten()(x)
    for _ in range(config.depth):
        x = layers.Dense(config.width * 8, activation="relu")(x)
        x = layers.Dropout(config.dropout)(x)
    return keras.Model(inputs, classifier_head(x, len(data.class_names), 0.0), name="mlp")


@MODELS.register("cnn")
def build_cnn(config: Any, data) -> keras.Model:
    """Small residual CNN (default): a stem and three stages of one residual block."""
    return residual_cnn(dataclasses.replace(config, depth=1), data, "cnn", lean=False)


@MODELS.register("lean_cnn")
def build_lean_cnn(config: Any, data) -> keras.Model:
    """The small residual CNN with one batch norm per block: faster on CPU (MNIST-size images)."""
    return residual_cnn(dataclasses.replace(config, depth=1), data, "lean_cnn", lean=True)


@MODELS.register("resnet")
def build_resnet(config: Any, data) -> keras.Model:
    """Deeper residual CNN: config.depth blocks per stage, three stages."""
    return residual_cnn(config, data, "resnet", lean=False)


def _application(constructor, min_size: int, name: str):
    def build(config: Any, data) -> keras.Model:
        inputs, x = augmented_input(data.input_shape, config.augment)
        if data.input_shape[-1] == 1:
            x = layers.Concatenate()([x, x, x])  # ImageNet backbones expect RGB
        if min(data.input_shape[:2]) < min_size:
            x = layers.Resizing(min_size, min_size)(x)
        weights = None if config.weights == "none" else config.weights
        try:
            # These backbones scale 0..255 inputs themselves (include_preprocessing).
            backbone = constructor(include_top=False, weights=weights, input_shape=tuple(x.shape[1:]), pooling="avg")
        except Exception as err:  # no network, wrong shape for the weights, ...
            raise UserError(
                f"cannot build {name} with weights={config.weights}: {str(err).splitlines()[0]}; "
                "use --set model.weights=none offline"
            ) from None
        backbone.trainable = not config.freeze_backbone
        x = backbone(x)
        return keras.Model(inputs, classifier_head(x, len(data.class_names), config.dropout), name=name)

    return build


def _register_applications():
    apps = keras.applications
    for name, constructor, doc in (
        (
            "mobilenet_v3_small",
            apps.MobileNetV3Small,
            "MobileNetV3-Small backbone (keras.applications), transfer learning",
        ),
        ("efficientnet_b0", apps.EfficientNetB0, "EfficientNet-B0 backbone (keras.applications), transfer learning"),
    ):
        build = _application(constructor, 32, name)
        build.__doc__ = doc
        MODELS.register(name)(build)


_register_applications()
