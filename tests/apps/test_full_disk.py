"""A full disk at any step of train, evaluate or export: one line naming where and what to do, exit 2, nothing
lost; with space again the run resumes and ends as if the disk had never filled (tests/apps/full_disk.py does
it on real tmpfs file systems of growing size, in a mount namespace of its own)."""

import json
import subprocess
import sys

import pytest

from tests.helpers import REPO


def can_mount_tmpfs() -> bool:
    probe = subprocess.run(["unshare", "-rm", "mount", "-t", "tmpfs", "tmpfs", "/mnt"], capture_output=True)
    return probe.returncode == 0


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    if not can_mount_tmpfs():
        pytest.skip("this machine allows no private tmpfs mounts (unshare -rm): no small disk to fill")
    folder = tmp_path_factory.mktemp("full-disk")
    out = folder / "report.json"
    done = subprocess.run(
        ["unshare", "-rm", sys.executable, "-m", "tests.apps.full_disk", folder / "work", out],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


def one_line_about_space(outcome: dict) -> str:
    assert outcome["exit"] == 2, outcome
    assert "Traceback" not in outcome["stderr"] + outcome["output"]
    line = outcome["stderr"].strip().splitlines()[-1]  # after "run directory: ..." when a run had begun
    assert line.startswith("error: no space left on the device (") and "free some space" in line, line
    return line


def test_training_that_fills_the_disk_stops_in_one_line_and_resumes(report):
    assert len(report["runs"]) >= 5
    for run in report["runs"]:
        first, left = run["first"], run["left"]
        if first["exit"] == 0:
            assert left["status"] == "complete"
            continue
        line = one_line_about_space(first)
        if left.get("status"):  # the run had begun: its resume state is kept, the line says how to continue
            # "training" where the disk had no room even for the new status: --resume understands both
            assert left["status"] in ("interrupted", "training"), run
            assert "--resume" in line and "/vision/r" in line, line
        else:  # full before the run had its config: nothing half-made is left
            assert not left["exists"], run
        assert run["second"]["exit"] == 0, run["second"]["stderr"][-2000:]
        assert run["final"]["status"] == "complete"
        assert run["final"]["iterations"] == 9, run  # 3 epochs of 3 steps, each once: none lost, none repeated
    assert sum(run["first"]["exit"] == 2 for run in report["runs"]) >= 4  # the disk filled at many steps


def test_evaluate_and_export_on_a_full_disk_refuse_in_one_line_and_keep_the_run(report):
    full = report["full"]
    assert "/vision/r" in one_line_about_space(full["evaluate"])
    assert full["metrics_kept"]
    assert "/vision/r/export" in one_line_about_space(full["export"])
    assert full["staging_left"] == []  # the half-written export's space is given back
    assert full["export_with_room"]["exit"] == 0 and full["saved_model"]
