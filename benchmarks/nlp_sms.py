"""SMS Spam Collection, stratified 80/20 with seed 0: every dlapps text model trained as
`dlapps nlp train` (the whole command timed), its exported SavedModel's p50 latency on a batch
of one string, and the keras-io "Text classification with Transformer" recipe as plain Keras on
the same split, in the same script.

    python benchmarks/nlp_sms.py [--models bag cnn lstm transformer] [--set KEY=VALUE ...]
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from common import SHARED, dlapps, emit, p50_ms, require, timed_train

MODELS = ["bag", "cnn", "lstm", "transformer"]
ONE_MESSAGE = "Congratulations! You have won a free trip, call 09061701461 now to claim"


def spam_figures(metrics: dict) -> dict:
    return {
        "accuracy": round(metrics["accuracy"], 4),
        "spam_f1": round(metrics["per_class"]["spam"]["f1"], 4),
        "spam_precision": round(metrics["per_class"]["spam"]["precision"], 4),
        "spam_recall": round(metrics["per_class"]["spam"]["recall"], 4),
    }


def train(table: Path, runs: Path, model: str, sets: list[str]) -> dict:
    run, wall, metrics, info = timed_train("nlp", table, runs, model, [f"model.name={model}", *sets])
    return {
        **spam_figures(metrics),
        "argmax_accuracy": round(metrics.get("argmax_accuracy", metrics["accuracy"]), 4),
        "threshold": round(metrics["decision"]["threshold"], 4) if "decision" in metrics else None,
        "pr_auc": round(metrics["pr_auc"], 4),
        "test_messages": metrics["examples"],
        "command_seconds": round(wall, 1),
        "fit_seconds": info.get("train_seconds"),
        "epochs": info.get("epochs_done"),
        "served_p50_ms": served_latency(run),
    }


def served_latency(run: Path) -> float:
    """The exported SavedModel, as a client loads it, on a batch of one raw string."""
    import tensorflow as tf

    dlapps("nlp", "export", run, "--format", "saved_model")
    serve = tf.saved_model.load(str(run / "export" / "saved_model")).signatures["serving_default"]
    one = tf.constant([ONE_MESSAGE])
    return p50_ms(lambda: serve(text=one))


def keras_io_transformer(table: Path, seed: int = 0) -> dict:
    """The recipe on dlapps' default training split (the same test split; `--set` is not applied to
    it), as plain Keras. Its fit seconds include adapting the vectorizer (dlapps' exclude it)."""
    import keras
    import numpy as np
    import tensorflow as tf
    from keras_io_recipes import text_transformer, text_vectorizer
    from sklearn.metrics import precision_recall_fscore_support

    from pipelines.nlp.data import table_source
    from pipelines.nlp.pipeline import NlpDataConfig

    raw = table_source(NlpDataConfig(source="table", path=str(table)))
    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    vectorizer = text_vectorizer(raw.texts["train"])

    def ids(split, shuffle=False):
        examples = tf.data.Dataset.from_tensor_slices((raw.texts[split], raw.labels[split]))
        if shuffle:  # the recipe's fit(..., shuffle=True) on arrays: examples reshuffled every epoch
            examples = examples.shuffle(len(raw.labels[split]), seed=seed)
        return examples.batch(32).map(lambda x, y: (vectorizer(x), y))

    model = text_transformer(len(raw.class_names))
    model.fit(ids("train", shuffle=True), epochs=2, validation_data=ids("validation"), verbose=0)
    seconds = time.perf_counter() - start
    predicted = model.predict(ids("test"), verbose=0).argmax(axis=1)
    end_to_end = tf.function(lambda text: model(vectorizer(text), training=False))
    one = tf.constant([ONE_MESSAGE])
    y = raw.labels["test"]
    spam = raw.class_names.index("spam")
    precision, recall, f1, _ = precision_recall_fscore_support(y == spam, predicted == spam, average="binary")
    return {
        "accuracy": round(float(np.mean(predicted == y)), 4),
        "spam_f1": round(float(f1), 4),
        "spam_precision": round(float(precision), 4),
        "spam_recall": round(float(recall), 4),
        "fit_seconds": round(seconds, 1),
        "in_process_p50_ms": p50_ms(lambda: end_to_end(one)),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting for every run (default: dlapps' defaults)",
    )
    args = parser.parse_args()
    table = require(SHARED / "sms_spam" / "SMSSpamCollection")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            results[model] = train(table, Path(tmp), model, args.sets)
            print(f"{model}: {json.dumps(results[model])}", file=sys.stderr)
    baseline = keras_io_transformer(table)
    print(f"keras-io transformer: {json.dumps(baseline)}", file=sys.stderr)
    for result in results.values():  # speed as ratios to the plain-Keras recipe, measured in this script
        result["fit_seconds_vs_keras_io"] = round(result["fit_seconds"] / baseline["fit_seconds"], 2)
        result["served_p50_vs_keras_io_in_process"] = round(result["served_p50_ms"] / baseline["in_process_p50_ms"], 2)
    emit(
        "nlp_sms",
        {
            "settings": args.sets,
            "dlapps": results,
            "keras_io_transformer": baseline,
            "anchor": "SVM 0.9764 accuracy (Almeida et al. 2011)",
        },
    )


if __name__ == "__main__":
    main()
