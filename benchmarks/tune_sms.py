"""`dlapps nlp tune` on the SMS Spam Collection (the split of nlp_sms.py): a Bayesian search over the bag model's
settings for a fixed time, chosen on the validation split only; the best trial's test accuracy and spam F1
beside the default config's, trained in the same script.

    python benchmarks/tune_sms.py [--minutes 30] [--objective val_loss]
"""

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, SHARED, emit, require, search_memory, timed_train
from nlp_sms import spam_figures

SPACE = [
    "model.width=32,64,128,256",
    "model.depth=1,2",
    "model.dropout=0.0..0.6",
    "model.input_dropout=0.0..0.6",
    "train.learning_rate=log:3e-4..1e-2",
    "train.epochs=5,10,20",
    "text.word_ngrams=1,2,3",
    "text.char_ngrams=0,3,4,5,6",
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--objective", default="val_loss")
    args = parser.parse_args()
    table = require(SHARED / "sms_spam" / "SMSSpamCollection")
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        _, _, default_metrics, _ = timed_train("nlp", table, runs, "default", ["model.name=bag"])
        command = [sys.executable, "-m", "apps.cli", "nlp", "tune", "--data", str(table), "--set", "model.name=bag"]
        command += [x for item in SPACE for x in ("--space", item)]
        command += ["--algorithm", "bayesian", "--trials", "1000", "--max-minutes", str(args.minutes)]
        command += ["--objective", args.objective, "--runs-dir", str(runs), "--name", "search"]
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
        tune = runs / "nlp" / "search"
        memory = search_memory(process, tune / "results.csv")
        output = process.communicate()[0]
        if process.returncode != 0:
            sys.exit(f"the search failed:\n{output}")
        seconds = time.perf_counter() - start
        with open(tune / "results.csv", newline="") as file:
            trials = list(csv.DictReader(file))
        best = trials[0]
        best_metrics = json.loads((tune / best["run"] / "metrics.json").read_text())
        print(output, file=sys.stderr)
    emit(
        "tune_sms",
        {
            "space": SPACE,
            "objective": args.objective,
            "search_seconds": round(seconds, 1),
            "trials": len(trials),
            "completed": sum(row["status"] == "completed" for row in trials),
            "best_trial": {key: best[key] for key in best if key not in ("run", "message")},
            "best_test": spam_figures(best_metrics),
            "default_test": spam_figures(default_metrics),
            "search_process_rss_mib_after_each_trial": memory,
        },
    )


if __name__ == "__main__":
    main()
