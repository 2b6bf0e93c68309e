"""Is the input pipeline the bottleneck? Training throughput of dlapps' full tf.data pipeline (PNG
files: read, decode, fit, cache, shuffle, batch, prefetch) against the same model fed the same
images pre-decoded in memory, in one process.

    python benchmarks/vision_input_pipeline.py [--images 12000] [--epochs 3]
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from common import SHARED, emit, require


class EpochTimes:
    def __new__(cls):
        import keras

        class Callback(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.times = []

            def on_epoch_begin(self, epoch, logs=None):
                self._start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.times.append(time.perf_counter() - self._start)

        return Callback()


def write_pngs(mnist: Path, count: int, root: Path) -> tuple[np.ndarray, np.ndarray]:
    import tensorflow as tf

    from pipelines.vision.data import read_idx

    images = read_idx(mnist / "train-images-idx3-ubyte.gz")[:count]
    labels = read_idx(mnist / "train-labels-idx1-ubyte.gz")[:count]
    for index, (image, label) in enumerate(zip(images, labels)):
        folder = root / str(label)
        folder.mkdir(exist_ok=True)
        (folder / f"{index:05d}.png").write_bytes(tf.io.encode_png(image[..., None]).numpy())
    return images, labels


def throughput(model, dataset, examples: int, epochs: int) -> dict:
    clock = EpochTimes()
    model.fit(dataset, epochs=epochs, callbacks=[clock], verbose=0)
    return {
        "epoch_seconds": [round(t, 2) for t in clock.times],
        "examples_per_second_all_epochs": round(examples * epochs / sum(clock.times), 1),
        "examples_per_second_after_first": round(examples * (epochs - 1) / sum(clock.times[1:]), 1),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12000)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    import keras
    import tensorflow as tf

    from pipelines.core import config as cfg
    from pipelines.core import training
    from pipelines.vision.pipeline import PIPELINE

    mnist = require(SHARED / "mnist")
    with tempfile.TemporaryDirectory() as tmp:
        write_pngs(mnist, args.images, Path(tmp))
        config = cfg.apply_overrides(
            PIPELINE.config_class(),
            [f"data.path={tmp}", "data.test_fraction=0.01", "data.validation_fraction=0.01", "model.augment=[]"],
        )
        data, model = training.prepare(PIPELINE, config)
        initial = model.get_weights()
        # The same training examples, decoded up front into memory: the ceiling for any input pipeline.
        x, y = (np.concatenate(parts) for parts in zip(*[(a.numpy(), b.numpy()) for a, b in data.train]))
        in_memory = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0).batch(config.train.batch_size)
        baseline = throughput(model, in_memory.prefetch(tf.data.AUTOTUNE), len(x), args.epochs)
        # A fresh pipeline and a fresh copy of the model (same start, same graph tracing to pay):
        # the first epoch reads and decodes every file, later ones come from the cache.
        data, model = training.prepare(PIPELINE, config)
        model.set_weights(initial)
        ours = throughput(model, data.train, len(x), args.epochs)
    emit(
        "vision_input_pipeline",
        {
            "images": len(x),
            "model": config.model.name,
            "batch_size": config.train.batch_size,
            "in_memory_tensors": baseline,
            "dlapps_tf_data_from_png_files": ours,
            "ratio_all_epochs": round(
                ours["examples_per_second_all_epochs"] / baseline["examples_per_second_all_epochs"], 3
            ),
            "ratio_after_first_epoch": round(
                ours["examples_per_second_after_first"] / baseline["examples_per_second_after_first"], 3
            ),
            "keras": keras.__version__,
        },
    )


if __name__ == "__main__":
    main()
