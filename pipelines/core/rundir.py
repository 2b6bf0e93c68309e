"""The run directory contract: every path a run writes, in one place.

```
runs/<domain>/<name>/
  run.json        domain, status, class names, epochs done (what evaluate/predict/export/resume need)
  config.yaml     fully resolved config, reloadable with --config
  logs/train/ logs/validation/ logs/eval/   TensorBoard event files
  checkpoints/    backup/ (resume state) and best.keras (best validation loss)
  model.keras     final Keras model
  metrics.json    final evaluation on the test split
  export/         saved_model/ and model.tflite
  samples/        PNG figures a person looks at
```
A run directory is never overwritten: creating one that exists is a :class:`UserError`. A run's name
is one path component of letters, digits and ``.,_+=@-``, so a run always lands in ``<runs dir>/<domain>/``.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.core.errors import UserError
from pipelines.core.names import shown


@dataclass(frozen=True)
class RunDir:
    root: Path

    config = property(lambda self: self.root / "config.yaml")
    info_path = property(lambda self: self.root / "run.json")
    logs = property(lambda self: self.root / "logs")
    checkpoints = property(lambda self: self.root / "checkpoints")
    backup = property(lambda self: self.root / "checkpoints" / "backup")
    best_model = property(lambda self: self.root / "checkpoints" / "best.keras")
    model = property(lambda self: self.root / "model.keras")
    metrics = property(lambda self: self.root / "metrics.json")
    export = property(lambda self: self.root / "export")
    saved_model = property(lambda self: self.root / "export" / "saved_model")
    tflite = property(lambda self: self.root / "export" / "model.tflite")
    samples = property(lambda self: self.root / "samples")

    @staticmethod
    def free_path(runs_dir: str | Path, domain: str, name: str | None) -> Path:
        """Where run ``name`` would go (None: a new timestamp name); a :class:`UserError` if something is already
        there, the name is not one safe path component, or ``runs_dir`` cannot hold runs."""
        parent = domain_folder(runs_dir, domain)
        if name is None:
            return _timestamped(parent)
        check_name(name)
        root = parent / name
        if os.path.lexists(root):  # a dangling link too: mkdir would fail on it
            raise UserError(f"run directory {root} already exists; pick another --name or remove it yourself")
        return root

    @classmethod
    def create(cls, runs_dir: str | Path, domain: str, name: str | None) -> RunDir:
        """Make a fresh run directory; an existing one is never touched."""
        while True:
            root = cls.free_path(runs_dir, domain, name)
            try:
                root.mkdir(parents=True)
                break
            except FileExistsError:  # another process took this name since free_path looked
                if name is not None:
                    raise UserError(f"run directory {root} already exists; pick another --name") from None
            except OSError as err:
                raise UserError(f"cannot create run directory {root}: {err.strerror}") from None
        run = cls(root)
        try:
            for sub in ("logs", "checkpoints", "samples"):
                (root / sub).mkdir()
            run.write_info(domain=domain, status="created", created=time.strftime("%Y-%m-%dT%H:%M:%S"))
        except BaseException:  # a full disk: no half-made run is left behind
            shutil.rmtree(root, ignore_errors=True)
            raise
        return run

    @classmethod
    def open(cls, path: str | Path, domain: str) -> RunDir:
        """An existing run of ``domain``; anything else is a :class:`UserError`."""
        run = cls(Path(path))
        if not run.root.is_dir():
            raise UserError(f"run directory not found: {run.root}; list runs with: ls runs/{domain}")
        if not run.info_path.is_file():
            raise UserError(f"{run.root} is not a dlapps run directory (no run.json)")
        found = run.info().get("domain")
        if found != domain:
            raise UserError(f"{run.root} is a {found} run, not {domain}; use: dlapps {found} ...")
        return run

    def info(self) -> dict[str, Any]:
        try:
            return json.loads(self.info_path.read_text(encoding="utf-8"))
        except ValueError:
            raise UserError(f"{self.info_path} is not valid JSON; the run directory is damaged") from None

    def write_info(self, **updates: Any) -> None:
        info = self.info() if self.info_path.exists() else {}
        info.update(updates)
        _write_json_atomically(self.info_path, info)

    def write_metrics(self, metrics: dict) -> None:
        _write_json_atomically(self.metrics, metrics)

    def lock(self) -> None:
        """Claim the run for this process until it exits: a second process training it is refused in one line.

        An advisory lock (flock) on ``.lock``, which the kernel releases when the process ends however it ends,
        so a killed run never leaves a stale lock; the file names the holder's pid for the message.
        """
        path = (self.root / ".lock").resolve()
        if path in _HELD_LOCKS:  # this process holds it already (the CLI called in-process, as tests do)
            return
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise UserError(
                f"{self.root} is being trained by process {holder}; wait for it to end or stop it"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        _HELD_LOCKS[path] = fd  # open for the life of the process: closing it would release the lock

    def require_model(self) -> Path:
        """Path of the trained model; a clear error when training never finished."""
        for path in (self.model, self.best_model):
            if path.is_file():
                return path
        raise UserError(
            f"{self.root} has no trained model yet; "
            f"finish it with: dlapps {self.info()['domain']} train --resume {self.root}"
        )


_HELD_LOCKS: dict[Path, int] = {}
NAME = re.compile(r"\w[\w.,+=@-]*")  # \w: letters and digits of any script, and "_"
MAX_NAME_BYTES = 200  # file systems allow 255 bytes a name; a default name's -N suffix needs a few


def check_name(name: str) -> None:
    """A run name is one path component: no separators, no "..", no hidden names, at most :data:`MAX_NAME_BYTES`
    bytes of UTF-8 (100 CJK characters are 300)."""
    if len(os.fsencode(name)) > MAX_NAME_BYTES:
        raise UserError(f"--name is {len(os.fsencode(name))} bytes long; a run name is at most {MAX_NAME_BYTES}")
    if not NAME.fullmatch(name):
        raise UserError(
            f"--name {shown(name)!r} is not a plain run name; use letters, digits and . , _ + = @ - "
            "(not starting with . or -, no /): the run goes into RUNS_DIR/DOMAIN/NAME"
        )


def domain_folder(runs_dir: str | Path, domain: str) -> Path:
    """``<runs_dir>/<domain>``, resolved; a :class:`UserError` when runs cannot be written there."""
    runs_dir = Path(runs_dir).expanduser().resolve()
    for folder in (runs_dir, runs_dir / domain):
        if folder.exists() and not folder.is_dir():
            raise UserError(f"--runs-dir: {folder} is a file, not a folder; give a folder for the run directories")
    existing = next(folder for folder in (runs_dir / domain, runs_dir, *runs_dir.parents) if folder.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"--runs-dir: cannot write into {existing}; give a folder you can write to")
    return runs_dir / domain  # a name of one component keeps every run in it


def _timestamped(parent: Path) -> Path:
    """A new run's default name: the time it starts, with -2, -3, ... where a run started in the same second."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    root, n = parent / stamp, 1
    while os.path.lexists(root):
        n += 1
        root = parent / f"{stamp}-{n}"
    return root


def _write_json_atomically(path: Path, values: dict) -> None:
    # Write-then-rename so an interrupted run never leaves half a file behind.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(values, indent=2, default=_json_default) + "\n", encoding="utf-8")
    tmp.replace(path)


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
