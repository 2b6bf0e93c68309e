"""Free Spoken Digit Dataset: `dlapps speech train` on the official split and with each speaker left
out, timed as whole commands; then the exported model's `wav_bytes` signature against
`dlapps speech predict` on every official test clip.

    python benchmarks/speech_fsdd.py [--splits official george jackson lucas nicolas theo yweweler]
                                     [--set KEY=VALUE ...]
"""

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from common import SHARED, dlapps, emit, require, timed_train

SPEAKERS = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]
OFFICIAL = "index:0-4"  # the dataset's own split: takes 0-4 of every digit and speaker are the test set


def train(recordings: Path, runs: Path, name: str, split: str, sets: list[str]) -> dict:
    run, wall, metrics, info = timed_train("speech", recordings, runs, name, [f"data.split={split}", *sets])
    return {
        "split": split,
        "test_clips": metrics["examples"],
        "accuracy": round(metrics["accuracy"], 4),
        "macro_f1": round(metrics["macro_f1"], 4),
        "command_seconds": round(wall, 1),
        "fit_seconds": info.get("train_seconds"),
        "epochs": info.get("epochs_done"),
        "run": run,
    }


def serving_agreement(recordings: Path, run: Path) -> dict:
    """Top-1 of the exported wav_bytes signature vs `dlapps speech predict`, clip by clip."""
    import tensorflow as tf

    clips = sorted(p for p in recordings.glob("*.wav") if int(p.stem.rsplit("_", 1)[1]) <= 4)
    predicted = [line.split("\t")[1] for line in dlapps("speech", "predict", run, *clips).stdout.strip().splitlines()]
    dlapps("speech", "export", run, "--format", "saved_model")
    serve = tf.saved_model.load(str(run / "export" / "saved_model")).signatures["wav_bytes"]
    served = []
    for start in range(0, len(clips), 100):
        batch = tf.constant([p.read_bytes() for p in clips[start : start + 100]])
        served += [n.decode() for n in serve(wav_bytes=batch)["class_name"].numpy()]
    truth = [p.stem.split("_")[0] for p in clips]
    return {
        "clips": len(clips),
        "same_top1": sum(a == b for a, b in zip(predicted, served)),
        "served_accuracy": round(sum(a == b for a, b in zip(served, truth)) / len(clips), 4),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", nargs="+", default=["official", *SPEAKERS])
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting for every run (default: dlapps' defaults)",
    )
    args = parser.parse_args()
    recordings = require(SHARED / "fsdd" / "recordings")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        for name in args.splits:
            split = OFFICIAL if name == "official" else f"speaker:{name}"
            results[name] = train(recordings, runs, name, split, args.sets)
            print(f"{name}: {results[name]['accuracy']} in {results[name]['command_seconds']} s", file=sys.stderr)
        if "official" in results:
            results["official"]["serving"] = serving_agreement(recordings, results["official"]["run"])
    for result in results.values():
        result.pop("run")
    unseen = {name: r["accuracy"] for name, r in results.items() if name in SPEAKERS}
    summary = {}
    if unseen:
        summary = {
            "unseen_speaker_accuracy": unseen,
            "unseen_speaker_mean": round(statistics.mean(unseen.values()), 4),
            "unseen_speaker_worst": min(unseen.values()),
        }
    emit("speech_fsdd", {"settings": args.sets, "runs": results, **summary})


if __name__ == "__main__":
    main()
