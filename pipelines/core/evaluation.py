"""Classification metrics the field uses, from labels and predicted probabilities.

Pure numpy/scikit-learn, no TensorFlow: the same numbers go to metrics.json, TensorBoard
and the console summary.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray, class_names: list[str], top_k: int = 3) -> dict:
    """Accuracy, top-k, macro-F1, one-vs-rest ROC-AUC, per-class P/R/F1 and the confusion matrix."""
    y_true = np.asarray(y_true).astype(int)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    n_classes = len(class_names)
    labels = np.arange(n_classes)
    y_pred = probabilities.argmax(axis=1)
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    k = min(top_k, n_classes)
    result = {
        "examples": int(len(y_true)),
        "accuracy": float(np.mean(y_pred == y_true)),
        f"top_{k}_accuracy": _top_k_accuracy(y_true, probabilities, k),
        "macro_f1": float(np.mean(f1)),
        "roc_auc_ovr": _roc_auc(y_true, probabilities, labels),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(class_names, precision, recall, f1, support)
        },
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }
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
    return ", ".join(parts) + f" on {result['examples']} examples"
