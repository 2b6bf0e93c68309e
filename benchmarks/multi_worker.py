"""`train.strategy=multi_worker` against one process, same script: MNIST (official split) with
`configs/mnist.yaml`, the same global batch and the same steps, once in one process and once as
N worker processes on this machine (`train.workers=N`, 127.0.0.1).

Figures: training and validation loss after each epoch, test accuracy, and seconds per step
(fit time over steps; each run's own) with their ratio. On one machine's shared cores no speed-up
is expected: the ratio is what the collectives and the second process cost.

    python benchmarks/multi_worker.py [--workers 2] [--epochs 2] [--steps 100]
"""

import argparse
import tempfile
from pathlib import Path

from common import REPO, SHARED, emit, require, timed_train


def epoch_losses(run: Path, split: str) -> list[float]:
    from tests.helpers import event_scalars

    return [round(value, 4) for value in event_scalars(run / "logs" / split, "epoch_loss")]


def one_run(mnist: Path, runs: Path, name: str, settings: list[str]) -> dict:
    config = REPO / "benchmarks" / "configs" / "mnist.yaml"
    run, seconds, metrics, info = timed_train("vision", mnist, runs, name, settings, "--config", config)
    return {
        "train_loss": epoch_losses(run, "train"),
        "val_loss": epoch_losses(run, "validation"),
        "test_accuracy": round(metrics["accuracy"], 4),
        "fit_seconds": info["train_seconds"],
        "command_seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=100, help="steps per epoch, of the global batch")
    args = parser.parse_args()
    mnist = require(SHARED / "mnist")
    settings = [
        f"train.epochs={args.epochs}",
        f"train.steps_per_epoch={args.steps}",
        "eval.every_epochs=0",
    ]
    with tempfile.TemporaryDirectory() as runs:
        runs = Path(runs)
        single = one_run(mnist, runs, "one", [*settings])
        cluster = ["train.strategy=multi_worker", f"train.workers={args.workers}"]
        multi = one_run(mnist, runs, "many", [*settings, *cluster])
    steps = args.epochs * args.steps
    for figures in (single, multi):
        figures["seconds_per_step"] = round(figures["fit_seconds"] / steps, 4)
    emit(
        "multi_worker",
        {
            "data": "MNIST, configs/mnist.yaml",
            "steps": steps,
            "workers": args.workers,
            "one_process": single,
            "workers_on_this_machine": multi,
            "last_train_loss_relative_difference": round(
                abs(multi["train_loss"][-1] - single["train_loss"][-1]) / single["train_loss"][-1], 4
            ),
            "seconds_per_step_ratio": round(multi["seconds_per_step"] / single["seconds_per_step"], 3),
        },
    )


if __name__ == "__main__":
    main()
