"""Transaction tables: a CSV file (gzip or not) or the embedded simulator, read into typed columns.

Every column gets a kind: ``numeric``, ``categorical`` (strings) or ``datetime`` (ISO text such as
``2018-07-25 00:00:29``). Values stay as the file wrote them until a column is used: a number
column is converted (and checked) by :meth:`Table.numbers`, so junk in a column nobody uses
stops nothing. The same reader serves training and ``predict``.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import re
import zlib
from pathlib import Path

import numpy as np

from pipelines.core.errors import UserError
from pipelines.core.files import checked_file

MISSING = {"", "nan", "NaN", "NA", "N/A", "null", "NULL", "None"}
# Dates with an optional time, and an optional time-zone suffix (ignored: times are read as written).
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")
ZONE = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")
LABEL_VALUES = {"0": 0, "1": 1, "false": 0, "true": 1, "no": 0, "yes": 1}


@dataclasses.dataclass
class Table:
    """Columns of one file, in the file's order: name -> object array of text (or float64, simulated numbers)."""

    name: str  # for messages: the file, or the simulation
    columns: dict[str, np.ndarray]
    kinds: dict[str, str]
    lines: np.ndarray | None = None  # each row's line in the file (None: row i is line i + 2)

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def line(self, row: int) -> int:
        return int(self.lines[row]) if self.lines is not None else row + 2

    def numbers(self, column: str) -> np.ndarray:
        """A column as float64 (NaN where no value), converted once; text that is not a number is an error."""
        values = self.columns[column]
        if values.dtype == object:
            values = self.columns[column] = to_numbers(self, column)
        return values


def read_csv(path: str | Path) -> tuple[list[str], list[list[str]], np.ndarray]:
    """Header, rows and each row's line number of a CSV file, gzip or plain, with a clear error for what
    cannot be read."""
    path = Path(path)
    checked_file(path, "data file", "; give a CSV file of transactions (plain or .gz)")
    with path.open("rb") as probe:
        zipped = probe.read(2) == b"\x1f\x8b"  # by content, not by name
    try:
        with (
            gzip.open(path, "rt", encoding="utf-8-sig", newline="")
            if zipped
            else path.open(encoding="utf-8-sig", newline="")
        ) as handle:
            reader = csv.reader(handle, strict=True)
            numbered = [(reader.line_num, row) for row in reader if row]  # blank lines skipped, numbers kept
    except (UnicodeDecodeError, csv.Error, OSError, EOFError, zlib.error) as err:
        raise UserError(f"cannot read {path} as a CSV file: {err}") from None
    if not numbered:
        raise UserError(f"{path} is empty; it needs a header row and transactions")
    header, body = [name.strip() for name in numbered[0][1]], numbered[1:]
    if not body:
        raise UserError(f"{path} has a header row but no transactions")
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise UserError(f"{path}: column name(s) {', '.join(map(repr, duplicated))} appear twice in the header")
    for line, row in body:
        if len(row) != len(header):
            raise UserError(f"{path}, line {line}: {len(row)} fields where the header has {len(header)}")
    return header, [row for _, row in body], np.array([line for line, _ in body])


def read_table(path: str | Path, forced: dict[str, str]) -> Table:
    """A CSV file as a table, each column's kind inferred unless ``forced`` names it."""
    header, body, lines = read_csv(path)
    columns, kinds = {}, {}
    for column, raw in zip(header, zip(*body)):
        columns[column] = np.array([text.strip() for text in raw], dtype=object)
        kinds[column] = forced.get(column) or infer_kind(columns[column])
    return Table(str(path), columns, kinds, lines)


def is_missing(values: np.ndarray) -> np.ndarray:
    return np.fromiter((value in MISSING for value in values), dtype=bool, count=len(values))


def infer_kind(values: np.ndarray) -> str:
    """numeric (mostly numbers: junk among them is reported when the column is used), datetime (all ISO
    dates), else categorical."""
    present = values[~is_missing(values)]
    if len(present) == 0:
        return "categorical"  # nothing to tell: kept as text, where an empty value is one more category
    sample = present[:: max(1, len(present) // 2000)]  # a spread-out sample decides
    if sum(_is_number(v) for v in sample) >= 0.9 * len(sample):
        return "numeric"
    if all(DATETIME.match(v) for v in sample):
        return "datetime"
    return "categorical"


def _is_number(text: str) -> bool:
    try:
        return bool(np.isfinite(float(text)))
    except ValueError:
        return False


def to_numbers(t: Table, column: str) -> np.ndarray:
    """Numbers, NaN where the file has no value; text that is not a finite number is an error naming its line."""
    values = t.columns[column]
    missing = is_missing(values)
    numbers = np.full(len(values), np.nan)
    try:
        numbers[~missing] = values[~missing].astype(np.float64)
        if np.isfinite(numbers[~missing]).all():
            return numbers
    except ValueError:
        pass
    bad = next(i for i in np.flatnonzero(~missing) if not _is_number(values[i]))
    raise UserError(
        f"{t.name}, line {t.line(bad)}, column '{column}': '{values[bad]}' is not a number; fix the row "
        f'(or, training, read the column as text: --set "data.categorical_columns=[{column}]")'
    )


def labels(t: Table, column: str) -> np.ndarray:
    """0 (legitimate) / 1 (fraud) per row: numbers 0/1, or true/false, yes/no."""
    if t.kinds[column] == "numeric":
        keys = ["" if np.isnan(v) else f"{v:g}" for v in t.numbers(column)]
    else:
        keys = [str(v).strip().lower() for v in t.columns[column]]
    values = [LABEL_VALUES.get(key) for key in keys]
    bad = next((i for i, value in enumerate(values) if value is None), None)
    if bad is not None:
        shown = "an empty value" if keys[bad] in MISSING else f"'{keys[bad]}'"
        raise UserError(
            f"{t.name}, line {t.line(bad)}, label column '{column}': {shown}; labels must be 0/1 "
            "(or true/false) for legitimate/fraud"
        )
    return np.asarray(values, dtype=np.int64)


def datetimes(t: Table, column: str) -> np.ndarray:
    """A datetime column as datetime64[s] (a time-zone suffix ignored), with an error naming the first value
    that is not a date."""
    values = t.columns[column]
    for i, text in enumerate(values):
        if not DATETIME.match(str(text)):
            raise UserError(
                f"{t.name}, line {t.line(i)}, column '{column}': '{text}' is not a date and time "
                "like 2018-07-25 13:05:00"
            )
    return np.array([ZONE.sub("", str(text)) for text in values], dtype="datetime64[s]")
