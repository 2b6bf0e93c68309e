"""The vision domain: image classification from digits, IDX, image folders or tfds."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import keras
import numpy as np
import tensorflow as tf

from pipelines.core import figures
from pipelines.core.classification import ClassificationPipeline
from pipelines.core.config import Dropout, EvalConfig, Fraction, Length, OneOf, Range, Seed, Small, TrainConfig, Width
from pipelines.core.errors import UserError
from pipelines.core.files import read_bytes
from pipelines.core.names import shown
from pipelines.core.pipeline import A_FEW_STEPS, Endpoints, LabelledData, path_or_tfds_overrides
from pipelines.core.stages import batched
from pipelines.core.tracking import TrackConfig
from pipelines.vision import data as vision_data
from pipelines.vision import models as vision_models

Pixels = Annotated[int, Range(1, 8_192)]


@dataclasses.dataclass
class VisionDataConfig:
    source: str = "auto"  # auto | digits | idx | folder | tfds  (auto: from --data)
    path: str | None = None  # folder for idx/folder, dataset name for tfds
    image_size: Annotated[list[Pixels], Length(2)] | None = None  # [height, width]; None = the source's native size
    channels: Annotated[int, OneOf(1, 3)] | None = None  # None = the source's
    test_fraction: Fraction = 0.2  # sources without an official test split
    validation_fraction: Fraction = 0.1  # of what the test split leaves
    split_seed: Seed = 0
    on_bad_file: Annotated[str, OneOf("error", "skip")] = "error"  # image folders
    # Image folders: a file whose header states more pixels is refused (or skipped) before it is decoded.
    max_pixels: Annotated[int, Range(1, 2**31 - 1)] = 40_000_000
    cache: bool = True
    tfds_data_dir: str | None = None


@dataclasses.dataclass
class VisionModelConfig:
    name: str = "cnn"
    width: Width = 32  # filters of the first stage (units / 8 for the MLP)
    depth: Small = 2  # blocks per stage (resnet), hidden layers (mlp)
    dropout: Dropout = 0.2
    augment: list[Annotated[str, OneOf(*vision_models.AUGMENTATIONS)]] = dataclasses.field(
        default_factory=lambda: ["translate"]
    )
    weights: Annotated[str, OneOf("none", "imagenet")] = "none"  # keras.applications backbones
    freeze_backbone: bool = False


@dataclasses.dataclass
class VisionConfig:
    data: VisionDataConfig = dataclasses.field(default_factory=VisionDataConfig)
    model: VisionModelConfig = dataclasses.field(default_factory=VisionModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=lambda: TrainConfig(epochs=30, batch_size=64))
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
    track: TrackConfig = dataclasses.field(default_factory=TrackConfig)


class VisionPipeline(ClassificationPipeline[VisionConfig, LabelledData]):
    domain = "vision"
    task = "classify"
    config_class = VisionConfig
    sources = vision_data.SOURCES
    models = vision_models.MODELS
    run_files = (*ClassificationPipeline.run_files, "samples/sample_predictions.png")
    example_settings = (*A_FEW_STEPS, "model.width=8", "eval.sample_images=4")

    def data_overrides(self, data_arg: str) -> list[str]:
        return path_or_tfds_overrides(data_arg)  # a path's source (idx or folder) is told apart later

    def load_data(self, config: VisionConfig) -> LabelledData:
        size = config.data.image_size
        raw = self.sources.get(vision_data.resolve_source(config.data))(config.data)
        height, width = size or raw.image_shape[:2]
        channels = config.data.channels or raw.image_shape[2]
        if height is None or width is None:
            raise UserError(f"{raw.name} has images of varying size; set one with --set data.image_size=[224,224]")
        if channels not in (1, 3):
            raise UserError(f"{raw.name} has images of {channels} channels; set --set data.channels=1 or 3")

        def prepare(image, label):
            return tf.cast(vision_data.fit_image(image, height, width, channels), tf.uint8), label

        def to_float(images, labels):
            return tf.cast(images, tf.float32), labels

        splits = {
            name: batched(
                ds,
                batch_size=config.train.batch_size,
                training=(name == "train"),
                seed=config.train.seed,
                preprocess=prepare,
                cache=config.data.cache,
                per_batch=to_float,
            )
            for name, ds in raw.splits.items()
        }
        return vision_data.as_data(raw, splits, (height, width, channels))

    def serving_endpoints(self, model: keras.Model, info: dict, config: VisionConfig) -> Endpoints:
        height, width, channels = model.input_shape[1:]

        def classify_pixels(images):
            return self.classify_outputs(model(images, training=False), info)

        def from_bytes(image_bytes):
            # Images of any size: decode and fit one by one, then classify as a batch.
            images = tf.map_fn(
                lambda b: vision_data.fit_image(
                    vision_data.decode_bounded(b, config.data.max_pixels), height, width, channels
                ),
                image_bytes,
                fn_output_signature=tf.TensorSpec([height, width, channels], tf.float32),
            )
            return classify_pixels(images)

        return {
            "serving_default": (from_bytes, [tf.TensorSpec([None], tf.string, name="image_bytes")]),
            # Already-decoded pixels (0..255) at the model's size: what TFLite converts.
            "serving_pixels": (
                classify_pixels,
                [tf.TensorSpec([None, height, width, channels], tf.float32, name="images")],
            ),
        }

    def serving_example(self, info: dict, config: VisionConfig) -> dict[str, np.ndarray]:
        """Two PNG files of the model's size."""
        return {"image_bytes": np.array(example_pngs(*info["input_shape"]), dtype=object)}

    def example_inputs(self, folder: Path) -> list[str]:
        """Two PNG files, of another size than the digits' (predict fits them)."""
        paths = [folder / f"{name}.png" for name in ("square", "bar")]
        for path, png in zip(paths, example_pngs(16, 16, 1)):
            path.write_bytes(png)
        return [str(p) for p in paths]

    def tflite_signature(self) -> str | None:
        return "serving_pixels"

    def read_inputs(self, paths: list[str], model: keras.Model, config: VisionConfig) -> np.ndarray:
        height, width, channels = model.input_shape[1:]
        images = []
        for path in paths:
            contents = tf.constant(read_bytes(path, "image", "; give image files (PNG, JPEG, GIF or BMP)"))
            try:
                image = vision_data.decode_bounded(contents, config.data.max_pixels)
            except tf.errors.OpError as err:  # not an image, too many pixels
                raise UserError(f"cannot read image {shown(path)}: {err.message.splitlines()[0]}") from None
            images.append(vision_data.fit_image(image, height, width, channels).numpy())
        return np.stack(images)

    def render_samples(self, inputs, y_true, probabilities, class_names) -> bytes | None:
        if len(inputs) == 0:
            return None
        titles, colors = self.sample_titles(y_true, probabilities, class_names)
        return figures.image_grid_png(np.clip(inputs, 0, 255).astype(np.uint8), titles, colors)


def example_pngs(height: int, width: int, channels: int) -> list[bytes]:
    """Two PNG images: a bright square and a bright bar on black."""
    images = np.zeros((2, height, width, channels), np.uint8)
    images[0, height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = 255
    images[1, height // 2 - 1 : height // 2 + 1, :] = 255
    return [tf.io.encode_png(image).numpy() for image in images]


PIPELINE = VisionPipeline()
