"""``train.strategy=multi_worker`` with ``train.workers=N`` and no TF_CONFIG: N worker processes on this machine.

Each worker is ``dlapps DOMAIN train`` with the same settings, its own TF_CONFIG (127.0.0.1, free ports) and a
fixed run name; worker 0 is the chief and talks to the console, the others to log files that are removed when
all end well. When one ends badly the others are given time to notice by themselves (they stop with a line
of their own), then stopped; Ctrl-C and SIGTERM reach every worker, which stop as a single process does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import click

from apps.lifeline import child_environment, stop_children
from pipelines.core import cluster

GRACE_SECONDS = cluster.HEARTBEAT_SECONDS + 10  # for the others to notice a lost worker and say so
STOP_SECONDS = 30  # after SIGTERM, before SIGKILL


@dataclasses.dataclass(frozen=True)
class TrainRequest:
    """The ``train`` command as the user typed it, to be run again by each worker."""

    domain: str
    runs_dir: Path
    name: str  # one run name for every worker (the chief writes it)
    resume: Path | None = None
    task: str | None = None
    data: str | None = None
    config_path: Path | None = None
    overrides: tuple[str, ...] = ()
    verbose: bool = False

    @property
    def root(self) -> Path:
        return self.resume or Path(self.runs_dir) / self.domain / self.name

    def arguments(self) -> list[str]:
        """``dlapps DOMAIN train``'s arguments for a worker."""
        if self.resume is not None:
            arguments = ["--resume", str(self.resume)]
        else:
            arguments = [*(["--task", self.task] if self.task else []), *(["--data", self.data] if self.data else [])]
            arguments += [*(["--config", str(self.config_path)] if self.config_path else [])]
            arguments += [x for item in self.overrides for x in ("--set", item)]
            arguments += ["--runs-dir", str(self.runs_dir), "--name", self.name]
        return [*arguments, *(["--verbose"] if self.verbose else [])]


def launch_local_workers(request: TrainRequest, train_config) -> int:
    """Run ``train_config.workers`` workers to their end; the exit code to leave with."""
    train_config.check_batch_shared_among(train_config.workers, "workers")
    logs = Path(tempfile.mkdtemp(prefix="dlapps-workers-"))
    ports = cluster.free_ports(train_config.workers)
    click.echo(
        f"{train_config.workers} workers on 127.0.0.1 (ports {', '.join(map(str, ports))}); "
        f"worker 0 is the chief, the others log to {logs}",
        err=True,
    )
    arguments = request.arguments()
    workers = [start_worker(request.domain, arguments, ports, index, logs) for index in range(train_config.workers)]
    code = wait_for(workers, logs, lambda: resume_hint(request))
    if code in (0, 130, 143):  # ended well, or stopped by the user: the logs hold nothing to look into
        shutil.rmtree(logs, ignore_errors=True)
    return code


def start_worker(domain: str, arguments: list[str], ports: list[int], index: int, logs: Path) -> subprocess.Popen:
    environment = child_environment(TF_CONFIG=cluster.local_cluster(ports, index))
    command = [sys.executable, "-m", "apps.cli", domain, "train", *arguments]
    # Sessions of their own: a terminal's Ctrl-C reaches the launcher alone, which passes it on once.
    if index == 0:
        return subprocess.Popen(command, env=environment, start_new_session=True)
    with open(logs / f"worker-{index}.log", "wb") as log:
        return subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_for(workers: list[subprocess.Popen], logs: Path, resume: Callable[[], str]) -> int:
    """Every worker's end; the chief's exit code, or the first failure's where the chief ended well."""
    stopping = []

    def forward(signum, frame):
        stopping.append(signum)
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):
                worker.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        failed_at = None
        while [worker.poll() for worker in workers].count(None):  # every worker polled: each return code is seen
            failed = [i for i, worker in enumerate(workers) if worker.returncode not in (None, 0)]
            if failed and failed_at is None:
                failed_at = time.monotonic()
                if failed[0] != 0:
                    click.echo(lost_worker_line(failed[0], workers[failed[0]], logs, resume()), err=True)
            if failed_at is not None and time.monotonic() - failed_at > GRACE_SECONDS:
                stop_children(workers, STOP_SECONDS)
            time.sleep(0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    codes = [worker.returncode for worker in workers]
    if stopping:
        return 130 if stopping[0] == signal.SIGINT else 143
    return codes[0] or next((code for code in codes if code), 0)


def resume_hint(request: TrainRequest) -> str:
    """How to continue, where the chief had begun the run (a worker may fail before: bad settings, no data)."""
    if (request.root / "run.json").exists():
        return f"; continue with: dlapps {request.domain} train --resume {request.root}"
    return ""


def lost_worker_line(index: int, worker: subprocess.Popen, logs: Path, resume: str) -> str:
    code = worker.returncode
    how = f"was killed by signal {-code}" if code < 0 else f"ended with exit code {code}"
    log = logs / f"worker-{index}.log"
    last = next((line for line in reversed(log.read_text(errors="replace").splitlines()) if line.strip()), "")
    said = f': "{last.strip()[:300]}"' if last and code > 0 else ""
    return f"error: worker {index} {how}{said} (its log: {log}); the others stop{resume}"
