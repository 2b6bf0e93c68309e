"""A tune child ends with its parent: the kernel's parent-death signal, set by the child itself."""

import os
import signal
import subprocess
import sys
import time

from apps.lifeline import PARENT_VARIABLE, child_environment

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FOLLOW = "from apps.lifeline import follow_parent; follow_parent(); "
CHILD = FOLLOW + "import time; print('started', flush=True); time.sleep(60)"


def test_a_child_whose_parent_died_before_it_started_stops_at_once():
    environment = {**child_environment(), PARENT_VARIABLE: "1"}  # not its parent: as if the real one had died
    child = subprocess.run([sys.executable, "-c", CHILD], env=environment, cwd=REPO, capture_output=True, timeout=60)
    assert child.returncode == -signal.SIGTERM and b"started" not in child.stdout


def test_a_child_gets_sigterm_when_its_parent_is_killed():
    # the parent: starts the child as tune starts a trial, says its pid, then waits to be killed
    parent_code = (
        "import subprocess, sys, time; from apps.lifeline import child_environment\n"
        f"child = subprocess.Popen([sys.executable, '-c', {CHILD!r}], env=child_environment(),\n"
        "                         stdout=subprocess.PIPE)\n"
        "child.stdout.readline(); print(child.pid, flush=True); time.sleep(60)"
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    child_pid = int(parent.stdout.readline())
    parent.kill()
    parent.wait(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and alive(child_pid):
        time.sleep(0.05)
    assert not alive(child_pid)


def test_the_variable_is_not_passed_on_to_grandchildren():
    code = FOLLOW + "import os; print(os.environ.get('DLAPPS_PARENT_PID'))"
    child = subprocess.run([sys.executable, "-c", code], env=child_environment(), cwd=REPO, capture_output=True)
    assert child.returncode == 0 and child.stdout.strip() == b"None"


def alive(pid: int) -> bool:
    """Running, not a zombie (a killed child of a dead parent is reaped by init, but may linger a moment)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
