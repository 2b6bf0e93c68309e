"""Shared by the benchmark scripts: the shared datasets, timing helpers and JSON output."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "datasets"


def dlapps(domain: str, *args, code: Path = REPO) -> subprocess.CompletedProcess:
    """`dlapps DOMAIN ARGS...` in a fresh process from the repository (or another checkout, ``code``), as a user
    runs it; an error stops the benchmark."""
    return subprocess.run(
        [sys.executable, "-m", "apps.cli", domain, *map(str, args)],
        cwd=code,
        check=True,
        capture_output=True,
        text=True,
    )


def timed_train(
    domain: str, data: Path, runs: Path, name: str, settings: list[str], *extra
) -> tuple[Path, float, dict, dict]:
    """`dlapps DOMAIN train` timed as a whole command: (run directory, seconds, metrics.json, run.json); ``extra``:
    more arguments (a --config)."""
    start = time.perf_counter()
    dlapps(
        domain,
        "train",
        "--data",
        data,
        "--runs-dir",
        runs,
        "--name",
        name,
        *extra,
        *[x for item in settings for x in ("--set", item)],
    )
    seconds = time.perf_counter() - start
    run = runs / domain / name
    return run, seconds, json.loads((run / "metrics.json").read_text()), json.loads((run / "run.json").read_text())


def require(path: Path) -> Path:
    if not path.exists():
        sys.exit(f"benchmark data not found: {path} (the shared datasets sit beside the repository)")
    return path


def machine() -> dict:
    import keras
    import tensorflow as tf

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "processor": platform.processor() or platform.machine(),
    }


def p50_ms(fn, repeats: int = 200, warmup: int = 20) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1000, 3)


def emit(name: str, figures: dict) -> None:
    print(json.dumps({"benchmark": name, **figures, "machine": machine()}, indent=2))


class TimeToAccuracy:
    """A Keras callback factory: training seconds (clock paused while testing) until test accuracy >= target."""

    def __new__(cls, x_test, y_test, target: float, every_steps: int):
        import keras

        class Callback(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.seconds, self.reached_at, self.curve, self.steps = 0.0, None, [], 0
                self._start = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                self.steps += 1
                if self.steps % every_steps == 0:
                    self._check()

            def on_epoch_end(self, epoch, logs=None):
                if self.steps % every_steps:
                    self._check()

            def _check(self):
                self.seconds += time.perf_counter() - self._start
                accuracy = _accuracy(self.model, x_test, y_test)
                self.curve.append((self.steps, round(self.seconds, 2), round(accuracy, 4)))
                if self.reached_at is None and accuracy >= target:
                    self.reached_at = round(self.seconds, 2)
                self._start = time.perf_counter()

        return Callback()


def _accuracy(model, x, y) -> float:
    import numpy as np

    predictions = model.predict(x, batch_size=1000, verbose=0)
    return float(np.mean(predictions.argmax(axis=1) == y))


def search_memory(process: subprocess.Popen, results: Path, poll: float = 0.5) -> list[int]:
    """While ``dlapps ... tune`` runs as ``process``: the search process's resident memory (MiB) each time a trial
    is added to ``results`` (results.csv), so growth across trials shows; waits for the process to end."""
    samples, rows = [], 0
    while process.poll() is None:
        try:
            status = Path(f"/proc/{process.pid}/status").read_text()
            rss = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
        except (OSError, StopIteration):
            break
        now = len(results.read_text().splitlines()) - 1 if results.is_file() else 0
        if now > rows:
            rows = now
            samples.append(round(rss / 1024))
        time.sleep(poll)
    return samples


def timed_search(
    domain: str, data: Path, runs: Path, sets: list[str], space: list[str], minutes: float, objective: str
):
    """`dlapps DOMAIN tune` (Bayesian, ``minutes`` long) as a user runs it: (results.csv rows best first, the search
    directory, seconds, the search process's memory after each trial, its console output); a failure stops here."""
    import csv

    command = [sys.executable, "-m", "apps.cli", domain, "tune", "--data", str(data)]
    command += [x for item in sets for x in ("--set", item)] + [x for item in space for x in ("--space", item)]
    command += ["--algorithm", "bayesian", "--trials", "100000", "--max-minutes", str(minutes)]
    command += ["--objective", objective, "--runs-dir", str(runs), "--name", "search"]
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    tune = runs / domain / "search"
    memory = search_memory(process, tune / "results.csv")
    output = process.communicate()[0]
    if process.returncode != 0:
        sys.exit(f"the search failed:\n{output}")
    seconds = time.perf_counter() - start
    with open(tune / "results.csv", newline="") as file:
        return list(csv.DictReader(file)), tune, seconds, memory, output
