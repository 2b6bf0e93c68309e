"""A search's folder and what it was asked for (``tune.json``): read without TensorFlow or KerasTuner, so
``--resume`` can refuse a finished search in one line before either starts."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

from apps.tuning.space import Dimension
from pipelines.core.errors import UserError


@dataclasses.dataclass
class Request:
    """What a search was asked for (tune.json): enough to continue it with ``--resume``."""

    domain: str
    algorithm: str
    objective: str
    direction: str  # "min" or "max"
    trials: int
    max_minutes: float
    space: list[Dimension]
    workers: int = 1  # trial processes at once, each asking one oracle for its next trial (KerasTuner's chief)
    status: str = "created"

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "space": [dim.to_json() for dim in self.space]}

    @classmethod
    def from_json(cls, values: dict) -> Request:
        return cls(**{**values, "space": [Dimension.from_json(dim) for dim in values["space"]]})


@dataclasses.dataclass(frozen=True)
class TuneDir:
    root: Path

    request_path = property(lambda self: self.root / "tune.json")
    base_config = property(lambda self: self.root / "base.yaml")
    oracle = property(lambda self: self.root / "oracle")
    results = property(lambda self: self.root / "results.csv")
    best_config = property(lambda self: self.root / "best.yaml")

    def trial_run(self, domain: str, trial_id: str) -> Path:
        return self.root / domain / f"trial_{trial_id}"

    def trial_folder(self, trial_id: str) -> Path:
        return self.oracle / f"trial_{trial_id}"

    def failure_note(self, trial_id: str) -> Path:
        """Why a worker's trial failed: KerasTuner's gRPC messages carry no trial message to the chief."""
        return self.trial_folder(trial_id) / "failure.txt"

    def worker_log(self, worker: int) -> Path:
        return self.oracle / f"worker_{worker}.log"

    def request(self) -> Request:
        try:
            return Request.from_json(json.loads(self.request_path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise UserError(f"{self.root} is not a dlapps search (no tune.json); start one with tune --space") from None
        except (ValueError, KeyError, TypeError):
            raise UserError(f"{self.request_path} is damaged; start a new search") from None

    def write_request(self, request: Request) -> None:
        write_atomically(self.request_path, json.dumps(request.to_json(), indent=2) + "\n")


def write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def default_name() -> str:
    return f"tune-{time.strftime('%Y%m%d-%H%M%S')}"
