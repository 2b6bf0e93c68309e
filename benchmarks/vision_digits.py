"""`dlapps vision train` with no arguments (embedded digits) against the keras-io recipe, same split.

Prints JSON: dlapps' test accuracy and whole-command wall time per seed, and the recipe's
accuracy and fit time on the identical stratified 80/20 split.

    python benchmarks/vision_digits.py [--seeds 0 1 2]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, emit


def dlapps_default(seed: int, runs: Path) -> dict:
    # The whole command as a user types it, start-up included; only the seed varies.
    command = [sys.executable, "-m", "apps.cli", "vision", "train", "--runs-dir", str(runs), "--name", f"seed{seed}"]
    if seed != 0:
        command += ["--set", f"train.seed={seed}"]
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, capture_output=True)
    wall = time.perf_counter() - start
    metrics = json.loads((runs / "vision" / f"seed{seed}" / "metrics.json").read_text())
    return {
        "seed": seed,
        "test_accuracy": round(metrics["accuracy"], 4),
        "macro_f1": round(metrics["macro_f1"], 4),
        "test_examples": metrics["examples"],
        "wall_seconds": round(wall, 1),
    }


def keras_io_recipe() -> dict:
    import keras
    import numpy as np
    from keras_io_recipes import fit_recipe, simple_convnet

    from pipelines.vision.data import digits_source
    from pipelines.vision.pipeline import VisionDataConfig

    raw = digits_source(VisionDataConfig())
    arrays = {k: [np.stack(a) for a in zip(*ds.as_numpy_iterator())] for k, ds in raw.splits.items()}
    # The recipe holds out its own 10% for validation, so it trains on train + our validation split.
    x = np.concatenate([arrays["train"][0], arrays["validation"][0]]).astype("float32")
    y = np.concatenate([arrays["train"][1], arrays["validation"][1]])
    keras.utils.set_random_seed(0)
    model = simple_convnet(x.shape[1:], 10)
    start = time.perf_counter()
    fit_recipe(model, x, y, epochs=15)
    seconds = time.perf_counter() - start
    accuracy = float(
        np.mean(model.predict(arrays["test"][0].astype("float32"), verbose=0).argmax(1) == arrays["test"][1])
    )
    return {"test_accuracy": round(accuracy, 4), "fit_seconds": round(seconds, 1), "epochs": 15}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as runs:
        dlapps = [dlapps_default(seed, Path(runs)) for seed in args.seeds]
    emit(
        "vision_digits",
        {"command": "dlapps vision train", "dlapps": dlapps, "keras_io_simple_convnet": keras_io_recipe()},
    )


if __name__ == "__main__":
    main()
