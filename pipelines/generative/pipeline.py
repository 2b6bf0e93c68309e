"""The generative domain: images from noise (DCGAN, conditional DCGAN, VAE), with a measured sample quality.

Images come from the vision domain's sources (digits, IDX, folders, tfds), scaled to [-1, 1].
Quality is measured in the feature space of a digit classifier trained on the same data
(``quality.py``); a fixed-latent sample grid goes to TensorBoard and samples/ every epoch.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Annotated

import keras
import numpy as np
import tensorflow as tf

from pipelines.core import figures
from pipelines.core.callbacks import EpochSummaries
from pipelines.core.config import Count, NonNegative, Range, Seed, Size, TrainConfig, Width
from pipelines.core.errors import UserError
from pipelines.core.pipeline import Endpoints, LabelledData, Pipeline, path_or_tfds_overrides
from pipelines.core.rundir import RunDir
from pipelines.core.stages import batched
from pipelines.core.tracking import TrackConfig
from pipelines.generative import models as generative_models
from pipelines.generative import quality
from pipelines.generative.models import Shape
from pipelines.vision import data as vision_data
from pipelines.vision.pipeline import VisionDataConfig

log = logging.getLogger(__name__)
CONDITIONAL = ("cgan",)


@dataclasses.dataclass
class GenerativeModelConfig:
    # The class-conditional DCGAN by default: on MNIST, in 3 minutes, the unconditional one collapsed onto one
    # digit (spectral norm kept it spread but blurred: Fréchet 147 against 8.5; benchmarks/README.md).
    name: str = "cgan"
    latent_dim: Width = 64
    width: Width = 32  # filters: the generator's last layer (x2 before it), the discriminator's first (x2 after it)
    # GANs: real images labelled 1 - this for the discriminator
    label_smoothing: Annotated[float, Range(0, below=1)] = 0.1
    # GANs: spectral normalisation of the discriminator's convolutions
    spectral_norm: bool = False
    # GANs (train.learning_rate is the generator's, and the VAE's)
    discriminator_learning_rate: Annotated[float, Range(above=0, high=10)] = 2e-4
    class_loss_weight: NonNegative = 0.0  # cgan: > 0 adds AC-GAN's class head to the discriminator, weighted by this
    kl_weight: NonNegative = 1.0  # VAE


@dataclasses.dataclass
class GenerativeEvalConfig:
    # sample grid and quality figures every N epochs (0 = only at the end)
    every_epochs: Size = 1
    grid: Annotated[int, Range(1, 1_024)] = 64  # images in the fixed-latent grid
    # images scored each epoch (validation images as the reference)
    epoch_samples: Annotated[int, Range(2, 100_000)] = 500
    samples: Annotated[int, Range(2, 1_000_000)] = 2000  # images scored by evaluate (test images as the reference)
    seed: Seed = 0  # first seed of the scored images
    classifier_steps: Count = 3000  # the quality classifier's training, in batches (its test accuracy goes to run.json)


@dataclasses.dataclass
class GenerativeConfig:
    data: VisionDataConfig = dataclasses.field(default_factory=VisionDataConfig)
    model: GenerativeModelConfig = dataclasses.field(default_factory=GenerativeModelConfig)
    # Adam with beta_1 0.5 (the DCGAN paper's): on MNIST in 10 minutes, 0.9 gave Fréchet 55.3 and 85% recognisable
    # samples, 0.5 gave 14.3 and 93% (benchmarks/README.md): a shorter gradient memory follows the moving opponent.
    # 100 epochs: the bundled digits are 21 batches an epoch, and after 30 the generator did not yet follow its label
    # (class shares 0.4%..27%, recognisable 0.58..0.72; after 100: 0.93..0.97, about 4 minutes on 2 cores).
    # Larger data wants train.max_minutes instead.
    train: TrainConfig = dataclasses.field(
        default_factory=lambda: TrainConfig(
            epochs=100,
            batch_size=64,
            optimizer="adam",
            learning_rate=2e-4,
            beta_1=0.5,
            schedule="constant",
            monitor="val_frechet",
        )
    )
    eval: GenerativeEvalConfig = dataclasses.field(default_factory=GenerativeEvalConfig)
    track: TrackConfig = dataclasses.field(default_factory=TrackConfig)


@dataclasses.dataclass
class GenerativeData(LabelledData):
    images: dict = dataclasses.field(default_factory=dict)  # split -> real images in [-1, 1] (quality reference)


def latents_from_seeds(seeds: tf.Tensor, dim: int) -> tf.Tensor:
    """One standard-normal latent vector per int64 seed: the same seed gives the same vector, in any batch."""
    return tf.map_fn(
        lambda s: tf.random.stateless_normal([dim], tf.stack([s, tf.constant(0, tf.int64)])),
        tf.cast(seeds, tf.int64),
        fn_output_signature=tf.TensorSpec([dim], tf.float32),
    )


def to_uint8(images: tf.Tensor) -> tf.Tensor:
    return tf.cast(tf.round(tf.clip_by_value((images + 1) * 127.5, 0, 255)), tf.uint8)


class GenerativePipeline(Pipeline[GenerativeConfig, GenerativeData]):
    domain = "generative"
    task = "generate"
    config_class = GenerativeConfig
    sources = vision_data.SOURCES
    models = generative_models.MODELS
    predict_usage = "--count 64 --out grid.png"
    run_files = ("quality_classifier.keras", "samples/samples.png", "samples/epoch_001.png")
    example_settings = (
        "train.epochs=2",
        "train.steps_per_epoch=3",
        "train.batch_size=32",
        "model.width=8",
        "model.latent_dim=8",
        "eval.samples=100",
        "eval.epoch_samples=50",
        "eval.grid=16",
        "eval.classifier_steps=20",
    )

    def data_overrides(self, data_arg: str) -> list[str]:
        return path_or_tfds_overrides(data_arg)

    def metric_directions(self, config: GenerativeConfig) -> dict[str, str]:
        # Fréchet distance to real images: lower is better; recognisable share and class entropy (how evenly the
        # classes are made): higher is better. The GAN's d_loss/g_loss and the VAE's losses are minimised.
        return {"frechet": "min", "recognisable": "max", "class_entropy": "max"}

    def load_data(self, config: GenerativeConfig) -> GenerativeData:
        raw = self.sources.get(vision_data.resolve_source(config.data))(config.data)
        if raw.sizes_vary and config.data.image_size is None:
            raise UserError(
                f"{raw.name} has images of more than one size; a generator makes one size: "
                "set it with --set data.image_size=[32,32]"
            )
        height, width = config.data.image_size or raw.image_shape[:2]
        channels = config.data.channels or raw.image_shape[2]
        if height % 4 or width % 4:
            raise UserError(
                f"images of {height}x{width}: the generator doubles its size twice, so height and width must "
                "be multiples of 4; set --set data.image_size=[28,28] (or another multiple of 4)"
            )

        def scaled(image, label):
            return vision_data.fit_image(image, height, width, channels) / 127.5 - 1, label

        splits = {
            name: batched(
                ds,
                batch_size=config.train.batch_size,
                training=name == "train",
                seed=config.train.seed,
                preprocess=scaled,
                cache=config.data.cache,
            )
            for name, ds in raw.splits.items()
        }
        held_out = {
            name: np.concatenate([x for x, _ in splits[name].as_numpy_iterator()]) for name in ("validation", "test")
        }
        return vision_data.as_data(raw, splits, (height, width, channels), GenerativeData, images=held_out)

    def build_model(self, config: GenerativeConfig, data: GenerativeData) -> keras.Model:
        return self.models.get(config.model.name)(config.model, Shape(data.input_shape, len(data.class_names)))

    def compile_args(self, config: GenerativeConfig, data: GenerativeData) -> dict:
        if config.model.name == "vae":
            return {}
        return {
            "discriminator_optimizer": keras.optimizers.Adam(
                config.model.discriminator_learning_rate, beta_1=config.train.beta_1
            )
        }

    def extra_callbacks(self, config: GenerativeConfig, data: GenerativeData, run: RunDir) -> list:
        return [SampleProgress(self, config, data, run)]

    def classifier(self, config: GenerativeConfig, data: GenerativeData, run: RunDir) -> keras.Model:
        """The quality classifier of this run (trained on its training split the first time, then kept)."""
        path = run.root / "quality_classifier.keras"
        if path.exists():
            return keras.models.load_model(path)
        epochs = min(30, max(1, -(-config.eval.classifier_steps * config.train.batch_size // data.sizes["train"])))
        classifier, accuracy = quality.train_classifier(
            data.train, data.test, data.input_shape, len(data.class_names), epochs
        )
        classifier.save(path)
        run.write_info(quality_classifier_accuracy=round(accuracy, 4))
        log.info("quality classifier: test accuracy %.4f", accuracy)
        return classifier

    def generate(
        self, model: keras.Model, count: int, seed: int, label: int | None = None, classes: int = 0
    ) -> np.ndarray:
        """``count`` uint8 images from seeds seed, seed + 1, ...; a conditional model gets ``label``, or the classes in
        turn."""
        seeds = tf.range(seed, seed + count, dtype=tf.int64)
        latent = latents_from_seeds(seeds, model_latent_dim(model))
        if is_conditional(model):
            labels = tf.fill([count], label) if label is not None else tf.cast(seeds % classes, tf.int32)
            images = model.predict([latent, labels], batch_size=500, verbose=0)
        else:
            images = model.predict(latent, batch_size=500, verbose=0)
        return to_uint8(images).numpy()

    def sample(self, model: keras.Model, info: dict, count: int, seed: int, label: int | None) -> np.ndarray:
        """What `dlapps generative sample` asks for, checked."""
        classes = len(info["class_names"])
        if count < 1:
            raise UserError(f"--count must be at least 1, got {count}")
        if seed < 0:
            raise UserError(f"--seed must be >= 0 (seeds are counted up from it), got {seed}")
        if label is not None and not is_conditional(model):
            raise UserError("--label needs a class-conditional model (train one with --set model.name=cgan)")
        if label is not None and not 0 <= label < classes:
            raise UserError(f"--label must be a class index from 0 to {classes - 1} ({', '.join(info['class_names'])})")
        return self.generate(model, count, seed, label, classes)

    def write_samples(self, examples: np.ndarray, out: Path, out_dir: Path | None, seed: int) -> list[Path]:
        """A grid PNG at ``out``; with ``out_dir``, one PNG per image there, named by its seed."""
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(grid_png(examples))
        if out_dir is None:
            return [out]
        out_dir.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(examples):
            (out_dir / f"seed_{seed + i:06d}.png").write_bytes(tf.io.encode_png(image).numpy())
        return [out, out_dir]

    def evaluate(
        self, model: keras.Model, data: GenerativeData, config: GenerativeConfig, run: RunDir, step: int
    ) -> dict:
        classifier = self.classifier(config, data, run)
        real_features, real_probabilities = quality.embed(classifier, data.images["test"])
        images = self.generate(model, config.eval.samples, config.eval.seed, classes=len(data.class_names))
        generated = quality.quality(*quality.embed(classifier, images / 127.5 - 1), real_features)
        validation_features, _ = quality.embed(classifier, data.images["validation"])
        real = quality.quality(real_features, real_probabilities, validation_features)  # real vs real: the floor
        if not model.compiled:  # loaded for evaluate: compiled only to run its test_step
            model.compile(optimizer=keras.optimizers.Adam(), **self.compile_args(config, data))
        # The test step draws random latents (GAN) and codes (VAE): seeded, and from a freshly traced step (a traced
        # random op goes on from where it stopped), so every evaluate of a run gives the same test losses.
        keras.utils.set_random_seed(config.eval.seed)
        model.make_test_function(force=True)
        test_losses = model.evaluate(data.test, verbose=0, return_dict=True)
        metrics = {
            "split": "test",
            "samples": generated,
            "real_test_images": real,
            "quality_classifier_accuracy": run.info().get("quality_classifier_accuracy"),
            "test_losses": {k: round(float(v), 4) for k, v in test_losses.items()},
        }
        grid = self.generate(model, config.eval.grid, config.eval.seed, classes=len(data.class_names))
        run.samples.mkdir(exist_ok=True)
        (run.samples / "samples.png").write_bytes(grid_png(grid))
        writer = tf.summary.create_file_writer(str(run.logs / "eval"))
        with writer.as_default(step=step):
            tf.summary.image("samples/grid", grid_batch(grid))
            for key in ("frechet", "recognisable", "class_entropy"):
                tf.summary.scalar(f"evaluation/{key}", generated[key])
        writer.close()
        run.write_metrics(metrics)
        return metrics

    def headline(self, metrics: dict) -> str:
        s, r = metrics["samples"], metrics["real_test_images"]
        shares = s["class_shares"]
        return (
            f"Fréchet {s['frechet']:.2f} (real test images: {r['frechet']:.2f}), recognisable {s['recognisable']:.3f} "
            f"(real: {r['recognisable']:.3f}), class shares {min(shares):.3f}..{max(shares):.3f} "
            f"on {s['images']} samples"
        )

    def example_inputs(self, folder: Path) -> list[str]:
        return ["--count", "4", "--out", str(folder / "grid.png"), "--out-dir", str(folder / "each")]

    def serving_example(self, info: dict, config: GenerativeConfig) -> dict[str, np.ndarray]:
        """Seeds 0 and 1 (and, for a conditional model, classes 0 and 1)."""
        example = {"seed": np.array([0, 1], np.int64)}
        if config.model.name in CONDITIONAL:
            example["label"] = np.array([0, 1], np.int64)
        return example

    def serving_endpoints(self, model: keras.Model, info: dict, config: GenerativeConfig) -> Endpoints:
        dim = model_latent_dim(model)
        conditional = is_conditional(model)
        # Any shape: one seed (or label) [] or a batch [batch]; one label applies to every seed or latent.
        label_spec = [tf.TensorSpec(None, tf.int64, name="label")] if conditional else []

        def from_latent(latent, *label):
            if conditional:
                labels = tf.broadcast_to(tf.reshape(label[0], [-1]), tf.shape(latent)[:1])
                inputs = [latent, tf.cast(labels, tf.int32)]
            else:
                inputs = latent
            return {"images": to_uint8(model(inputs, training=False))}

        def from_seed(seed, *label):
            return from_latent(latents_from_seeds(tf.reshape(seed, [-1]), dim), *label)

        return {
            "serving_default": (from_seed, [tf.TensorSpec(None, tf.int64, name="seed"), *label_spec]),
            "from_latent": (from_latent, [tf.TensorSpec([None, dim], tf.float32, name="latent"), *label_spec]),
        }


def is_conditional(model: keras.Model) -> bool:
    return bool(getattr(model, "conditional", False))


def model_latent_dim(model: keras.Model) -> int:
    return int(model.latent_dim)


def grid_png(images: np.ndarray) -> bytes:
    return figures.image_grid_png(images, [""] * len(images), columns=8)


def grid_batch(images: np.ndarray) -> tf.Tensor:
    return tf.expand_dims(tf.image.decode_png(grid_png(images), channels=4), 0)


class SampleProgress(EpochSummaries):
    """Every eval.every_epochs: the fixed-latent grid (samples/epoch_NNN.png, TensorBoard ``samples/grid``) and the
    quality figures against the validation images, added to the epoch's logs as val_frechet, val_recognisable."""

    def __init__(self, pipeline: GenerativePipeline, config: GenerativeConfig, data: GenerativeData, run: RunDir):
        super().__init__(run.logs / "validation", config.eval.every_epochs)
        self.pipeline, self.config, self.data, self.run = pipeline, config, data, run
        self.classifier, self.reference = None, None

    def on_train_begin(self, logs=None):
        self.classifier = self.pipeline.classifier(self.config, self.data, self.run)
        self.reference, _ = quality.embed(self.classifier, self.data.images["validation"])

    def summarise(self, step: int, logs: dict) -> None:
        classes, seed = len(self.data.class_names), self.config.eval.seed
        grid = self.pipeline.generate(self.model, self.config.eval.grid, seed, classes=classes)
        self.run.samples.mkdir(exist_ok=True)
        (self.run.samples / f"epoch_{step:03d}.png").write_bytes(grid_png(grid))
        images = self.pipeline.generate(self.model, self.config.eval.epoch_samples, seed, classes=classes)
        found = quality.quality(*quality.embed(self.classifier, images / 127.5 - 1), self.reference)
        logs.update(
            val_frechet=found["frechet"],
            val_recognisable=found["recognisable"],
            val_class_entropy=found["class_entropy"],
        )
        with self.writer.as_default(step=step):
            tf.summary.image("samples/grid", grid_batch(grid))


PIPELINE = GenerativePipeline()
