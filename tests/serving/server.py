"""A real `dlapps serve` process on a free loopback port, and a plain HTTP client for it."""

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.helpers import REPO


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """`dlapps serve ARGS` started in a child process; stops (kill) when the test's fixture ends."""

    def __init__(self, args: list, log: Path, ready_within: float = 300):
        self.port = port = free_port()
        self.url, self.log = f"http://127.0.0.1:{port}", log
        with open(log, "w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "apps.cli", "serve", *map(str, args), "--port", str(port)],
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            )
        deadline = time.time() + ready_within  # exporting runs first, then loading them
        while time.time() < deadline and self.process.poll() is None:
            try:
                if self.call("/healthz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"the server did not come up: {log.read_text()[-3000:]}")

    def call(self, path: str, body=None, raw: bytes | None = None, method: str | None = None):
        """(status, JSON answer) of a request; ``body`` as JSON, or ``raw`` bytes as they are."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
