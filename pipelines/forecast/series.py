"""Time series from a table: one column of times, one target, optionally a series id (long format).

The rules, in the order they apply (README "forecast" lists them too):

- Rows are sorted by time within each series; the file's own order does not matter.
- Two rows of one series at the same time are refused, naming both lines (which one is right is the user's call).
- The frequency is the largest step that every time difference is a whole multiple of: integer steps, a
  fixed duration (30 minutes, 1 day, 1 week), calendar months (all rows on the same day of the month, or all
  on month ends), or business days (daily dates that never fall on a weekend). Times that leave more than
  ``MAX_MISSING`` of the steps empty fit no frequency and are refused.
- Steps with no row and rows with no target value are missing values: ``data.fill=interpolate`` (default)
  fills them linearly in time, ``data.fill=error`` refuses the first one, naming its line or place.
- A target that is not a number, or is infinite, is refused naming its line; so is a constant series.
- Covariates (``data.known``: known in advance, like calendar parts or planned prices; ``data.past``: observed
  only up to each origin, like volume) follow the same rules, each column on its own.
- Rows after a series' last target value are its future: they carry the known covariates of the steps to
  forecast (``predict`` needs ``horizon`` of them); training reads none of them.
"""

from __future__ import annotations

import dataclasses
import math
import re
from functools import reduce
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.core.errors import UserError
from pipelines.core.files import checked_file

MAX_MISSING = 0.2  # a larger share of filled steps means the times follow no regular frequency
TIME_NAMES = ("ds", "date", "datetime", "timestamp", "time", "period", "year", "step", "t")
TARGET_NAMES = ("y", "target", "value", "close")
SERIES_NAMES = ("unique_id", "series_id", "series", "id")
DAY = 86_400
INTEGER = re.compile(r"^[+-]?\d+$")


@dataclasses.dataclass(frozen=True)
class Frequency:
    """The step between consecutive values: ``every`` steps, seconds, business days or months."""

    kind: str  # steps | seconds | business_days | months
    every: int

    def positions(self, times: np.ndarray) -> np.ndarray:
        """Each time as a count of steps since the first (fractions where a time is off the grid)."""
        if self.kind == "steps":
            return (times - times[0]) / self.every
        if self.kind == "seconds":
            return (times - times[0]).astype("timedelta64[s]").astype(np.int64) / self.every
        if self.kind == "business_days":
            days = times.astype("datetime64[D]")
            return np.busday_count(days[0], days).astype(np.float64) / self.every
        months = _months(times)
        return (months - months[0]) / self.every

    def after(self, last, count: int) -> np.ndarray:
        """The ``count`` times that follow ``last``."""
        steps = np.arange(1, count + 1) * self.every
        if self.kind == "steps":
            return last + steps
        if self.kind == "seconds":
            return last + steps.astype("timedelta64[s]")
        if self.kind == "business_days":
            day = np.datetime64(last, "D")
            return np.busday_offset(day, steps, roll="forward").astype("datetime64[ns]") + (last - day)
        stamp = pd.Timestamp(last)
        return np.array([(stamp + pd.DateOffset(months=int(k))).to_datetime64() for k in steps], "datetime64[ns]")

    def season(self) -> int:
        """The steps of the main cycle: a day of sub-daily data, a week of days, a year of weeks or months."""
        if self.kind == "business_days":
            return max(1, 5 // self.every)
        if self.kind == "months":
            return max(1, 12 // self.every) if 12 % self.every == 0 else 1
        if self.kind == "seconds":
            if self.every < DAY and DAY % self.every == 0:
                return DAY // self.every
            return {DAY: 7, 7 * DAY: 52}.get(self.every, 1)
        return 1

    def describe(self) -> str:
        if self.kind == "seconds":
            for unit, size in (("week", 7 * DAY), ("day", DAY), ("hour", 3600), ("minute", 60)):
                if self.every % size == 0:
                    return _plural(self.every // size, unit)
            return _plural(self.every, "second")
        return _plural(self.every, {"steps": "step", "business_days": "business day", "months": "month"}[self.kind])

    def to_json(self) -> dict:
        return {"kind": self.kind, "every": self.every}


@dataclasses.dataclass
class Series:
    """One regular series: a value for every step from its first time to its last."""

    name: str  # the series id ("" for a file of one series)
    times: np.ndarray  # datetime64[ns] or int64
    values: np.ndarray  # float64, missing steps filled
    lines: np.ndarray  # the file line of each step (0: filled)
    covariates: np.ndarray  # [steps, columns] float64, the known columns then the past ones, filled like values
    future: np.ndarray  # [steps after the last target value, columns]: the rows that forecasts are asked for

    @property
    def filled(self) -> int:
        return int((self.lines == 0).sum())


@dataclasses.dataclass
class Collection:
    """The series of one file, with what was read from where."""

    series: list[Series]
    frequency: Frequency
    source: str  # the file, for messages
    target: str
    time_column: str
    series_column: str | None
    datetimes: bool  # times are dates (not integer steps)
    covariates: tuple[str, ...] = ()  # the known columns, then the past ones


def read_table(path: str) -> pd.DataFrame:
    """A CSV file (plain or .gz) as text columns, every cell as written."""
    file = Path(path).expanduser()
    checked_file(file, "data file", "; give a CSV file with a time and a target column")
    try:
        frame = pd.read_csv(file, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, EOFError) as err:
        raise UserError(f"{file}: not a readable CSV file ({str(err).strip().splitlines()[0]})") from None
    if frame.empty:
        raise UserError(f"{file}: no rows under the header; a series needs values")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def pick_column(frame: pd.DataFrame, setting: str, names: tuple, role: str, source: str) -> str | None:
    """The column named by ``setting``; with ``auto`` the first of ``names`` present (any case), else None."""
    if setting not in ("auto", "none") and setting not in frame.columns:
        raise UserError(f"{source}: no {role} column '{setting}'; the columns are: {', '.join(frame.columns)}")
    if setting != "auto":
        return None if setting == "none" else setting
    lowered = {c.lower(): c for c in frame.columns}
    return next((lowered[n] for n in names if n in lowered), None)


def choose_target(frame: pd.DataFrame, setting: str, taken: set, source: str) -> str:
    """The target: named, else a conventional name (y, value, Close...), else the only numeric column left."""
    picked = pick_column(frame, setting, TARGET_NAMES, "target", source)
    if picked is not None and picked not in taken:
        return picked
    numeric = [c for c in frame.columns if c not in taken and _mostly_numeric(frame[c])]
    if len(numeric) == 1:
        return numeric[0]
    raise UserError(
        f"{source}: which column is the target? numeric columns: {', '.join(numeric) or 'none'}; "
        "name it with --set data.target=NAME"
    )


def parse_times(column: pd.Series, name: str, source: str) -> tuple[np.ndarray, bool]:
    """Integer steps (int64) or datetimes (datetime64[ns]); an unreadable time is refused naming its line."""
    text = column.str.strip()
    if text.map(lambda s: bool(INTEGER.match(s))).all():
        return text.astype(np.int64).to_numpy(), False
    try:
        parsed = pd.to_datetime(text, errors="coerce", format="mixed")
    except (ValueError, TypeError) as err:  # mixed time zones, out-of-range years
        raise UserError(f"{source}, column '{name}': times cannot be read ({err})") from None
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        raise UserError(
            f"{source}, line {bad[0] + 2}, column '{name}': '{text.iloc[bad[0]]}' is not a date, time or integer step"
        )
    if parsed.dt.tz is not None:
        parsed = parsed.dt.tz_convert(None)
    return parsed.to_numpy().astype("datetime64[ns]"), True


def parse_numbers(column: pd.Series, name: str, source: str, role: str = "target") -> np.ndarray:
    """Numbers, NaN where the cell is empty; text or infinity is refused naming the line."""
    text = column.str.strip()
    empty = text.isin(["", "NA", "NaN", "nan", "null"])
    numbers = pd.to_numeric(text.where(~empty), errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(np.isnan(numbers) & ~empty.to_numpy())
    if len(bad):
        raise UserError(f"{source}, line {bad[0] + 2}: {role} '{name}' is '{text.iloc[bad[0]]}', not a number")
    infinite = np.flatnonzero(np.isinf(numbers))
    if len(infinite):
        raise UserError(f"{source}, line {infinite[0] + 2}: {role} '{name}' is infinite; give a finite value")
    return numbers


def infer_frequency(times: np.ndarray, datetimes: bool, source: str) -> Frequency:
    """The regular step every time difference is a multiple of (see the module docstring)."""
    if not datetimes:
        return Frequency("steps", _gcd(np.diff(times)))
    seconds = np.diff(times).astype("timedelta64[s]").astype(np.int64)
    if (seconds >= 28 * DAY).all() and _month_aligned(times):
        return Frequency("months", _gcd(np.diff(_months(times))))
    every = _gcd(seconds)
    weekdays = (times.astype("datetime64[D]").view(np.int64) + 3) % 7  # 0 = Monday
    if every == DAY and (weekdays < 5).all() and (seconds == 3 * DAY).any() and _midnights(times):
        return Frequency("business_days", 1)
    if every == 0:
        raise UserError(f"{source}: the times do not advance; a series needs at least two different times")
    return Frequency("seconds", every)


def regular_series(
    name: str,
    times: np.ndarray,
    values: np.ndarray,
    lines: np.ndarray,
    frequency: Frequency,
    fill: str,
    where: str,
    covariates: np.ndarray,
    covariate_names: tuple[str, ...] = (),
) -> Series:
    """Every step from the first time to the last, missing ones filled (or refused) by the ``fill`` rule; the
    series ends at its last target value, and the rows after it are its future (covariates only)."""
    positions = frequency.positions(times)
    off_grid = np.flatnonzero(positions != np.round(positions))
    if len(off_grid):
        raise UserError(
            f"{where}, line {lines[off_grid[0]]}: time {_show(times[off_grid[0]])} is not a whole number of "
            f"{frequency.describe()} steps after the first; the times fit no regular frequency"
        )
    steps = np.round(positions).astype(np.int64)
    total = int(steps[-1]) + 1  # the future rows too
    present = ~np.isnan(values)
    if not present.any():
        raise UserError(f"{where}: no target values; a series needs values to learn from")
    if total - len(steps) > MAX_MISSING * total:  # steps with no row at all: the times are not regular
        raise UserError(
            f"{where}: the times fit no regular frequency: every {frequency.describe()} leaves "
            f"{total - len(steps):,} of {total:,} steps without a row; resample the data to a regular step"
        )
    length = int(steps[present][-1]) + 1
    if fill == "error":
        check_complete(steps, present, lines, times, covariates, covariate_names, where)
    full_lines = np.zeros(length, np.int64)
    full_lines[steps[present]] = lines[present]
    grid = frequency.after(times[0], total - 1) if total > 1 else times[:0]
    full_times = np.concatenate([times[:1], grid]).astype(times.dtype)
    full_values = np.interp(np.arange(length), steps[present], values[present])
    if np.ptp(full_values) == 0:
        raise UserError(
            f"{where}: the target is constant ({full_values[0]:g} at every step); there is nothing to forecast"
        )
    filled = np.zeros((total, len(covariate_names)))
    for j, column in enumerate(covariate_names):
        given = ~np.isnan(covariates[:, j])
        if not given.any():
            raise UserError(f"{where}: covariate '{column}' has no values; fill the column or leave it out")
        filled[:, j] = np.interp(np.arange(total), steps[given], covariates[given, j])
    return Series(name, full_times[:length], full_values, full_lines, filled[:length], filled[length:])


def check_complete(steps, present, lines, times, covariates, covariate_names, where) -> None:
    """``data.fill=error``: the first missing step, target value or covariate value, by its line or place."""
    inside = steps <= steps[present][-1]
    if present.sum() < steps[present][-1] + 1:  # a step of the series without a row or without a value
        problem = _first_missing(steps[inside], present[inside], lines[inside], times[inside])
    elif len(steps) < steps[-1] + 1:  # a gap among the future rows
        problem = _first_missing(steps, np.ones(len(steps), bool), lines, times)
    else:
        empty = [(np.flatnonzero(np.isnan(covariates[:, j])), c) for j, c in enumerate(covariate_names)]
        empty = [(lines[found[0]], c) for found, c in empty if len(found)]
        if not empty:
            return
        line, column = min(empty)
        problem = f"line {line}: no value for covariate '{column}'"
    raise UserError(f"{where}: {problem}; fill it in, or train with --set data.fill=interpolate")


def read_series(path: str, d) -> Collection:
    """The series in CSV file ``path`` by the column settings of ``d`` (a ForecastDataConfig)."""
    return series_from_frame(read_table(path), d, str(Path(path).expanduser()))


def series_from_frame(frame: pd.DataFrame, d, source: str, frequency: Frequency | None = None) -> Collection:
    """Columns picked, values checked, every series made regular (see the module docstring); ``frequency``:
    the one training found (a few recent rows may not show it)."""
    time_column = pick_column(frame, d.time_column, TIME_NAMES, "time", source) or frame.columns[0]
    series_column = pick_column(frame, d.series_column, SERIES_NAMES, "series id", source)
    covariate_names = pick_covariates(frame, d, {time_column, series_column, d.target}, source)
    target = choose_target(frame, d.target, {time_column, series_column, *covariate_names}, source)
    if target in (time_column, series_column):
        raise UserError(f"{source}: column '{target}' cannot be both the target and the time or series id")
    times, datetimes = parse_times(frame[time_column], time_column, source)
    values = parse_numbers(frame[target], target, source)
    covariates = np.zeros((len(frame), len(covariate_names)))
    for j, column in enumerate(covariate_names):
        covariates[:, j] = parse_numbers(frame[column], column, source, "covariate")
    ids = frame[series_column].str.strip().to_numpy() if series_column else np.full(len(frame), "", object)
    lines = np.arange(len(frame), dtype=np.int64) + 2  # line 1 is the header
    order = np.lexsort((times, ids))
    times, values, covariates, ids, lines = times[order], values[order], covariates[order], ids[order], lines[order]
    check_duplicates(times, ids, lines, source)
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    parts = [slice(a, b) for a, b in zip(starts, [*starts[1:], len(ids)])]
    where = {p.start: f"{source}, series '{ids[p.start]}'" if series_column else source for p in parts}
    for p in parts:
        if len(np.unique(times[p])) < 2:
            raise UserError(f"{where[p.start]}: one time only; a series needs at least two")
    if frequency is None:
        frequency = _common_frequency([infer_frequency(times[p], datetimes, where[p.start]) for p in parts])
    series = [
        regular_series(
            str(ids[p.start]),
            times[p],
            values[p],
            lines[p],
            frequency,
            d.fill,
            where[p.start],
            covariates[p],
            covariate_names,
        )
        for p in parts
    ]
    return Collection(series, frequency, source, target, time_column, series_column, datetimes, covariate_names)


def pick_covariates(frame: pd.DataFrame, d, taken: set, source: str) -> tuple[str, ...]:
    """The ``data.known`` columns, then the ``data.past`` ones: each present, named once, none a taken column."""
    names = (*d.known, *d.past)
    for name in names:
        if name not in frame.columns:
            raise UserError(f"{source}: no covariate column '{name}'; the columns are: {', '.join(frame.columns)}")
        if name in taken:
            raise UserError(f"{source}: column '{name}' is the time, series id or target; it cannot be a covariate")
    if len(set(names)) < len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise UserError(f"column '{twice}' is named twice in data.known and data.past; name each covariate once")
    return names


def check_duplicates(times: np.ndarray, ids: np.ndarray, lines: np.ndarray, source: str) -> None:
    same = np.flatnonzero((times[1:] == times[:-1]) & (ids[1:] == ids[:-1]))
    if len(same):
        i = same[0]
        first, second = sorted((lines[i], lines[i + 1]))
        raise UserError(
            f"{source}, lines {first} and {second}: both at time {_show(times[i])}"
            f"{f' in series {ids[i]!r}' if ids[i] else ''}; keep one row per time"
        )


def _common_frequency(found: list[Frequency]) -> Frequency:
    """One frequency for every series: the finest step of the kind they share."""
    kinds = {f.kind for f in found}
    if len(kinds) > 1:  # a short series can look like business days; the fixed-duration reading fits all
        kinds = {"seconds"}
        found = [Frequency("seconds", DAY if f.kind == "business_days" else f.every) for f in found]
    every = reduce(math.gcd, (f.every for f in found))
    return Frequency(kinds.pop(), every)


def _first_missing(steps: np.ndarray, present: np.ndarray, lines: np.ndarray, times: np.ndarray) -> str:
    empty = np.flatnonzero(~present)
    gaps = np.flatnonzero(np.diff(steps) > 1)
    if len(empty) and (not len(gaps) or steps[empty[0]] <= steps[gaps[0]]):
        return f"line {lines[empty[0]]}: no target value"
    i = gaps[0]
    return f"no row for the step after {_show(times[i])} (between lines {lines[i]} and {lines[i + 1]})"


def _gcd(differences: np.ndarray) -> int:
    return int(reduce(math.gcd, (int(x) for x in np.unique(differences)), 0))


def _months(times: np.ndarray) -> np.ndarray:
    return times.astype("datetime64[M]").astype(np.int64)


def _month_aligned(times: np.ndarray) -> bool:
    """All on one day of the month (and time of day), or all on the last day of their month."""
    day = times.astype("datetime64[D]")
    month_start = times.astype("datetime64[M]").astype("datetime64[D]")
    offsets = day - month_start
    month_ends = (day + 1).astype("datetime64[M]") != day.astype("datetime64[M]")
    return _midnights(times) and (len(np.unique(offsets)) == 1 or bool(month_ends.all()))


def _midnights(times: np.ndarray) -> bool:
    return bool((times == times.astype("datetime64[D]")).all())


def _mostly_numeric(column: pd.Series) -> bool:
    text = column.str.strip()
    text = text[text != ""]
    return len(text) > 0 and bool(pd.to_numeric(text, errors="coerce").notna().mean() > 0.9)


def _show(time) -> str:
    if isinstance(time, np.datetime64):
        return str(pd.Timestamp(time))
    return str(time)


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}{'' if count == 1 else 's'}"
