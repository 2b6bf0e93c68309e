"""File names as a person reads them.

A Linux file name is any bytes; Python keeps those that are not UTF-8 as surrogate escapes
(``os.fsdecode(b"caf\\xe9") == "caf\\udce9"``), which TensorFlow refuses and a terminal cannot show.
So the folder sources hand paths to TensorFlow as bytes (``os.fsencode``), and every name they show
or store (a class from a folder name, a label from a file name, a file in a message) is :func:`shown`.

>>> import os
>>> print(shown(os.fsdecode(b"caf\\xe9/01.png")), shown("café"))
caf\\xe9/01.png café
"""

from __future__ import annotations

import os


def shown(name: str | bytes | os.PathLike) -> str:
    """``name`` as UTF-8 text, each byte that is not UTF-8 written as ``\\xNN``: printable, and not the same
    name as the UTF-8 spelling (``caf\\xe9`` is not ``café``)."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")
