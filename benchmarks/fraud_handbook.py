"""Fraud detection on the Fraud Detection Handbook's data, chapter 3 protocol: dlapps against scikit-learn.

    python benchmarks/fraud_handbook.py                 # default (3 seeds), other models, LR + RF
    python benchmarks/fraud_handbook.py --seeds 1 --models mlp

Train 2018-07-25..07-31 (dlapps holds out 07-31 to stop training and tune its threshold), a
7-day delay, test 2018-08-08..08-14 without the cards known to be compromised (58,264
transactions, 385 frauds); the handbook's 15 features. scikit-learn's logistic regression and
random forest run on the same split in the same script (trained on all 7 days, as the handbook
does). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
import time
from pathlib import Path

import numpy as np
from common import SHARED, emit, require, timed_train

HANDBOOK = SHARED / "fraud_handbook" / "transactions_2018-07-25_to_2018-08-14.csv.gz"
FEATURES = ["TX_AMOUNT", "TX_DURING_WEEKEND", "TX_DURING_NIGHT"] + [
    f"{who}_{what}_{w}DAY_WINDOW"
    for who, pair in (("CUSTOMER_ID", ("NB_TX", "AVG_AMOUNT")), ("TERMINAL_ID", ("NB_TX", "RISK")))
    for w in (1, 7, 30)
    for what in pair
]
PUBLISHED = {  # the handbook's BaselineModeling table on this split: AUC, AP, CP@100
    "logistic regression": (0.871, 0.606, 0.291),
    "random forest": (0.867, 0.658, 0.287),
    "xgboost": (0.862, 0.639, 0.273),
    "handbook neural net": (0.864, 0.653, 0.286),
}
KEYS = ("roc_auc", "average_precision", "card_precision_at_100")


def dlapps_runs(models: list[str], seeds: int, runs: Path) -> dict:
    results = {}
    for model in models:
        rows = []
        for seed in range(seeds if model == "mlp" else 1):
            _, seconds, metrics, info = timed_train(
                "fraud",
                HANDBOOK,
                runs,
                f"{model}-{seed}",
                [f"data.features=[{','.join(FEATURES)}]", f"model.name={model}", f"train.seed={seed}"],
            )
            rows.append(
                {
                    **{k: round(metrics[k], 4) for k in KEYS},
                    "train_seconds": info["train_seconds"],
                    "command_seconds": round(seconds, 1),
                    "epochs": info["epochs_done"],
                    "fraud_f1_at_threshold": round(metrics["per_class"]["fraud"]["f1"], 4),
                }
            )
        results[model] = {"runs": rows, "mean": {k: round(float(np.mean([r[k] for r in rows])), 4) for k in KEYS}}
    return results


def handbook_columns() -> dict[str, np.ndarray]:
    import csv

    with gzip.open(HANDBOOK, "rt", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {key: np.array([row[key] for row in rows], dtype=np.float64) for key in rows[0] if key != "TX_DATETIME"}


def scikit_learn_baselines() -> dict:
    """The handbook's own recipe: features scaled on the training window, default LR and RF (random_state 0)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score, roc_auc_score
    from sklearn.preprocessing import StandardScaler

    from pipelines.fraud.protocol import card_precision_at_k, train_delay_test

    column = handbook_columns()
    days, customers, frauds = column["TX_TIME_DAYS"].astype(int), column["CUSTOMER_ID"].astype(int), column["TX_FRAUD"]
    train, test = train_delay_test(days, customers, frauds, train_start=int(days.min()))
    x = np.stack([column[n] for n in FEATURES], axis=1)
    scaler = StandardScaler().fit(x[train])
    results = {}
    for name, model in (
        ("logistic regression", LogisticRegression(random_state=0)),
        ("random forest", RandomForestClassifier(random_state=0, n_jobs=-1)),
    ):
        start = time.perf_counter()
        model.fit(scaler.transform(x[train]), frauds[train])
        seconds = time.perf_counter() - start
        scores = model.predict_proba(scaler.transform(x[test]))[:, 1]
        cp, _ = card_precision_at_k(days[test], customers[test], frauds[test], scores, k=100)
        results[name] = {
            "roc_auc": round(float(roc_auc_score(frauds[test], scores)), 4),
            "average_precision": round(float(average_precision_score(frauds[test], scores)), 4),
            "card_precision_at_100": round(cp, 4),
            "train_seconds": round(seconds, 1),
            "test_transactions": int(len(test)),
            "test_frauds": int(frauds[test].sum()),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the default model (others: one)")
    parser.add_argument("--models", nargs="+", default=["mlp", "logistic", "autoencoder", "sequence"])
    args = parser.parse_args()
    require(HANDBOOK)
    with tempfile.TemporaryDirectory() as runs:
        dlapps = dlapps_runs(args.models, args.seeds, Path(runs))
    sklearn = scikit_learn_baselines()
    default = dlapps.get("mlp", {}).get("mean", {})
    beats = {name: all(default.get(k, 0) > v for k, v in zip(KEYS, published)) for name, published in PUBLISHED.items()}
    emit(
        "fraud_handbook",
        {
            "dlapps": dlapps,
            "scikit_learn": sklearn,
            "published": {n: dict(zip(KEYS, v)) for n, v in PUBLISHED.items()},
            "default_beats_published_on_all_three": beats,
        },
    )


if __name__ == "__main__":
    main()
