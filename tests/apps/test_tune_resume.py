"""An interrupted search (Ctrl-C, kill -9) continues with --resume: finished trials kept, the stopped one resumed."""

import csv
import json
import signal
import time

from tests.helpers import FAST, dlapps, finished_epochs, start_cli

# epochs of a second or so: long enough for a signal to land inside one
SEARCH = [
    *(
        arg
        for item in FAST
        if not item.startswith(("model.", "train.epochs=", "train.steps_"))
        for arg in ("--set", item)
    ),
    *("--set", "train.epochs=3", "--set", "train.steps_per_epoch=60", "--set", "eval.every_epochs=0"),
    *("--space", "model.width=4,8", "--space", "train.learning_rate=log:1e-3..1e-2"),
]


def run_json(run) -> dict:
    path = run / "run.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def wait_until_training(process, run, epochs_saved: int = 0):
    """Until trial ``run`` trains, with ``epochs_saved`` epochs in its resume state."""
    deadline = time.time() + 180
    while time.time() < deadline and process.poll() is None:
        if run_json(run).get("status") == "training" and finished_epochs(run) >= epochs_saved:
            return
        time.sleep(0.05)
    raise AssertionError(f"{run} never trained: {process.communicate()}")


def test_ctrl_c_then_kill_9_then_resume_finishes_the_search_with_every_trial_once(tmp_path):
    tune = tmp_path / "vision" / "s"
    args = ["vision", "tune", *SEARCH, "--trials", 2, "--runs-dir", tmp_path, "--name", "s"]
    first = start_cli(*args)
    wait_until_training(first, tune / "vision" / "trial_0", epochs_saved=1)
    first.send_signal(signal.SIGINT)  # Ctrl-C: the trial stops as train does, the search says how to go on
    _, err = first.communicate(timeout=120)
    assert first.returncode == 130, err
    assert f"dlapps vision tune --resume {tune}" in err and "Traceback" not in err
    assert run_json(tune / "vision" / "trial_0")["status"] == "interrupted"
    assert json.loads((tune / "tune.json").read_text())["status"] == "interrupted"

    second = start_cli("vision", "tune", "--resume", tune)
    wait_until_training(second, tune / "vision" / "trial_1", epochs_saved=1)
    second.kill()  # no chance to clean up: its trial is told by the kernel (SIGTERM) and keeps its epochs
    second.communicate(timeout=60)
    deadline = time.time() + 60
    while run_json(tune / "vision" / "trial_1").get("status") == "training" and time.time() < deadline:
        time.sleep(0.1)  # the orphaned trial stopping
    assert run_json(tune / "vision" / "trial_1")["status"] == "interrupted"

    third = dlapps("vision", "tune", "--resume", tune)
    assert third.exit_code == 0, third.output
    with open(tune / "results.csv", newline="") as file:
        found = list(csv.DictReader(file))
    assert sorted(row["trial"] for row in found) == ["0", "1"]
    assert all(row["status"] == "completed" for row in found)
    for trial in ("0", "1"):
        info = run_json(tune / "vision" / f"trial_{trial}")
        assert info["status"] == "complete" and info["epochs_done"] == 3
    # each stopped trial went on from its saved epoch: resumed, not trained again from the start
    for trial in ("0", "1"):
        log = (tune / "oracle" / f"trial_{trial}" / "train.log").read_text()
        assert log.count("Epoch 1/3") == 1 and "Epoch 3/3" in log and "--resume" in log
    assert json.loads((tune / "tune.json").read_text())["status"] == "complete"


def test_hyperband_chooses_the_epochs_and_max_minutes_stops_after_the_running_trial(tmp_path):
    result = dlapps(
        "vision", "tune", *SEARCH, "--algorithm", "hyperband", "--trials", 20,
        "--max-minutes", 0.001, "--runs-dir", tmp_path, "--name", "h",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    tune = tmp_path / "vision" / "h"
    with open(tune / "results.csv", newline="") as file:
        (only,) = csv.DictReader(file)  # one trial started before the minutes ran out; none after it
    assert only["status"] == "completed"
    config = json.loads((tune / "oracle" / "trial_00" / "trial.json").read_text())["hyperparameters"]["values"]
    assert run_json(tune / only["run"])["epochs_done"] == int(only["epochs"]) == config["tuner/epochs"]
    assert json.loads((tune / "tune.json").read_text())["status"] == "stopped after --max-minutes"
    assert (tune / "best.yaml").is_file() and "Search stopped after --max-minutes" in result.output
