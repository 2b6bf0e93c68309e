"""Rolling-origin backtests: forecasts from many origins, the baselines on the same windows, the field's metrics.

Pure numpy. An origin is the index of the last observed value; a forecast covers the ``horizon`` steps after
it. MASE divides each absolute error by the series' in-sample seasonal-naive error (all before the test), so
1.0 means "as good as repeating last season's value, in sample".

>>> y = np.arange(10.0)
>>> baseline_forecasts(y, np.array([5]), horizon=2, season=3)["drift"].tolist()
[[6.0, 7.0]]
"""

from __future__ import annotations

import numpy as np

BASELINES = ("naive", "seasonal_naive", "drift")


def origins(start: int, stop: int, horizon: int, stride: int, context: int) -> np.ndarray:
    """Origins whose forecast lies within positions [start, stop) and whose context lies in the series."""
    first = max(start - 1, context - 1)
    return np.arange(first, stop - horizon, stride, dtype=np.int64)


def windows(values: np.ndarray, at: np.ndarray, context: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Context [n, context] and actual future [n, horizon] around each origin."""
    past = at[:, None] + np.arange(-context + 1, 1)
    future = at[:, None] + np.arange(1, horizon + 1)
    return values[past], values[future]


def baseline_forecasts(values: np.ndarray, at: np.ndarray, horizon: int, season: int) -> dict[str, np.ndarray]:
    """Naive (last value), seasonal naive (the value one season before each step) and drift (the line from the
    series' first value to the last observed one, extended)."""
    steps = np.arange(1, horizon + 1)
    last = values[at][:, None]
    seasons_back = season * np.ceil(steps / season).astype(np.int64)
    seasonal = values[np.maximum(at[:, None] + steps - seasons_back, 0)]
    slope = (values[at] - values[0]) / np.maximum(at, 1)
    return {
        "naive": np.repeat(last, horizon, axis=1),
        "seasonal_naive": seasonal,
        "drift": last + slope[:, None] * steps,
    }


def mase_scale(train_values: np.ndarray, season: int) -> float:
    """The in-sample seasonal-naive mean absolute error (season 1: the naive one)."""
    season = season if len(train_values) > season else 1
    error = np.abs(train_values[season:] - train_values[:-season]).mean()
    return float(error) if error > 0 else 1.0


def point_metrics(actual: np.ndarray, forecast: np.ndarray, scale: np.ndarray) -> dict:
    """MAE, RMSE, MASE and sMAPE (percent) over every step, and MAE / MASE per horizon step."""
    error = forecast - actual
    scaled = np.abs(error) / scale[:, None]
    denominator = np.abs(actual) + np.abs(forecast)
    smape = np.where(denominator > 0, 2 * np.abs(error) / np.where(denominator > 0, denominator, 1), 0.0)
    return {
        "mae": float(np.abs(error).mean()),
        "rmse": float(np.sqrt((error**2).mean())),
        "mase": float(scaled.mean()),
        "smape": float(100 * smape.mean()),
        "per_step": {"mae": np.abs(error).mean(axis=0).tolist(), "mase": scaled.mean(axis=0).tolist()},
    }


def interval_metrics(actual: np.ndarray, quantiles: np.ndarray, levels: list[float]) -> dict:
    """Pinball loss (mean over quantiles, original units) and how often the outer quantiles hold the actual."""
    levels_ = np.asarray(levels)[None, None, :]
    error = actual[..., None] - quantiles
    found = {"pinball_loss": float(np.maximum(levels_ * error, (levels_ - 1) * error).mean())}
    if len(levels) > 1:
        inside = (actual >= quantiles[..., 0]) & (actual <= quantiles[..., -1])
        found["interval"] = {
            "lower": levels[0],
            "upper": levels[-1],
            "nominal_coverage": round(levels[-1] - levels[0], 6),
            "coverage": float(inside.mean()),
            "coverage_per_step": inside.mean(axis=0).tolist(),
        }
    return found


def directional_accuracy(actual: np.ndarray, forecast: np.ndarray, last: np.ndarray) -> float | None:
    """How often the forecast moves in the direction the actual moved, from the last observed value."""
    moved = actual != last[:, None]
    if not moved.any():
        return None
    same = np.sign(forecast - last[:, None]) == np.sign(actual - last[:, None])
    return float(same[moved].mean())


def comparison(model: dict, baselines: dict[str, dict]) -> dict:
    """Which baseline is best by MASE, and whether the model beats it."""
    best = min(baselines, key=lambda name: baselines[name]["mase"])
    return {
        "best_baseline": best,
        "beats_best_baseline": bool(model["mase"] < baselines[best]["mase"]),
        "mase_vs_best_baseline": float(model["mase"] / baselines[best]["mase"]),
    }
