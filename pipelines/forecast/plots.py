"""Forecast figures: backtest windows (history, actuals, median, interval) and error by horizon step."""

from __future__ import annotations

import numpy as np

from pipelines.core.figures import plt, to_png


def backtest_png(panels: list[dict], levels: list[float]) -> bytes:
    """One panel per origin: ``history``, ``actual``, ``quantiles`` [horizon, q] and a ``title``."""
    columns = min(2, len(panels))
    rows = int(np.ceil(len(panels) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(6 * columns, 3 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    middle = len(levels) // 2
    for ax, panel in zip(axes.flat, panels):
        past = np.arange(-len(panel["history"]) + 1, 1)
        ahead = np.arange(1, len(panel["actual"]) + 1)
        ax.plot(past, panel["history"], color="black", linewidth=0.8, label="history")
        ax.plot(ahead, panel["actual"], color="black", linestyle=":", linewidth=1.0, label="actual")
        q = panel["quantiles"]
        ax.plot(ahead, q[:, middle], color="tab:blue", linewidth=1.2, label=f"p{round(100 * levels[middle])}")
        if len(levels) > 1:
            band = f"p{round(100 * levels[0])}-p{round(100 * levels[-1])}"
            ax.fill_between(ahead, q[:, 0], q[:, -1], color="tab:blue", alpha=0.25, label=band)
        ax.axvline(0.5, color="gray", linewidth=0.5)
        ax.set_title(panel["title"], fontsize=9)
        ax.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=7, loc="upper left")
    return to_png(fig)


def error_by_step_png(per_step: dict[str, list[float]], metric: str) -> bytes:
    """``metric`` per horizon step for the model and each baseline."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, values in per_step.items():
        ax.plot(np.arange(1, len(values) + 1), values, marker="." if len(values) < 30 else None, label=name)
    ax.set_xlabel("horizon step")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} by horizon step (backtest)")
    ax.legend(fontsize=8)
    return to_png(fig)
