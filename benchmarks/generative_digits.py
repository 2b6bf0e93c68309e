"""`dlapps generative train` with no arguments (the bundled 8x8 digits): sample quality per seed.

Prints JSON: for each seed, the test-split figures the run writes to metrics.json (Fréchet distance
in its quality classifier's features, recognisable share, class shares, with the real test images'
own figures beside them) and the whole command's wall time. Extra `--set` settings compare variants:

    python benchmarks/generative_digits.py [--seeds 0 1 2] [--set train.epochs=30]
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

from common import dlapps, emit


def run_seed(seed: int, runs: Path, settings: list[str]) -> dict:
    name = f"seed{seed}"
    start = time.perf_counter()
    dlapps(
        "generative",
        "train",
        "--runs-dir",
        runs,
        "--name",
        name,
        "--set",
        f"train.seed={seed}",
        *[x for item in settings for x in ("--set", item)],
    )
    wall = time.perf_counter() - start
    metrics = json.loads((runs / "generative" / name / "metrics.json").read_text())
    samples, real = metrics["samples"], metrics["real_test_images"]
    return {
        "seed": seed,
        "frechet": round(samples["frechet"], 2),
        "recognisable": round(samples["recognisable"], 3),
        "class_shares": [round(min(samples["class_shares"]), 3), round(max(samples["class_shares"]), 3)],
        "real_frechet": round(real["frechet"], 2),
        "real_recognisable": round(real["recognisable"], 3),
        "quality_classifier_accuracy": metrics["quality_classifier_accuracy"],
        "wall_seconds": round(wall, 1),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as runs:
        results = [run_seed(seed, Path(runs), args.settings) for seed in args.seeds]
    emit("generative_digits", {"command": "dlapps generative train", "settings": args.settings, "runs": results})


if __name__ == "__main__":
    main()
