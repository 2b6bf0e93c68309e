"""Files a user names (a config, a data file, an input to predict): looked at before they are opened.

``open`` on a FIFO waits for a writer that may never come, and reading ``/dev/zero`` never ends: a path is
stat'ed first, and only a regular file of bounded size is read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pipelines.core.errors import UserError
from pipelines.core.names import shown

MAX_FILE_BYTES = 4 << 30  # one image, clip or table: larger is not an input anyone means to hand over whole


def checked_file(path: str | bytes | Path, what: str, hint: str = "", limit: int = MAX_FILE_BYTES) -> int:
    """The size of ``path``, a regular file of at most ``limit`` bytes; otherwise a :class:`UserError` saying
    what it is instead (missing, a folder, a device or a pipe, too large), ``what`` naming its role and ``hint``
    (``"; give ..."``) what to give instead."""
    try:
        info = os.stat(path)  # follows links: a link to /dev/zero is a device
    except FileNotFoundError:
        raise UserError(f"{what} not found: {shown(path)}{hint}") from None
    except OSError as err:
        raise UserError(f"cannot read {what} {shown(path)}: {err.strerror}{hint}") from None
    if stat.S_ISDIR(info.st_mode):
        raise UserError(f"{what} {shown(path)} is a folder, not a file{hint}")
    if not stat.S_ISREG(info.st_mode):
        raise UserError(f"{what} {shown(path)} is not a regular file (a device, a pipe or a socket){hint}")
    if info.st_size > limit:
        raise UserError(f"{what} {shown(path)} has {info.st_size:,} bytes; at most {limit:,} are read")
    return info.st_size


def read_bytes(path: str | bytes | Path, what: str, hint: str = "", limit: int = MAX_FILE_BYTES) -> bytes:
    """The contents of a regular file of at most ``limit`` bytes (see :func:`checked_file`)."""
    checked_file(path, what, hint, limit)
    try:
        with open(path, "rb") as file:
            contents = file.read(limit + 1)
    except OSError as err:
        raise UserError(f"cannot read {what} {shown(path)}: {err.strerror}") from None
    if len(contents) > limit:
        raise UserError(f"{what} {shown(path)} grew past {limit:,} bytes while being read")
    return contents
