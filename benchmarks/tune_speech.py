"""`dlapps speech tune` for the speaker the default model knows least: FSDD with nicolas left out (his test accuracy
was the worst of the six). A Bayesian search over augmentation and frontend settings, each trial chosen on another
speaker held out of its training (`data.validation=speaker:lucas`, so nicolas is never seen); then the best
trial's config retrained as `train` would (all five other speakers, the default validation), beside the default
config trained in the same script.

    python benchmarks/tune_speech.py [--minutes 30] [--validation-speaker lucas] [--trial-epochs 20]
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import yaml
from common import SHARED, emit, require, timed_search, timed_train

from apps.tuning.space import overrides

TEST_SPEAKER = "nicolas"
SPACE = [
    "data.features=logmel,mfcc",
    "data.mel_bins=32,40,64",
    "data.window_ms=24,32,48",
    "data.hop_ms=8,12,16",
    "data.mean_normalize=true,false",
    "model.shift=0.0..0.3",
    "model.time_masks=0..4",
    "model.time_mask=0.05..0.25",
    "model.freq_masks=0..4",
    "model.freq_mask=0.05..0.3",
]


def figures(metrics: dict, info: dict, seconds: float) -> dict:
    return {
        "test_accuracy": round(metrics["accuracy"], 4),
        "test_macro_f1": round(metrics["macro_f1"], 4),
        "command_seconds": round(seconds, 1),
        "epochs": info.get("epochs_done"),
    }


def search(recordings: Path, runs: Path, args):
    sets = [
        f"data.split=speaker:{TEST_SPEAKER}",
        f"data.validation=speaker:{args.validation_speaker}",
        f"train.epochs={args.trial_epochs}",
    ]
    return timed_search("speech", recordings, runs, sets, SPACE, args.minutes, "val_accuracy")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--validation-speaker", default="lucas")
    parser.add_argument("--trial-epochs", type=int, default=20)
    args = parser.parse_args()
    recordings = require(SHARED / "fsdd" / "recordings")
    split = f"data.split=speaker:{TEST_SPEAKER}"
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        _, seconds, metrics, info = timed_train("speech", recordings, runs, "default", [split])
        default = figures(metrics, info, seconds)
        print(f"default: {default}", file=sys.stderr)
        trials, tune, search_seconds, memory, output = search(recordings, runs, args)
        print(output, file=sys.stderr)
        best = trials[0]
        best_trial = json.loads((tune / best["run"] / "metrics.json").read_text())
        # the best trial's settings, trained as `dlapps speech train` trains: every other speaker, default epochs
        chosen = yaml.safe_load((tune / "best.yaml").read_text())
        keys = [dim.split("=")[0].split(".") for dim in SPACE]
        settings = overrides({f"{section}.{name}": chosen[section][name] for section, name in keys})  # as --set takes
        _, seconds, metrics, info = timed_train("speech", recordings, runs, "best", [split, *settings])
        retrained = figures(metrics, info, seconds)
    emit(
        "tune_speech",
        {
            "test_speaker": TEST_SPEAKER,
            "validation_speaker": args.validation_speaker,
            "space": SPACE,
            "trial_epochs": args.trial_epochs,
            "search_seconds": round(search_seconds, 1),
            "trials": len(trials),
            "completed": sum(row["status"] == "completed" for row in trials),
            "best_trial": {key: best[key] for key in best if key not in ("run", "message")},
            "best_trial_test_accuracy": round(best_trial["accuracy"], 4),
            "default": default,
            "best_settings": settings,
            "best_retrained": retrained,
            "search_process_rss_mib_after_each_trial": memory,
        },
    )


if __name__ == "__main__":
    main()
