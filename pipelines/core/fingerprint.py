"""Data fingerprints: one digest of everything that identifies a data set's examples, split by split.

A run records its data's fingerprint; ``evaluate`` and ``--resume`` refuse data whose fingerprint
differs (another split would put training examples into the test split).

>>> import numpy as np
>>> a = digest({"train": np.arange(3), "test": ["x.png", 1]})
>>> a == digest({"train": np.arange(3), "test": ["x.png", 1]}), a == digest({"train": np.arange(4), "test": []})
(True, False)
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np


def digest(value: Any) -> str:
    """SHA-256 of ``value``: arrays (dtype, shape and bytes), text, bytes, numbers, and mappings and sequences
    of these, each part framed by its kind and length, so no two different values share a digest by accident."""
    sha = hashlib.sha256()
    _update(sha, value)
    return sha.hexdigest()


def _update(sha, value: Any) -> None:
    if isinstance(value, np.ndarray) and value.dtype != object:
        _frame(sha, b"a", f"{value.dtype.str}{value.shape}".encode() + np.ascontiguousarray(value).tobytes())
    elif isinstance(value, (bytes, bytearray)):
        _frame(sha, b"b", bytes(value))
    elif isinstance(value, str):
        _frame(sha, b"s", value.encode("utf-8", "surrogatepass"))
    elif isinstance(value, (bool, int, float, np.generic)) or value is None:
        _frame(sha, b"n", repr(value.item() if isinstance(value, np.generic) else value).encode())
    elif isinstance(value, dict):
        _frame(sha, b"d", str(len(value)).encode())
        for key in sorted(value, key=str):
            _update(sha, str(key))
            _update(sha, value[key])
    elif isinstance(value, (set, frozenset)):
        raise TypeError("cannot fingerprint a set: its order differs from process to process")
    elif isinstance(value, Iterable):
        items = list(value)
        _frame(sha, b"l", str(len(items)).encode())
        for item in items:
            _update(sha, item)
    else:
        raise TypeError(f"cannot fingerprint a {type(value).__name__}")


def _frame(sha, kind: bytes, payload: bytes) -> None:
    sha.update(kind + len(payload).to_bytes(8, "little") + payload)


def folder_examples(paths: Iterable[str | bytes], labels: Iterable[int], contents: Iterable[str], root: Path) -> list:
    """(path relative to ``root``, label, fingerprint of the file's bytes) per file: a folder's examples, wherever
    it is mounted. The content fingerprints come from the pass that checks every file (``tf.fingerprint`` of the
    bytes it read), so a folder is read once for both. A path is kept as text, its non-UTF-8 bytes as Python's
    surrogate escapes (``os.fsdecode``): :func:`digest` hashes those exactly, so each name has one fixed digest, and
    UTF-8 names hash as they did before (as bytes they would not, and earlier runs would no longer match)."""
    return [
        (str(Path(os.fsdecode(p)).relative_to(root)), int(label), str(c))
        for p, label, c in zip(paths, labels, contents)
    ]
