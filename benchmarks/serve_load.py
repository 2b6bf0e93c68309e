"""`dlapps serve` under load: 32 concurrent clients for 60 s on loopback, each posting one PNG per request to the
vision model, against calling the same SavedModel directly in a loop in one process; then 1,000 malformed
requests of 10 kinds interleaved with good ones.

    python benchmarks/serve_load.py [--run runs/vision/<run>] [--clients 32] [--seconds 60]

Without --run it trains `dlapps vision train` (the default digits run) into a temporary folder first.
Prints JSON: requests/s served and direct, their ratio, p50/p99 latency, failures, batching counts, and the
malformed-request tally.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import machine  # noqa: E402
from tests.serving.server import Server  # noqa: E402
from tests.serving.test_serve import bad_requests  # noqa: E402


def trained_run(folder: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "apps.cli", "vision", "train", "--runs-dir", folder, "--name", "digits"],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    return folder / "vision" / "digits"


def a_png(run: Path) -> bytes:
    import tensorflow as tf

    shape = json.loads((run / "run.json").read_text())["input_shape"]
    image = (np.random.default_rng(0).uniform(0, 255, size=shape)).astype(np.uint8)
    return tf.io.encode_png(image).numpy()


def direct_loop(run: Path, png: bytes, seconds: float) -> dict:
    """The SavedModel's serving_default on one PNG, called back to back in this process."""
    import tensorflow as tf

    serve = tf.saved_model.load(str(run / "export" / "saved_model")).signatures["serving_default"]
    batch = tf.constant([png])
    for _ in range(20):  # warm up
        serve(image_bytes=batch)
    latencies, started = [], time.perf_counter()
    while time.perf_counter() - started < seconds:
        t = time.perf_counter()
        serve(image_bytes=batch)["class_id"].numpy()
        latencies.append(time.perf_counter() - t)
    return summary(latencies, time.perf_counter() - started, failures=0)


def summary(latencies: list[float], seconds: float, failures: int) -> dict:
    ms = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "per_second": round(len(latencies) / seconds, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "failures": failures,
    }


def post(connection: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, dict]:
    connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    answer = connection.getresponse()
    return answer.status, json.loads(answer.read())


def load(port: int, png: bytes, clients: int, seconds: float) -> dict:
    """``clients`` threads, each on its own keep-alive connection, posting one PNG per request until time is up."""
    body = json.dumps({"instances": [{"b64": base64.b64encode(png).decode()}]}).encode()
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures = [0] * clients
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(i):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        start.wait()
        while time.perf_counter() < stop_at[0]:
            t = time.perf_counter()
            try:
                status, answer = post(connection, "/v1/models/digits:predict", body)
                ok = status == 200 and len(answer["predictions"]) == 1
            except (OSError, http.client.HTTPException, ValueError):
                ok = False
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            latencies[i].append(time.perf_counter() - t)
            failures[i] += not ok

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + seconds
    started = time.perf_counter()
    start.wait()
    for t in threads:
        t.join()
    return summary([x for each in latencies for x in each], time.perf_counter() - started, sum(failures))


def malformed(port: int, png: bytes, count: int) -> dict:
    """``count`` bad requests of 10 kinds, each followed by a good one: statuses by kind, good answers right."""
    image = base64.b64encode(png).decode()
    good = json.dumps({"instances": [{"b64": image}]}).encode()
    kinds = {k: (p.replace("shapes", "digits"), b) for k, (p, b) in bad_requests(image).items()}
    tally = {kind: {} for kind in kinds}
    good_ok, refused_without_message = 0, 0
    names = list(kinds)
    for i in range(count):
        kind = names[i % len(names)]
        path, body = kinds[kind]
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            status, answer = post(connection, path, body)
        except (OSError, http.client.HTTPException):
            status, answer = "connection closed", {}
        tally[kind][str(status)] = tally[kind].get(str(status), 0) + 1
        refused_without_message += not answer.get("error")
        connection.close()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        status, answer = post(connection, "/v1/models/digits:predict", good)
        good_ok += status == 200 and len(answer["predictions"]) == 1
        connection.close()
    return {"bad": count, "statuses_by_kind": tally, "bad_without_message": refused_without_message, "good_ok": good_ok}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--malformed", type=int, default=1000)
    parser.add_argument("--batch-wait-ms", default="2")
    parser.add_argument("--max-batch-size", default="32", help="1: batching off")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="serve-load-"))
    run = args.run or trained_run(folder)
    if args.run is None or not (run / "export" / "saved_model").is_dir():
        export = [sys.executable, "-m", "apps.cli", "vision", "export", run]
        subprocess.run(export, cwd=REPO, check=True, capture_output=True)
    png = a_png(run)
    direct = direct_loop(run, png, args.seconds)
    batching = ["--batch-wait-ms", args.batch_wait_ms, "--max-batch-size", args.max_batch_size]
    options = [*batching, "--max-body-mb", "1"]  # 1 MB: the huge body (2 MB) is a 413
    server = Server([f"digits={run}", *options], folder / "server.log")
    try:
        served = load(server.port, png, args.clients, args.seconds)
        health = server.call("/healthz")[1]
        bad = malformed(server.port, png, args.malformed)
        still_serving = server.call("/healthz")[0] == 200
    finally:
        server.process.send_signal(signal.SIGINT)
        server.process.wait(60)
    print(
        json.dumps(
            {
                "machine": machine(),
                "clients": args.clients,
                "max_batch_size": int(args.max_batch_size),
                "seconds": args.seconds,
                "direct_loop": direct,
                "served": served,
                "served_over_direct": round(served["per_second"] / direct["per_second"], 2),
                "p99_over_p50": round(served["p99_ms"] / served["p50_ms"], 1),
                "batching": {k: health[k] for k in ("requests", "model_calls", "largest_batch")},
                "malformed": bad,
                "still_serving": still_serving,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
