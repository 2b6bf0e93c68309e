"""Run inside a private mount namespace (``unshare -rm``) by test_full_disk.py: train, evaluate and export on
small tmpfs file systems that fill up at different steps, then give them room and carry on.

``python -m tests.apps.full_disk WORK OUT.json``: each tmpfs is mounted under WORK (visible only in this
namespace, gone with it); what happened goes to OUT.json, outside them, for the test to judge.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import FAST, dlapps

SETTINGS = [x for item in (*FAST, "train.epochs=3") for x in ("--set", item)]
POINTS = int(os.environ.get("DLAPPS_FULL_DISK_POINTS", "5"))  # disk sizes, from none to the space a whole run takes
PAGE = 4096


def mount(folder: Path, size: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)


def remount(folder: Path, size: int) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(folder)], check=True)


def used(folder: Path) -> int:
    stats = os.statvfs(folder)
    return (stats.f_blocks - stats.f_bfree) * stats.f_frsize


def outcome(result) -> dict:
    return {"exit": result.exit_code, "stderr": result.stderr, "output": result.output}


def state(run: Path) -> dict:
    """What the run directory holds now: its status and, once trained, how many optimizer steps its model took."""
    if not (run / "run.json").is_file():
        return {"exists": run.exists()}
    found = {"exists": True, "status": json.loads((run / "run.json").read_text())["status"]}
    if (run / "model.keras").is_file():
        import keras

        model = keras.models.load_model(run / "model.keras")
        found["iterations"] = int(model.optimizer.iterations.numpy())
    return found


def train_until_full_then_resume(disk: Path, size: int) -> dict:
    mount(disk, size)
    run = disk / "vision" / "r"
    first = dlapps("vision", "train", "--runs-dir", disk, "--name", "r", *SETTINGS)
    left = state(run)
    remount(disk, 64 << 20)  # space freed
    if left.get("status") is None:  # nothing was left to resume: the same command again
        second = dlapps("vision", "train", "--runs-dir", disk, "--name", "r", *SETTINGS)
    elif left["status"] != "complete":
        second = dlapps("vision", "train", "--resume", run)
    else:
        second = None
    return {
        "size": size,
        "first": outcome(first),
        "left": left,
        "second": outcome(second) if second else None,
        "final": state(run),
    }


def evaluate_and_export_on_a_full_disk(disk: Path) -> dict:
    """On a disk that holds a finished run and nothing more: evaluate and export each refuse in one line and
    leave the run as it was; with room again, export works."""
    run = disk / "vision" / "r"
    metrics = (run / "metrics.json").read_bytes()
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * PAGE)
    except OSError:  # full
        pass
    os.close(fd)
    evaluated = dlapps("vision", "evaluate", run)
    exported = dlapps("vision", "export", run)
    leftovers = sorted(path.name for path in (run / "export").glob(".saved_model-*"))
    filler.unlink()
    remount(disk, 64 << 20)
    again = dlapps("vision", "export", run)
    return {
        "evaluate": outcome(evaluated),
        "metrics_kept": (run / "metrics.json").read_bytes() == metrics,
        "export": outcome(exported),
        "staging_left": leftovers,
        "export_with_room": outcome(again),
        "saved_model": (run / "export" / "saved_model" / "saved_model.pb").is_file(),
    }


def main(work: Path, out: Path) -> None:
    reference = work / "reference"
    mount(reference, 64 << 20)
    before = used(reference)
    whole = dlapps("vision", "train", "--runs-dir", reference, "--name", "r", *SETTINGS)
    assert whole.exit_code == 0, whole.stderr
    footprint = used(reference) - before
    fractions = [i / (POINTS - 1) for i in range(POINTS)]
    sizes = sorted({max(PAGE, int(footprint * fraction) // PAGE * PAGE) for fraction in fractions})
    report = {
        "footprint": footprint,
        "runs": [train_until_full_then_resume(work / f"disk-{i}", size) for i, size in enumerate(sizes)],
    }
    mount(work / "roomy", 64 << 20)
    finished = dlapps("vision", "train", "--runs-dir", work / "roomy", "--name", "r", *SETTINGS)
    assert finished.exit_code == 0, finished.stderr
    remount(work / "roomy", used(work / "roomy") + 16 * PAGE)  # a little room, which the filler then takes
    report["full"] = evaluate_and_export_on_a_full_disk(work / "roomy")
    out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
