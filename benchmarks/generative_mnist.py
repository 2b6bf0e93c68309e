"""Digit generation on real MNIST: dlapps' default against the keras-io "DCGAN overriding train_step"
recipe (plain Keras, its MNIST version), the same wall-clock budget on this machine, scored alike.

    python benchmarks/generative_mnist.py                     # 10 minutes each, plus the VAE
    python benchmarks/generative_mnist.py --minutes 3 --skip-vae

Both are scored by one classifier (the dlapps run's quality classifier, trained on the MNIST
training split; its test accuracy is reported) on the same number of samples, against the
second half of the real test images (the first half is scored too, as the floor): Fréchet
distance in its feature space, the share it recognises with confidence >= 0.9, and the share
of each class. Also: the VAE's figures and test reconstruction loss, and the time to make
1,000 images with the exported SavedModel. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import SHARED, dlapps, emit, require

MNIST = SHARED / "mnist"


def train_dlapps(runs: Path, name: str, minutes: float, settings: list[str]) -> tuple[Path, float]:
    start = time.perf_counter()
    dlapps(
        "generative",
        "train",
        "--data",
        MNIST,
        "--runs-dir",
        runs,
        "--name",
        name,
        "--set",
        f"train.max_minutes={minutes}",
        "--set",
        "train.epochs=1000",
        *[x for s in settings for x in ("--set", s)],
    )
    return runs / "generative" / name, time.perf_counter() - start


def keras_io_recipe(train_images: np.ndarray, minutes: float, count: int) -> tuple[np.ndarray, dict]:
    """The recipe as published (MNIST version: latent 128, Adam 3e-4, noisy labels), trained for ``minutes``."""
    import keras
    import tensorflow as tf
    from keras import layers

    from pipelines.core.callbacks import TimeLimit

    keras.utils.set_random_seed(0)
    discriminator = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(64, 3, strides=2, padding="same"),
            layers.LeakyReLU(0.2),
            layers.Conv2D(128, 3, strides=2, padding="same"),
            layers.LeakyReLU(0.2),
            layers.GlobalMaxPooling2D(),
            layers.Dense(1),
        ]
    )
    latent_dim = 128
    generator = keras.Sequential(
        [
            keras.Input((latent_dim,)),
            layers.Dense(7 * 7 * 128),
            layers.LeakyReLU(0.2),
            layers.Reshape((7, 7, 128)),
            layers.Conv2DTranspose(128, 4, strides=2, padding="same"),
            layers.LeakyReLU(0.2),
            layers.Conv2DTranspose(128, 4, strides=2, padding="same"),
            layers.LeakyReLU(0.2),
            layers.Conv2D(1, 7, padding="same", activation="sigmoid"),
        ]
    )

    class GAN(keras.Model):
        def __init__(self):
            super().__init__()
            self.discriminator, self.generator = discriminator, generator

        def compile(self, d_optimizer, g_optimizer, loss_fn):
            super().compile()
            self.d_optimizer, self.g_optimizer, self.loss_fn = d_optimizer, g_optimizer, loss_fn

        def train_step(self, real_images):
            batch_size = tf.shape(real_images)[0]
            generated = self.generator(tf.random.normal((batch_size, latent_dim)))
            combined = tf.concat([generated, real_images], axis=0)
            labels = tf.concat([tf.ones((batch_size, 1)), tf.zeros((batch_size, 1))], axis=0)
            labels += 0.05 * tf.random.uniform(tf.shape(labels))
            with tf.GradientTape() as tape:
                d_loss = self.loss_fn(labels, self.discriminator(combined))
            grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
            self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
            with tf.GradientTape() as tape:
                g_loss = self.loss_fn(
                    tf.zeros((batch_size, 1)),
                    self.discriminator(self.generator(tf.random.normal((batch_size, latent_dim)))),
                )
            grads = tape.gradient(g_loss, self.generator.trainable_weights)
            self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
            return {"d_loss": d_loss, "g_loss": g_loss}

    dataset = (
        tf.data.Dataset.from_tensor_slices(train_images.astype("float32") / 255).shuffle(1024).batch(64).prefetch(32)
    )
    gan = GAN()
    gan.compile(
        keras.optimizers.Adam(3e-4), keras.optimizers.Adam(3e-4), keras.losses.BinaryCrossentropy(from_logits=True)
    )
    start = time.perf_counter()
    history = gan.fit(dataset, epochs=1000, callbacks=[TimeLimit(minutes)], verbose=0)
    seconds = time.perf_counter() - start
    latent = tf.random.stateless_normal((count, latent_dim), seed=[0, 0])
    images = np.round(generator.predict(latent, batch_size=500, verbose=0) * 255).astype(np.uint8)
    steps = int(gan.d_optimizer.iterations.numpy())
    return images, {
        "train_seconds": round(seconds, 1),
        "steps": steps,
        "epochs_started": len(history.history["d_loss"]),
    }


def score(classifier, images: np.ndarray, reference: np.ndarray) -> dict:
    from pipelines.generative import quality

    found = quality.quality(*quality.embed(classifier, images.astype(np.float32) / 127.5 - 1), reference)
    shares = found["class_shares"]
    return {
        **{k: round(v, 4) if isinstance(v, float) else v for k, v in found.items()},
        "every_class_between_0.07_and_0.13": bool(min(shares) >= 0.07 and max(shares) <= 0.13),
    }


def sampling_speed(run: Path) -> dict:
    """1,000 images from the exported SavedModel (median of 5, after one warm-up), and the Keras model in process."""
    import keras
    import tensorflow as tf

    import pipelines.generative.models  # noqa: F401  (registers the GAN and VAE classes for loading)

    dlapps("generative", "export", run)
    serve = tf.saved_model.load(str(run / "export" / "saved_model")).signatures["serving_default"]
    model = keras.models.load_model(run / "model.keras", compile=False)
    seeds = tf.range(1000, dtype=tf.int64)
    labels = {"label": seeds % 10} if model.conditional else {}  # the classes in turn
    serve(seed=seeds, **labels)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        serve(seed=seeds, **labels)["images"].numpy()
        times.append(time.perf_counter() - start)
    latent = tf.random.normal((1000, int(model.latent_dim)))
    inputs = [latent, tf.cast(seeds % 10, tf.int32)] if model.conditional else latent
    model.predict(inputs, batch_size=1000, verbose=0)
    start = time.perf_counter()
    model.predict(inputs, batch_size=1000, verbose=0)
    in_process = time.perf_counter() - start
    return {
        "exported_1000_images_seconds": round(float(np.median(times)), 3),
        "keras_model_in_process_seconds": round(in_process, 3),
        "ratio_exported_to_in_process": round(float(np.median(times)) / in_process, 2),
    }


def report(results: dict) -> None:
    """Each part's figures as soon as they exist (on stderr): a later failure loses none of them."""
    print(json.dumps(results), file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget of each GAN")
    parser.add_argument("--vae-minutes", type=float, default=5.0)
    parser.add_argument(
        "--samples", type=int, default=5000, help="images scored per generator (as many as the reference)"
    )
    parser.add_argument("--skip-vae", action="store_true")
    args = parser.parse_args()
    require(MNIST)
    import keras

    from pipelines.generative import quality
    from pipelines.vision.data import read_idx

    test_images = read_idx(MNIST / "t10k-images-idx3-ubyte.gz")[..., None]
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        run, seconds = train_dlapps(runs, "default", args.minutes, [f"eval.samples={args.samples}"])
        info = json.loads((run / "run.json").read_text())
        classifier = keras.models.load_model(run / "quality_classifier.keras")
        # The second half of the test images is the reference every set is measured against; the first half is
        # the real images' own score (the floor a generator can reach with as many images).
        half = len(test_images) // 2
        reference, _ = quality.embed(classifier, test_images[half:].astype(np.float32) / 127.5 - 1)
        from pipelines.generative.pipeline import PIPELINE

        model = keras.models.load_model(run / "model.keras", compile=False)
        ours = PIPELINE.generate(model, args.samples, 0, classes=10)
        results = {
            "quality_classifier_test_accuracy": info["quality_classifier_accuracy"],
            "real_test_images": score(classifier, test_images[:half], reference),
            "dlapps_default": {
                **score(classifier, ours, reference),
                "train_seconds": info["train_seconds"],
                "epochs_started": info["epochs_done"],
                "command_seconds": round(seconds, 1),
            },
        }
        report(results)
        recipe_images, recipe_run = keras_io_recipe(
            read_idx(MNIST / "train-images-idx3-ubyte.gz")[..., None], args.minutes, args.samples
        )
        results["keras_io_recipe"] = {**score(classifier, recipe_images, reference), **recipe_run}
        report(results)
        results["sampling"] = sampling_speed(run)
        if not args.skip_vae:
            vae_run, vae_seconds = train_dlapps(
                runs, "vae", args.vae_minutes, ["model.name=vae", f"eval.samples={args.samples}"]
            )
            vae = keras.models.load_model(vae_run / "model.keras", compile=False)
            metrics = json.loads((vae_run / "metrics.json").read_text())
            results["dlapps_vae"] = {
                **score(classifier, PIPELINE.generate(vae, args.samples, 0, classes=10), reference),
                "test_losses": metrics["test_losses"],
                "command_seconds": round(vae_seconds, 1),
            }
    emit("generative_mnist", {"minutes_each": args.minutes, "samples": args.samples, **results})


if __name__ == "__main__":
    main()
