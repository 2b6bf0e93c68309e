"""Classification metrics the field uses, from labels and predicted probabilities.

Pure numpy/scikit-learn, no TensorFlow: the same numbers go to metrics.json, TensorBoard
and the console summary.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm


def decide(probabilities: np.ndarray, decision: dict | None = None) -> np.ndarray:
    """Predicted classes: the most probable one, or for a binary ``decision`` ({"positive", "threshold"})
    the positive class wherever its probability reaches the threshold (compared in float32, as the
    exported model compares its float32 outputs)."""
    probabilities = np.asarray(probabilities)
    if not decision:
        return probabilities.argmax(axis=1)
    positive = decision["positive"]
    reached = probabilities[:, positive].astype(np.float32) >= np.float32(decision["threshold"])
    return np.where(reached, positive, 1 - positive)


def tune_threshold(is_positive: np.ndarray, scores: np.ndarray, cost: tuple[float, float] | None = None) -> float:
    """The score threshold with the best F1 for the positive class, or with ``cost`` = (cost_fp, cost_fn) the
    lowest cost_fp * false positives + cost_fn * false negatives (ties: the lowest threshold, so the most
    recall), midway between the lowest score it accepts and the highest it rejects, as a float32 value."""
    scores = np.asarray(scores, dtype=np.float32)
    is_positive = np.asarray(is_positive, dtype=bool)
    precision, recall, thresholds = skm.precision_recall_curve(is_positive, scores)
    if cost is None:
        f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
        lowest_accepted = np.float32(thresholds[int(np.argmax(f1))])
    else:
        lowest_accepted = _cheapest_threshold(is_positive, scores, *cost)
    rejected = scores[scores < lowest_accepted]
    if len(rejected) == 0:
        return float(lowest_accepted)
    threshold = np.float32((float(lowest_accepted) + float(rejected.max())) / 2)
    # Adjacent float32 scores have no float32 between them: then the accepted score itself.
    return float(threshold if threshold > rejected.max() else lowest_accepted)


def _cheapest_threshold(is_positive: np.ndarray, scores: np.ndarray, cost_fp: float, cost_fn: float) -> np.float32:
    """The lowest accepted score of the cheapest rule "positive when score >= t" (accepting nothing is
    allowed: then a threshold above every score)."""
    candidates = np.unique(scores)[::-1]  # accept the highest first
    accepted = np.searchsorted(-np.sort(scores)[::-1], -candidates, side="right")  # rows with score >= t
    sorted_positive = is_positive[np.argsort(-scores, kind="stable")]
    true_positives = np.concatenate([[0], np.cumsum(sorted_positive)])[accepted]
    false_positives = accepted - true_positives
    false_negatives = is_positive.sum() - true_positives
    costs = cost_fp * false_positives + cost_fn * false_negatives
    if is_positive.sum() * cost_fn <= costs.min():  # flagging nothing is at least as cheap
        return np.nextafter(np.float32(candidates[0]), np.float32(np.inf))
    best = np.flatnonzero(costs == costs.min())[-1]  # ties: the lowest threshold
    return np.float32(candidates[best])


def classification_metrics(
    y_true: np.ndarray,
    probabilities: np.ndarray,
    class_names: list[str],
    top_k: int = 3,
    decision: dict | None = None,
) -> dict:
    """Accuracy, top-k, macro-F1, ROC-AUC (one-vs-rest), PR-AUC (binary), per-class P/R/F1 and the
    confusion matrix; class decisions by :func:`decide`."""
    y_true = np.asarray(y_true).astype(int)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    n_classes = len(class_names)
    labels = np.arange(n_classes)
    y_pred = decide(probabilities, decision)
    precision, recall, f1, support = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    result = {
        "examples": int(len(y_true)),
        "accuracy": float(np.mean(y_pred == y_true)),
        "macro_f1": float(np.mean(f1)),
        "roc_auc_ovr": _roc_auc(y_true, probabilities, labels),
        "pr_auc": _pr_auc(y_true, probabilities, decision),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(class_names, precision, recall, f1, support)
        },
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }
    if top_k < n_classes:  # with k >= classes every example is right
        result[f"top_{top_k}_accuracy"] = _top_k_accuracy(y_true, probabilities, top_k)
    if decision:
        result["decision"] = {"positive": class_names[decision["positive"]], "threshold": decision["threshold"]}
        result["argmax_accuracy"] = float(np.mean(probabilities.argmax(axis=1) == y_true))
    return result


def _top_k_accuracy(y_true: np.ndarray, probabilities: np.ndarray, k: int) -> float:
    top_k = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return float(np.mean((top_k == y_true[:, None]).any(axis=1)))


def _roc_auc(y_true: np.ndarray, probabilities: np.ndarray, labels: np.ndarray) -> float | None:
    present = np.unique(y_true)
    if len(present) < 2:
        return None  # undefined with one class in the split
    if len(labels) == 2:
        return float(skm.roc_auc_score(y_true, probabilities[:, 1]))
    # Macro one-vs-rest over the classes present in this split.
    scores = [skm.roc_auc_score(y_true == c, probabilities[:, c]) for c in present]
    return float(np.mean(scores))


def _pr_auc(y_true: np.ndarray, probabilities: np.ndarray, decision: dict | None) -> float | None:
    """Average precision of the positive class (binary only; class 1 unless ``decision`` names it)."""
    if probabilities.shape[1] != 2 or len(np.unique(y_true)) < 2:
        return None
    positive = decision["positive"] if decision else 1
    return float(skm.average_precision_score(y_true == positive, probabilities[:, positive]))


def per_class_table(result: dict) -> str:
    """Per-class precision/recall/F1 as a Markdown table (TensorBoard renders it as text)."""
    rows = ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for name, m in result["per_class"].items():
        rows.append(f"| {name} | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} | {m['support']} |")
    rows.append(f"| **macro** | | | **{result['macro_f1']:.4f}** | {result['examples']} |")
    return "\n".join(rows)


def headline(result: dict) -> str:
    """One line of the key figures, for the console."""
    parts = [f"accuracy {result['accuracy']:.4f}", f"macro-F1 {result['macro_f1']:.4f}"]
    if result.get("roc_auc_ovr") is not None:
        parts.append(f"ROC-AUC {result['roc_auc_ovr']:.4f}")
    if result.get("pr_auc") is not None:
        parts.append(f"PR-AUC {result['pr_auc']:.4f}")
    if result.get("decision"):
        d = result["decision"]
        parts.append(
            f"{d['positive']} F1 {result['per_class'][d['positive']]['f1']:.4f} at threshold {d['threshold']:.3f}"
        )
    return ", ".join(parts) + f" on {result['examples']} examples"
