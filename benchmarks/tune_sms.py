"""`dlapps nlp tune` on the SMS Spam Collection (the split of nlp_sms.py): a Bayesian search over the bag model's
settings for a fixed time, chosen on the validation split only; the best trial's test accuracy and spam F1
beside the default config's, trained in the same script.

    python benchmarks/tune_sms.py [--minutes 30] [--objective val_loss]
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

from common import SHARED, emit, require, timed_search, timed_train
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
        trials, tune, seconds, memory, output = timed_search(
            "nlp", table, runs, ["model.name=bag"], SPACE, args.minutes, args.objective
        )
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
