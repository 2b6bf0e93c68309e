"""`tune --workers N`: N trial workers against one oracle (KerasTuner's chief) on loopback, stopped and resumed."""

import csv
import json
import os
import re
import signal
import time
from pathlib import Path

from tests.apps.test_tune_resume import SEARCH, run_json
from tests.helpers import dlapps, finished_epochs, start_cli

EPOCHS = 16  # a second or two each; on a loaded machine the second worker's trial starts many seconds after the first's
WORKERS_SEARCH = [f"train.epochs={EPOCHS}" if arg == "train.epochs=3" else arg for arg in SEARCH]


def both_training(process, runs, deadline_seconds: float = 240) -> None:
    """Until every run in ``runs`` trains at once and one has an epoch saved: the workers run trials side by side.

    Only one epoch is waited for: a slow start of the second trial must not let the first one finish."""
    deadline = time.time() + deadline_seconds
    while time.time() < deadline and process.poll() is None:
        training = all(run_json(run).get("status") == "training" for run in runs)
        if training and max(finished_epochs(run) for run in runs) >= 1:
            return
        time.sleep(0.05)
    raise AssertionError(f"{runs} never trained together: {process.communicate()}")


def epochs_finished(log: str) -> int:
    """Epochs a trial's log shows trained to their end (Keras' one summary line per epoch, "60/60 - 1s - ...")."""
    return len(re.findall(r"^\d+/\d+ - ", log, flags=re.MULTILINE))


def test_two_workers_train_trials_side_by_side_and_a_stopped_search_resumes_every_trial_once(tmp_path):
    tune = tmp_path / "vision" / "w"
    trials = [tune / "vision" / f"trial_{i}" for i in range(3)]
    first = start_cli(
        "vision", "tune", *WORKERS_SEARCH, "--trials", 3, "--workers", 2, "--runs-dir", tmp_path, "--name", "w"
    )
    both_training(first, trials[:2])
    first.send_signal(signal.SIGINT)  # Ctrl-C: each worker is told to stop, and stops its trial as train does
    out, err = first.communicate(timeout=180)
    assert first.returncode == 130, (out, err)
    assert f"dlapps vision tune --resume {tune}" in err and "Traceback" not in err
    assert [run_json(run)["status"] for run in trials[:2]] == ["interrupted", "interrupted"]
    assert not trials[2].exists()
    request = json.loads((tune / "tune.json").read_text())
    assert request["status"] == "interrupted" and request["workers"] == 2
    for worker in (0, 1):  # each worker said how it stopped, in its own log
        assert "terminated (SIGTERM)" in (tune / "oracle" / f"worker_{worker}.log").read_text()

    # --resume: the two stopped trials go to whichever worker asks first and go on from their epochs
    second = dlapps("vision", "tune", "--resume", tune)
    assert second.exit_code == 0, second.output
    assert second.output.count("] trial ") == 3 and "Search complete" in second.output
    with open(tune / "results.csv", newline="") as file:
        found = list(csv.DictReader(file))
    assert sorted(row["trial"] for row in found) == ["0", "1", "2"]
    assert all(row["status"] == "completed" for row in found)
    for i, run in enumerate(trials):
        info = run_json(run)
        assert info["status"] == "complete" and info["epochs_done"] == EPOCHS
        log = (tune / "oracle" / f"trial_{i}" / "train.log").read_text()
        # each epoch trained to its end once
        assert epochs_finished(log) == EPOCHS and f"Epoch {EPOCHS}/{EPOCHS}" in log
        assert ("--resume" in log) == (i < 2)
    assert json.loads((tune / "tune.json").read_text())["status"] == "complete"


def worker_pid(tune, worker: int) -> int:
    """The process of ``tune``'s worker number ``worker``."""
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
            environment = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"apps.tuning.worker" in command and str(tune).encode() in command:
            if f"KERASTUNER_TUNER_ID=worker{worker}".encode() in environment:
                return int(proc.name)
    raise AssertionError(f"no worker {worker} of {tune}")


def test_a_worker_killed_stops_the_search_in_one_line_and_resume_finishes_every_trial(tmp_path):
    tune = tmp_path / "vision" / "k"
    trials = [tune / "vision" / f"trial_{i}" for i in range(2)]
    first = start_cli(
        "vision", "tune", *WORKERS_SEARCH, "--trials", 2, "--workers", 2, "--runs-dir", tmp_path, "--name", "k"
    )
    both_training(first, trials)
    os.kill(worker_pid(tune, 0), signal.SIGKILL)  # as the kernel's out-of-memory killer would
    _, err = first.communicate(timeout=180)
    assert first.returncode == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: tune worker 0 killed (SIGKILL: out of memory?)") and "--resume" in last
    assert "Traceback" not in err
    assert json.loads((tune / "tune.json").read_text())["status"] == "failed"
    deadline = time.time() + 120  # the killed worker's trial is told by the kernel and stops by itself
    while any(run_json(run).get("status") == "training" for run in trials) and time.time() < deadline:
        time.sleep(0.1)
    assert [run_json(run)["status"] for run in trials] == ["interrupted", "interrupted"]

    second = dlapps("vision", "tune", "--resume", tune)
    assert second.exit_code == 0, second.output
    for i, run in enumerate(trials):
        assert run_json(run)["status"] == "complete" and run_json(run)["epochs_done"] == EPOCHS
        assert epochs_finished((tune / "oracle" / f"trial_{i}" / "train.log").read_text()) == EPOCHS
