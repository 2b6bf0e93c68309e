"""A child process that ends with the process that started it (tune's workers and trials, train's workers),
and stopping children.

The kernel's parent-death signal (PR_SET_PDEATHSIG) is set by the child itself at start-up, not between fork
and exec (``preexec_fn``): that makes Python fork where it would vfork, and a fork beside gRPC's threads (a
tune worker talks to its search over gRPC) can kill the child before it runs, gRPC's poller failing in it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time

PARENT_VARIABLE = "DLAPPS_PARENT_PID"
PR_SET_PDEATHSIG = 1


def child_environment(**variables: str) -> dict[str, str]:
    """The environment for a child that should get SIGTERM when this process dies (see ``follow_parent``)."""
    return {**os.environ, **variables, PARENT_VARIABLE: str(os.getpid())}


def follow_parent() -> None:
    """Started with ``child_environment``: SIGTERM when the parent dies, as if it had sent it (the child stops
    as it would on Ctrl-C, its state kept). The variable is dropped, so this process's own children are not
    tied to its parent."""
    parent = os.environ.pop(PARENT_VARIABLE, None)
    if parent is None:
        return
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the parent stops its children itself
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(parent):  # it died before the line above took effect
        os.kill(os.getpid(), signal.SIGTERM)


def stop_children(children: list[subprocess.Popen], seconds: float) -> None:
    """SIGTERM to the children still running (each stops as on Ctrl-C, its state kept); SIGKILL to those
    not ended ``seconds`` later."""
    for child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + seconds
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(max(0.1, deadline - time.monotonic()))
        if child.poll() is None:
            child.kill()
            child.wait()
