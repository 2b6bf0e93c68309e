"""Figures a person looks at, rendered to PNG bytes (written to samples/ and TensorBoard)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn import metrics as skm  # noqa: E402


def confusion_matrix_png(matrix: list[list[int]], class_names: list[str]) -> bytes:
    matrix = np.asarray(matrix)
    size = max(4.0, 0.45 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=90 if len(class_names) > 10 else 0)
    ax.set_yticks(ticks, class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(class_names) <= 30:
        threshold = matrix.max() / 2 if matrix.size else 0
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(
                j, i, str(count), ha="center", va="center", fontsize=8, color="white" if count > threshold else "black"
            )
    ax.set_title("confusion matrix")
    return to_png(fig)


def pr_curves_png(y_true: np.ndarray, probabilities: np.ndarray, class_names: list[str]) -> bytes:
    fig, ax = plt.subplots(figsize=(6, 5))
    for index, name in enumerate(class_names):
        positives = np.asarray(y_true) == index
        if not positives.any():
            continue
        precision, recall, _ = skm.precision_recall_curve(positives, probabilities[:, index])
        ap = skm.average_precision_score(positives, probabilities[:, index])
        ax.plot(recall, precision, label=f"{name} (AP {ap:.3f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title("precision-recall, one curve per class")
    ax.legend(fontsize=7, loc="lower left", ncol=2 if len(class_names) > 10 else 1)
    return to_png(fig)


def roc_curve_png(is_positive: np.ndarray, scores: np.ndarray, title: str = "ROC curve") -> bytes:
    """Two classes: true-positive rate against false-positive rate, with the area under it."""
    fpr, tpr, _ = skm.roc_curve(is_positive, scores)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, label=f"AUC {skm.roc_auc_score(is_positive, scores):.3f}")
    ax.plot([0, 1], [0, 1], linestyle=":", color="gray")
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.set_title(title)
    ax.legend(loc="lower right")
    return to_png(fig)


def score_histogram_png(
    is_positive: np.ndarray, scores: np.ndarray, names: list[str], threshold: float | None = None
) -> bytes:
    """Scores of each class (``names``: the negative and the positive one) as histograms on a log count scale (the
    rare class stays visible), and the threshold."""
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(0, 1, 51)
    is_positive = np.asarray(is_positive, dtype=bool)
    for mask, name in ((~is_positive, names[0]), (is_positive, names[1])):
        ax.hist(np.asarray(scores)[mask], bins=bins, alpha=0.6, label=f"{name} ({mask.sum():,})", log=True)
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3f}")
    ax.set_xlabel(f"score (p({names[1]}))")
    ax.set_ylabel("count")
    ax.set_title("scores by class")
    ax.legend(fontsize=8)
    return to_png(fig)


def image_grid_png(images: np.ndarray, titles: list[str], colors: list[str] | None = None, columns: int = 8) -> bytes:
    """Images (uint8, [n, h, w, c]) in a grid, each with a title (e.g. 'true 3 / pred 8')."""
    count = len(images)
    rows = max(1, int(np.ceil(count / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.4, rows * 1.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for index, (ax, image) in enumerate(zip(axes.flat, images)):
        image = np.asarray(image)
        ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray" if image.shape[-1] == 1 else None)
        ax.set_title(titles[index], fontsize=7, color=(colors or ["black"] * count)[index])
    return to_png(fig)


def heatmap_grid_png(
    maps: np.ndarray,
    titles: list[str],
    colors: list[str] | None = None,
    columns: int = 4,
    xlabel: str = "",
    ylabel: str = "",
) -> bytes:
    """2D arrays ([n, rows, cols], e.g. spectrograms as [bins, frames]) in a grid, low rows at the bottom."""
    return _grid(
        maps,
        titles,
        colors,
        columns,
        lambda ax, m: ax.imshow(m, origin="lower", aspect="auto", cmap="magma"),
        xlabel,
        ylabel,
    )


def curve_grid_png(
    curves: np.ndarray,
    titles: list[str],
    colors: list[str] | None = None,
    columns: int = 4,
    xlabel: str = "",
    ylabel: str = "",
) -> bytes:
    """1D arrays ([n, length], e.g. waveforms) as line plots in a grid."""
    return _grid(curves, titles, colors, columns, lambda ax, c: ax.plot(c, linewidth=0.5), xlabel, ylabel)


def _grid(items, titles, colors, columns, draw, xlabel, ylabel) -> bytes:
    count = len(items)
    rows = max(1, int(np.ceil(count / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 2.6, rows * 2.0), squeeze=False)
    for ax in axes.flat[count:]:
        ax.axis("off")
    for index, (ax, item) in enumerate(zip(axes.flat, items)):
        draw(ax, np.asarray(item))
        ax.set_title(titles[index], fontsize=8, color=(colors or ["black"] * count)[index])
        ax.set_xlabel(xlabel, fontsize=7)
        ax.set_ylabel(ylabel, fontsize=7)
        ax.tick_params(labelsize=6)
    return to_png(fig)


def to_png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()
