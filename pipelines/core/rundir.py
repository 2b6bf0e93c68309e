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
A run directory is never overwritten: creating one that exists is a :class:`UserError`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.core.errors import UserError


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
    def free_path(runs_dir: str | Path, domain: str, name: str) -> Path:
        """Where run ``name`` would go; a :class:`UserError` if something is already there."""
        root = Path(runs_dir) / domain / name
        if root.exists():
            raise UserError(f"run directory {root} already exists; pick another --name or remove it yourself")
        return root

    @classmethod
    def create(cls, runs_dir: str | Path, domain: str, name: str | None) -> RunDir:
        """Make a fresh run directory; an existing one is never touched."""
        root = cls.free_path(runs_dir, domain, name or time.strftime("%Y%m%d-%H%M%S"))
        try:
            root.mkdir(parents=True)
        except OSError as err:
            raise UserError(f"cannot create run directory {root}: {err.strerror}") from None
        for sub in ("logs", "checkpoints", "samples"):
            (root / sub).mkdir()
        run = cls(root)
        run.write_info(domain=domain, status="created", created=time.strftime("%Y-%m-%dT%H:%M:%S"))
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

    def require_model(self) -> Path:
        """Path of the trained model; a clear error when training never finished."""
        for path in (self.model, self.best_model):
            if path.is_file():
                return path
        raise UserError(
            f"{self.root} has no trained model yet; "
            f"finish it with: dlapps {self.info()['domain']} train --resume {self.root}"
        )


def _write_json_atomically(path: Path, values: dict) -> None:
    # Write-then-rename so an interrupted run never leaves half a file behind.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(values, indent=2, default=_json_default) + "\n", encoding="utf-8")
    tmp.replace(path)


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
