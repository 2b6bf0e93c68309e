"""Transaction tables: a CSV file (gzip or not) or the embedded simulator, read into typed columns.

Every column gets a kind: ``numeric``, ``categorical`` (strings) or ``datetime`` (ISO text such as
``2018-07-25 00:00:29``). Values stay as the file wrote them (numbers as float64, the rest as
text), so the same reader serves training and ``predict``, and the model receives raw columns.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import re
from pathlib import Path

import numpy as np

from pipelines.core.errors import UserError

KINDS = ("numeric", "categorical", "datetime")
MISSING = {"", "nan", "NaN", "NA", "N/A", "null", "NULL", "None"}
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$")
LABEL_VALUES = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "false": 0, "true": 1, "no": 0, "yes": 1}


@dataclasses.dataclass
class Table:
    """Columns of one file, in the file's order: name -> float64 array (numeric) or object array of str."""

    name: str  # for messages: the file, or the simulation
    columns: dict[str, np.ndarray]
    kinds: dict[str, str]

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def take(self, rows: np.ndarray) -> "Table":
        return Table(self.name, {k: v[rows] for k, v in self.columns.items()}, dict(self.kinds))


def read_csv(path: str | Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a CSV file, gzip or plain, with a clear error for what cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"data file not found: {path}")
    with path.open("rb") as probe:
        zipped = probe.read(2) == b"\x1f\x8b"  # by content, not by name
    try:
        with (gzip.open(path, "rt", encoding="utf-8-sig", newline="") if zipped
              else path.open(encoding="utf-8-sig", newline="")) as handle:
            rows = list(csv.reader(handle, strict=True))
    except (UnicodeDecodeError, csv.Error, OSError, EOFError) as err:
        raise UserError(f"cannot read {path} as a CSV file: {err}") from None
    rows = [row for row in rows if row]  # blank lines
    if not rows:
        raise UserError(f"{path} is empty; it needs a header row and transactions")
    header, body = [name.strip() for name in rows[0]], rows[1:]
    if not body:
        raise UserError(f"{path} has a header row but no transactions")
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise UserError(f"{path}: column name(s) {', '.join(map(repr, duplicated))} appear twice in the header")
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise UserError(f"{path}, line {number}: {len(row)} fields where the header has {len(header)}")
    return header, body


def typed_table(name: str, header: list[str], body: list[list[str]], forced: dict[str, str]) -> Table:
    """Columns with their kinds: inferred (all numbers -> numeric, all ISO dates -> datetime, else categorical)
    unless ``forced`` names the kind."""
    columns, kinds = {}, {}
    for column, raw in zip(header, zip(*body)):
        values = np.array([text.strip() for text in raw], dtype=object)
        kinds[column] = forced.get(column) or infer_kind(values)
        columns[column] = to_numbers(values, name, column) if kinds[column] == "numeric" else values
    return Table(name, columns, kinds)


def is_missing(values: np.ndarray) -> np.ndarray:
    return np.fromiter((value in MISSING for value in values), dtype=bool, count=len(values))


def infer_kind(values: np.ndarray) -> str:
    present = values[~is_missing(values)]
    if len(present) == 0:
        return "numeric"  # an empty column: reported as missing values where it is used
    sample = present[:: max(1, len(present) // 2000)]  # a spread-out sample decides; to_numbers checks every row
    numeric = sum(_is_number(v) for v in sample) / len(sample)
    if numeric >= 0.9:  # mostly numbers: a numeric column with junk in it, reported by row
        return "numeric"
    if all(DATETIME.match(v) for v in sample):
        return "datetime"
    return "categorical"


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def to_numbers(values: np.ndarray, name: str, column: str) -> np.ndarray:
    """Numbers, NaN where the file has no value; text that is not a number is an error naming its line."""
    missing = is_missing(values)
    numbers = np.full(len(values), np.nan)
    try:
        numbers[~missing] = values[~missing].astype(np.float64)
        return numbers
    except ValueError:
        pass
    for i in np.flatnonzero(~missing):
        if not _is_number(values[i]):
            raise UserError(f"{name}, line {i + 2}, column '{column}': '{values[i]}' is not a number; fix the row, or "
                            f"treat the column as text with --set \"data.categorical_columns=[{column}]\"")
    raise AssertionError("unreachable: some value failed to convert")


def labels(table: Table, column: str) -> np.ndarray:
    """0 (legitimate) / 1 (fraud) per row: numbers 0/1, or true/false, yes/no."""
    numeric = table.kinds[column] == "numeric"
    keys = [f"{v:g}" if numeric else str(v).strip().lower() for v in table.columns[column]]
    values = [LABEL_VALUES.get(key) for key in keys]
    bad = next((i for i, value in enumerate(values) if value is None), None)
    if bad is not None:
        raw = keys[bad] if numeric else str(table.columns[column][bad])
        shown = "an empty value" if raw in MISSING else f"'{raw}'"
        raise UserError(f"{table.name}, line {bad + 2}, label column '{column}': {shown}; labels must be 0/1 "
                        "(or true/false) for legitimate/fraud")
    return np.asarray(values, dtype=np.int64)


def datetimes(table: Table, column: str) -> np.ndarray:
    """A datetime column as datetime64[s], with an error naming the first value that is not a date."""
    values = table.columns[column]
    for i, text in enumerate(values):
        if not DATETIME.match(str(text)):
            raise UserError(f"{table.name}, line {i + 2}, column '{column}': '{text}' is not a date and time "
                            "like 2018-07-25 13:05:00")
    return values.astype("datetime64[s]")
