"""Real MNIST, official train/test: dlapps vs the keras-io "Simple MNIST convnet" recipe, one script.

Both clocks run over the whole fit, each recipe's own validation, checkpoints and TensorBoard
summaries included; they stop only while this script scores the test split (every ``--every``
steps). Figures: final test accuracy, seconds to first reach 0.99 test accuracy, their ratio.

    python benchmarks/vision_mnist.py [--config benchmarks/configs/mnist.yaml]
"""

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path

import numpy as np
from common import REPO, SHARED, TimeToAccuracy, emit, require

TARGET = 0.99


def load_test(mnist: Path):
    from pipelines.vision.data import read_idx

    return (
        read_idx(mnist / "t10k-images-idx3-ubyte.gz")[..., None].astype("float32"),
        read_idx(mnist / "t10k-labels-idx1-ubyte.gz"),
    )


def run_dlapps(mnist: Path, config_path: Path, every: int, x_test, y_test) -> dict:
    from pipelines.core import config as cfg
    from pipelines.core import training
    from pipelines.vision.pipeline import PIPELINE

    config = cfg.apply_overrides(cfg.load_yaml(config_path, PIPELINE.config_class), [f"data.path={mnist}"])
    data, model = training.prepare(PIPELINE, config)
    clock = TimeToAccuracy(x_test, y_test, TARGET, every)
    with tempfile.TemporaryDirectory() as runs:
        run = training.create_run(PIPELINE, config, runs, "mnist")
        with contextlib.redirect_stdout(sys.stderr):  # Keras' progress lines; stdout is for the JSON
            metrics = training.train(PIPELINE, config, data, model, run, callbacks=[clock])
    return {
        "config": str(config_path.relative_to(REPO)),
        "model": config.model.name,
        "parameters": model.count_params(),
        "epochs": config.train.epochs,
        "test_accuracy": round(metrics["accuracy"], 4),
        "seconds_to_0.99": clock.reached_at,
        "train_seconds": round(clock.seconds, 1),
        "curve": clock.curve,
    }


def run_keras_io(mnist: Path, every: int, x_test, y_test, epochs: int) -> dict:
    import keras
    from keras_io_recipes import fit_recipe, simple_convnet

    from pipelines.vision.data import read_idx

    x = read_idx(mnist / "train-images-idx3-ubyte.gz")[..., None].astype("float32")
    y = read_idx(mnist / "train-labels-idx1-ubyte.gz")
    keras.utils.set_random_seed(0)
    model = simple_convnet((28, 28, 1), 10)
    clock = TimeToAccuracy(x_test, y_test, TARGET, every)
    fit_recipe(model, x, y, epochs=epochs, callbacks=[clock])
    accuracy = float(np.mean(model.predict(x_test, verbose=0).argmax(1) == y_test))
    return {
        "parameters": model.count_params(),
        "epochs": epochs,
        "test_accuracy": round(accuracy, 4),
        "seconds_to_0.99": clock.reached_at,
        "train_seconds": round(clock.seconds, 1),
        "curve": clock.curve,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "benchmarks" / "configs" / "mnist.yaml")
    parser.add_argument("--every", type=int, default=100, help="score the test split every N training steps")
    parser.add_argument("--recipe-epochs", type=int, default=15)
    args = parser.parse_args()
    mnist = require(SHARED / "mnist")
    x_test, y_test = load_test(mnist)
    ours = run_dlapps(mnist, args.config.resolve(), args.every, x_test, y_test)
    recipe = run_keras_io(mnist, args.every, x_test, y_test, args.recipe_epochs)
    ratio = (
        ours["seconds_to_0.99"] / recipe["seconds_to_0.99"]
        if ours["seconds_to_0.99"] and recipe["seconds_to_0.99"]
        else None
    )
    emit(
        "vision_mnist",
        {"dlapps": ours, "keras_io_simple_convnet": recipe, "time_to_0.99_ratio": round(ratio, 3) if ratio else None},
    )


if __name__ == "__main__":
    main()
