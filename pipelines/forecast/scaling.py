"""Target transforms and per-series scaling, as TensorFlow ops shared by training, evaluation and serving.

The model works in "model space": the (log-)values minus the series' training mean, over its standard
deviation; or, for ``diff`` and ``log_diff``, each step's change over the standard deviation of the
training changes. A diff model forecasts the change from the last observed value to each future step
(a cumulative change, so each quantile of it is a quantile of the value: the transform is monotone).
The same three functions turn a batch of raw windows into model inputs and targets in tf.data, and the
model's quantiles back into the original units in evaluation and inside the exported SavedModel.

>>> import numpy as np
>>> fit_scaling(np.array([1.0, 3.0, 5.0]), "none")  # mean and standard deviation
(3.0, 1.632993161855452)
>>> fit_scaling(np.array([1.0, 2.0, 4.0, 8.0]), "log_diff")  # doubling every step: the log change, ln 2
(0.0, 0.6931471805599453)
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from pipelines.core.errors import UserError

TRANSFORMS = ("none", "log", "diff", "log_diff")


def is_log(transform: str) -> bool:
    return transform in ("log", "log_diff")


def is_diff(transform: str) -> bool:
    return transform in ("diff", "log_diff")


def check_positive(values: np.ndarray, transform: str, where: str) -> None:
    if is_log(transform) and (values <= 0).any():
        raise UserError(
            f"{where}: data.transform={transform} needs positive values, and the series holds "
            f"{values[values <= 0][0]:g}; use data.transform=none or diff"
        )


def fit_scaling(train_values: np.ndarray, transform: str) -> tuple[float, float]:
    """(shift, scale) of one series from its training part: mean and spread of what the model sees."""
    z = np.log(train_values) if is_log(transform) else np.asarray(train_values, np.float64)
    if is_diff(transform):
        # A straight line changes by the same step every time: then that step is the scale.
        changes = np.diff(z)
        return 0.0, _spread(changes, fallback=float(np.abs(changes).mean()))
    return float(np.mean(z)), _spread(z, fallback=1.0)


def _spread(x: np.ndarray, fallback: float) -> float:
    """The standard deviation, or ``fallback`` where it is zero up to rounding."""
    spread = float(np.std(x))
    size = float(np.abs(x).mean())
    return spread if spread > 1e-9 * size and spread > 0 else (fallback or 1.0)


def _forward(values: tf.Tensor, transform: str) -> tf.Tensor:
    return tf.math.log(values) if is_log(transform) else values


def model_inputs(values: tf.Tensor, shift: tf.Tensor, scale: tf.Tensor, transform: str) -> tf.Tensor:
    """[batch, context] raw values -> [batch, context] in model space (diffs: a zero before the first change)."""
    z = _forward(values, transform)
    if is_diff(transform):
        changes = z[:, 1:] - z[:, :-1]
        return tf.pad(changes, [[0, 0], [1, 0]]) / scale[:, None]
    return (z - shift[:, None]) / scale[:, None]


def model_targets(
    values: tf.Tensor, future: tf.Tensor, shift: tf.Tensor, scale: tf.Tensor, transform: str
) -> tf.Tensor:
    """[batch, horizon] raw future values -> model space (diffs: the change since the last observed value)."""
    z = _forward(future, transform)
    if is_diff(transform):
        return (z - _forward(values[:, -1:], transform)) / scale[:, None]
    return (z - shift[:, None]) / scale[:, None]


def original_units(
    quantiles: tf.Tensor, values: tf.Tensor, shift: tf.Tensor, scale: tf.Tensor, transform: str
) -> tf.Tensor:
    """[batch, horizon, q] in model space -> the original units (sorted, so no two quantiles cross)."""
    quantiles = tf.sort(quantiles, axis=-1)
    base = _forward(values[:, -1], transform) if is_diff(transform) else shift
    z = quantiles * scale[:, None, None] + base[:, None, None]
    return tf.exp(z) if is_log(transform) else z
