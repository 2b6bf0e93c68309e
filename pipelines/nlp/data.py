"""Text-classification data: TSV/CSV tables, folders of .txt files per class, tfds datasets.

Every source gives the texts and integer labels of each split as NumPy arrays: text
datasets fit in memory, and the arrays are what the vectorizer adapts on and what the
evaluation shows a person when a message is misclassified.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.core.errors import UserError
from pipelines.core.files import checked_file
from pipelines.core.names import shown
from pipelines.core.registry import Registry
from pipelines.core.stages import stratified_split
from pipelines.core.tfds_splits import prepared_builder, split_slices

log = logging.getLogger(__name__)

SOURCES = Registry("text data source")
SPLITS = ("train", "validation", "test")


@dataclasses.dataclass
class RawText:
    """What a source gives: per split, texts (object array of str) and labels (int), and the class names."""

    texts: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    class_names: list[str]
    name: str

    @property
    def sizes(self) -> dict[str, int]:
        return {split: len(self.labels[split]) for split in SPLITS}


def labelled(
    texts: list[str],
    label_names: list[str],
    config: Any,
    name: str,
    official_test: tuple[list[str], list[str]] | None = None,
) -> RawText:
    """Texts and their label names -> stratified train/validation/test (the test split: ``official_test`` if given)."""
    class_names = sorted(set(label_names) | set(official_test[1] if official_test else []))
    if len(class_names) < 2:
        raise UserError(f"{name} has a single class ({class_names[0]!r}); a classifier needs at least two")
    counts = Counter(label_names)
    rare = sorted(c for c in counts if counts[c] < 3)
    if rare:
        raise UserError(
            f"{name}: class(es) {', '.join(map(repr, rare[:5]))} have fewer than 3 examples; every class "
            "needs one for training, validation and test (is a header row read as data? set data.header)"
        )
    index = {c: i for i, c in enumerate(class_names)}
    texts = np.array(texts, dtype=object)
    labels = np.array([index[c] for c in label_names], dtype=np.int64)
    fractions = {"validation": config.validation_fraction}
    if official_test is None:
        # Test first: the same seed gives the same test split whatever the validation share.
        fractions = {
            "test": config.test_fraction,
            "validation": config.validation_fraction * (1 - config.test_fraction),
        }
    parts = stratified_split(labels, fractions, config.split_seed)
    split_texts = {split: texts[idx] for split, idx in parts.items()}
    split_labels = {split: labels[idx] for split, idx in parts.items()}
    if official_test is not None:
        split_texts["test"] = np.array(official_test[0], dtype=object)
        split_labels["test"] = np.array([index[c] for c in official_test[1]], dtype=np.int64)
    return RawText(split_texts, split_labels, class_names, name)


# --- tables ---------------------------------------------------------------------------------


def decoded(path: Path, encoding: str) -> str:
    """A file's text; bytes the encoding cannot read are an error naming the line."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read {shown(path)}: {err.strerror}") from None
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise UserError(
            f"{shown(path)} line {line}: bytes that are not {encoding} ({raw[err.start : err.start + 4]!r}); "
            f"convert the file, or set data.encoding (e.g. latin-1)"
        ) from None
    except LookupError:
        raise UserError(f"unknown data.encoding '{encoding}'") from None
    return text.removeprefix("\ufeff")  # a byte-order mark (Windows editors) is not part of the first field


def delimiter_for(path: Path, setting: str) -> str:
    if setting == "auto":
        return "," if path.suffix.lower() == ".csv" else "\t"
    delimiter = {"tab": "\t", "comma": ","}.get(setting, setting)
    if len(delimiter) != 1:
        raise UserError(f"data.delimiter must be auto, tab, comma or one character, got '{setting}'")
    return delimiter


def column_index(setting: str, header: list[str] | None, path: Path, role: str) -> int | None:
    """A column given by name (needs a header) or 0-based position; None for ``auto``."""
    if setting == "auto":
        return None
    if setting.isdigit():
        return int(setting)
    if header is None or setting not in header:
        columns = ", ".join(header) if header else "none: the file has no header row"
        raise UserError(f"{path} has no {role} column '{setting}'; columns: {columns} (set data.{role}_column)")
    return header.index(setting)


def table_rows(path: Path, config: Any) -> list[tuple[int, list[str]]]:
    """(line number, fields) of every non-blank row of a TSV/CSV file."""
    text = decoded(path, config.encoding)
    delimiter = delimiter_for(path, config.delimiter)
    # Tab-separated files rarely quote (SMS texts are full of stray quotes); CSV does, and strict
    # mode makes an unclosed quote an error instead of one field swallowing the rest of the file.
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting, strict=True)
    return [(reader.line_num, row) for row in checked(reader, path) if any(field.strip() for field in row)]


def first_row_is_header(setting: str, rows: list, label_column: str, text_column: str) -> bool:
    """``data.header``; under ``auto``, a header when a column is given by name, or when the first
    row's label occurs nowhere else in the column (a ``label<TAB>text`` title line)."""
    setting = str(setting).lower()
    if setting not in ("auto", "true", "false"):
        raise UserError(f"data.header must be auto, true or false, got '{setting}'")
    if setting != "auto":
        return setting == "true"
    if any(c not in ("auto", "") and not c.isdigit() for c in (label_column, text_column)):
        return True
    at = int(label_column) if label_column.isdigit() else 0
    labels = [row[at].strip() for _, row in rows if len(row) > at]
    return bool(labels) and labels[0] not in labels[1:]


def label_and_text_columns(config: Any, header: list[str] | None, width: int, path: Path) -> tuple[int, int]:
    """0-based label and text columns: as set, else the columns named label/text, else the other of two, else 0
    and 1."""
    chosen = {role: column_index(getattr(config, f"{role}_column"), header, path, role) for role in ("label", "text")}
    for role, other, default in (("label", "text", 0), ("text", "label", 1)):
        if chosen[role] is None:
            if header and role in header:
                chosen[role] = header.index(role)
            elif width == 2 and chosen[other] is not None:
                chosen[role] = 1 - chosen[other]
            else:
                chosen[role] = default
    label_at, text_at = chosen["label"], chosen["text"]
    if max(label_at, text_at) >= width:
        raise UserError(
            f"{path}: rows have {width} field(s), but the label/text columns are {label_at}/{text_at} "
            "(0-based); set data.label_column and data.text_column"
        )
    if label_at == text_at:
        raise UserError(
            f"{path}: the label and text columns are the same ({label_at}); set data.label_column and data.text_column"
        )
    return label_at, text_at


def read_table(path: Path, config: Any) -> tuple[list[str], list[str]]:
    """(texts, label names) from a TSV/CSV file; every row must have as many fields as the first."""
    rows = table_rows(path, config)
    header = None
    if rows and first_row_is_header(config.header, rows, config.label_column, config.text_column):
        header = [field.strip() for field in rows.pop(0)[1]]
    if not rows:
        what = "a header row but no data rows" if header else "no rows"
        raise UserError(f"{path} has {what}; add labelled rows")
    width = len(header) if header else len(rows[0][1])
    label_at, text_at = label_and_text_columns(config, header, width, path)
    for line, row in rows:
        if len(row) != width:
            raise UserError(
                f"{path} line {line}: {len(row)} fields where the {'header' if header else 'first row'} "
                f"has {width}; fix the row or set data.delimiter"
            )
        if not row[label_at].strip():
            raise UserError(f"{path} line {line}: the label is empty; fill it or remove the row")
    return [row[text_at] for _, row in rows], [row[label_at].strip() for _, row in rows]


def checked(reader, path: Path):
    """The csv reader's rows; its own errors (a NUL byte, an unclosed quote) name the line the row starts on."""
    while True:
        starts_at = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise UserError(
                f"{path} line {starts_at}: {err}; check the quotes in this row, or set data.delimiter"
            ) from None
        yield row


@SOURCES.register("table")
def table_source(config: Any) -> RawText:
    """A TSV/CSV file: label<TAB>text by default; columns by name or 0-based position."""
    path = Path(config.path)
    checked_file(path, "data file", "; pass a TSV/CSV file, a folder of class subfolders, or tfds:NAME")
    texts, labels = read_table(path, config)
    return labelled(texts, labels, config, path.name)


# --- folders of .txt files -----------------------------------------------------------------


def class_folders(root: Path) -> dict[str, list[Path]]:
    """Class name (the subfolder's, :func:`~pipelines.core.names.shown`) -> its .txt files."""
    return {
        shown(d.name): sorted(d.glob("*.txt")) for d in sorted(root.iterdir()) if d.is_dir() and any(d.glob("*.txt"))
    }


def read_texts(paths: list[Path], encoding: str) -> list[str]:
    return [decoded(p, encoding) for p in paths]


@SOURCES.register("folder")
def folder_source(config: Any) -> RawText:
    """One subfolder of .txt files per class; with train/ and test/ inside (aclImdb), those are the splits."""
    root = Path(config.path)
    if not root.is_dir():
        raise UserError(f"data folder {root} does not exist")
    if (root / "train").is_dir() and (root / "test").is_dir():
        train, test = class_folders(root / "train"), class_folders(root / "test")
        unlabelled = sorted(set(train) - set(test))
        if unlabelled:  # aclImdb's train/unsup: reviews without a label
            log.info("ignoring %s: class folders in train/ but not in test/", ", ".join(unlabelled))
        classes = sorted(set(train) & set(test))
        if not classes:
            raise UserError(f"{root}/train and {root}/test share no class subfolders of .txt files")
        train_paths = [(p, c) for c in classes for p in train[c]]
        test_paths = [(p, c) for c in classes for p in test[c]]
        log.info("reading %d + %d text files", len(train_paths), len(test_paths))
        official = (read_texts([p for p, _ in test_paths], config.encoding), [c for _, c in test_paths])
        return labelled(
            read_texts([p for p, _ in train_paths], config.encoding),
            [c for _, c in train_paths],
            config,
            shown(root.name),
            official_test=official,
        )
    folders = class_folders(root)
    if not folders:
        raise UserError(f"{root} has no subfolders with .txt files; make one subfolder of .txt files per class")
    paths = [(p, c) for c, files in folders.items() for p in files]
    return labelled(read_texts([p for p, _ in paths], config.encoding), [c for _, c in paths], config, shown(root.name))


# --- tfds -----------------------------------------------------------------------------------


def pick_feature(features: dict, kind: type, setting: str, name: str, role: str) -> str:
    """The text or label feature: the one named by ``setting``, else the only one of its kind (or 'text'/'label')."""
    candidates = [key for key, feature in features.items() if isinstance(feature, kind)]
    if setting != "auto":
        if setting not in candidates:
            raise UserError(f"tfds dataset '{name}' has no {role} feature '{setting}'; {role} features: {candidates}")
        return setting
    if len(candidates) == 1 or role in candidates:
        return candidates[0] if len(candidates) == 1 else role
    raise UserError(
        f"tfds dataset '{name}' has {role} features {candidates or 'none'}; choose one with data.{role}_column"
    )


@SOURCES.register("tfds")
def tfds_source(config: Any) -> RawText:
    """Any TensorFlow Datasets text-classification dataset by name, e.g. imdb_reviews (downloads on first use)."""
    import tensorflow_datasets as tfds

    name = config.path or "imdb_reviews"
    builder = prepared_builder(name, config.tfds_data_dir)
    features = builder.info.features
    text_key = pick_feature(features, tfds.features.Text, config.text_column, name, "text")
    label_key = pick_feature(features, tfds.features.ClassLabel, config.label_column, name, "label")
    class_names = list(features[label_key].names)
    texts, labels = {}, {}
    for split, spec in split_slices(builder.info, config.validation_fraction, config.test_fraction).items():
        rows = [r for r in tfds.as_numpy(builder.as_dataset(split=spec)) if r[label_key] >= 0]  # -1: unlabelled
        texts[split] = np.array([r[text_key].decode("utf-8") for r in rows], dtype=object)
        labels[split] = np.array([r[label_key] for r in rows], dtype=np.int64)
    if len(np.unique(labels["train"])) < 2:
        raise UserError(f"tfds dataset '{name}' has fewer than two classes in its labelled training rows")
    empty = [split for split in ("validation", "test") if len(labels[split]) == 0]
    if empty:  # e.g. glue/sst2, whose test labels are withheld: hold out labelled training rows instead
        log.info("tfds:%s has no labelled %s rows; holding out part of its training split", name, "/".join(empty))
        parts = stratified_split(
            labels["train"],
            {s: config.test_fraction if s == "test" else config.validation_fraction for s in empty},
            config.split_seed,
        )
        for split, idx in parts.items():
            texts[split], labels[split] = texts["train"][idx], labels["train"][idx]
    return RawText(texts, labels, class_names, f"tfds:{name}")
