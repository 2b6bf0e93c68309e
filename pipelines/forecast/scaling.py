"""Target transforms and per-series scaling, as TensorFlow ops shared by training, evaluation and serving.

The model works in "model space": the (log-)values minus the series' training mean, over its standard
deviation; or, for ``diff`` and ``log_diff``, each step's change over the standard deviation of the
training changes. A diff model forecasts the change from the last observed value to each future step
(a cumulative change, so each quantile of it is a quantile of the value: the transform is monotone).
The same three functions turn a batch of raw windows into model inputs and targets in tf.data, and the
model's quantiles back into the original units in evaluation and inside the exported SavedModel;
``Scaling`` holds their statistics (and the covariates' standardisation) for a run.

>>> import numpy as np
>>> fit_scaling(np.array([1.0, 3.0, 5.0]), "none")  # mean and standard deviation
(3.0, 1.632993161855452)
>>> fit_scaling(np.array([1.0, 2.0, 4.0, 8.0]), "log_diff")  # doubling every step: the log change, ln 2
(0.0, 0.6931471805599453)
"""

from __future__ import annotations

import dataclasses

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


def fit_covariates(train_parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(shift, scale) per covariate column: mean and spread over the training parts of every series."""
    columns = np.concatenate(train_parts)  # [steps, columns]; no columns: two empty arrays
    scale = np.array([_spread(columns[:, j], fallback=1.0) for j in range(columns.shape[1])])
    return columns.mean(axis=0).astype(np.float32), scale.astype(np.float32)


@dataclasses.dataclass
class Scaling:
    """Everything that turns raw windows into model space and back: the transform, each series' (shift, scale)
    and each covariate column's; run.json keeps it, so predict and the SavedModel scale as training did."""

    transform: str
    shift: np.ndarray  # [series]
    scale: np.ndarray
    covariate_shift: np.ndarray  # [columns]: the known ones, then the past ones
    covariate_scale: np.ndarray
    known: int  # how many of the columns are known in advance

    def inputs(self, raw: dict, index: tf.Tensor) -> dict:
        """Raw ``values`` [batch, context] (and ``known``, ``past``) of series ``index`` -> the model's inputs."""
        s, c = self._series(index)
        found = {"values": model_inputs(raw["values"], s, c, self.transform)}
        shift, scale = (tf.constant(a, tf.float32) for a in (self.covariate_shift, self.covariate_scale))
        if "known" in raw:
            found["known"] = (raw["known"] - shift[: self.known]) / scale[: self.known]
        if "past" in raw:
            found["past"] = (raw["past"] - shift[self.known :]) / scale[self.known :]
        return found

    def targets(self, values: tf.Tensor, future: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
        return model_targets(values, future, *self._series(index), self.transform)

    def original_units(self, quantiles: tf.Tensor, values: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
        return original_units(quantiles, values, *self._series(index), self.transform)

    def _series(self, index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        shifts, scales = (tf.constant(a, tf.float32) for a in (self.shift, self.scale))
        return tf.gather(shifts, index), tf.gather(scales, index)

    def with_unknown_series(self) -> Scaling:
        """One more series, scaled by the average of the known ones: for an id the model never saw."""
        return dataclasses.replace(
            self, shift=np.append(self.shift, np.mean(self.shift)), scale=np.append(self.scale, np.mean(self.scale))
        )

    def to_json(self) -> dict:
        return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_json(cls, found: dict) -> Scaling:
        arrays = {k: np.asarray(found[k], np.float32) for k in ("shift", "scale", "covariate_shift", "covariate_scale")}
        return cls(transform=found["transform"], known=found["known"], **arrays)
