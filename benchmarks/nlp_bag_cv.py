"""How the bag model's defaults were chosen: 5-fold cross-validation on the SMS Spam Collection's
training portion (the 80% that `nlp_sms.py` does not test on), one line per setting.

Each setting's tf-idf features come from dlapps' own vectorizers (adapted once on the whole
training portion, so the folds share a vocabulary: a small optimism every setting shares);
the head is the bag model's: input dropout, one hidden layer, dropout, softmax, trained like
`dlapps nlp train` (AdamW, cosine decay, batch 32, balanced class weights).

    python benchmarks/nlp_bag_cv.py '{}' '{"char_ngrams": 5, "char_max_tokens": 50000}' ...

Each argument is a JSON object of text.* and model.* settings (and "epochs") over the defaults.
"""

import json
import sys
import time

import numpy as np
from common import SHARED, emit, require

TEXT_KEYS = {"word_ngrams", "char_ngrams", "max_tokens", "char_max_tokens", "standardize", "char_standardize"}


def features(texts, config):
    import tensorflow as tf

    from pipelines.nlp.models import KnownTokens
    from pipelines.nlp.pipeline import PIPELINE

    vectorizers = PIPELINE.vectorizers(config, texts)
    batches = [tf.constant(list(texts[i : i + 500])) for i in range(0, len(texts), 500)]
    columns = [np.concatenate([KnownTokens()(v(b)).numpy() for b in batches]) for v in vectorizers]
    x = np.concatenate(columns, axis=1)
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def fit_predict(x, y, train, held_out, config, epochs, seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    m = config.model
    inputs = keras.Input((x.shape[1],))
    h = keras.layers.Dropout(m.input_dropout)(inputs)
    h = keras.layers.Dense(m.width, activation="relu")(h)
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Dropout(m.dropout)(h))
    model = keras.Model(inputs, outputs)
    steps = int(np.ceil(len(train) / 32)) * epochs
    rate = keras.optimizers.schedules.CosineDecay(config.train.learning_rate, steps)
    model.compile(
        keras.optimizers.AdamW(rate, weight_decay=config.train.weight_decay), "sparse_categorical_crossentropy"
    )
    counts = np.bincount(y[train], minlength=2)
    weights = {c: len(train) / (2 * counts[c]) for c in range(2)}
    model.fit(x[train], y[train], batch_size=32, epochs=epochs, verbose=0, class_weight=weights)
    return model.predict(x[held_out], batch_size=512, verbose=0)[:, 1]


def cross_validate(texts, y, overrides: dict, folds: int = 5) -> dict:
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold

    from pipelines.core.config import apply_overrides
    from pipelines.nlp.pipeline import NlpConfig

    epochs = overrides.get("epochs", NlpConfig().train.epochs)
    sets = [f"{'text' if k in TEXT_KEYS else 'model'}.{k}={v}" for k, v in overrides.items() if k != "epochs"]
    config = apply_overrides(NlpConfig(), sets)
    start = time.perf_counter()
    x = features(texts, config)
    errors, f1s = 0, []
    for train, held_out in StratifiedKFold(folds, shuffle=True, random_state=0).split(texts, y):
        p = fit_predict(x, y, train, held_out, config, epochs)
        errors += int(np.sum((p >= 0.5) != y[held_out]))
        f1s.append(f1_score(y[held_out], p >= 0.5))
    return {
        "settings": overrides,
        "cv_accuracy": round(1 - errors / len(y), 4),
        "cv_spam_f1": round(float(np.mean(f1s)), 4),
        "seconds": round(time.perf_counter() - start),
    }


def training_portion():
    """The 80% of messages outside the benchmark's test split, in file order."""
    from pipelines.core.stages import stratified_split
    from pipelines.nlp.data import read_table
    from pipelines.nlp.pipeline import NlpDataConfig

    path = require(SHARED / "sms_spam" / "SMSSpamCollection")
    texts, names = read_table(path, NlpDataConfig(source="table", path=str(path)))
    y = np.array([name == "spam" for name in names], dtype=np.int64)
    keep = stratified_split(y, {"test": 0.2}, seed=0)["train"]  # the test split of nlp_sms.py left out
    return np.array(texts, dtype=object)[keep], y[keep]


def main():
    texts, y = training_portion()
    results = []
    for argument in sys.argv[1:] or ["{}"]:
        results.append(cross_validate(texts, y, json.loads(argument)))
        print(json.dumps(results[-1]), file=sys.stderr)
    emit("nlp_bag_cv", {"folds": 5, "messages": len(y), "results": results})


if __name__ == "__main__":
    main()
