"""Load the models, then serve them with uvicorn until Ctrl-C or SIGTERM."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import tensorflow as tf
import uvicorn

from apps.serving.app import create_app
from apps.serving.batching import Batcher
from apps.serving.models import Servable
from pipelines.core.errors import UserError


def run_server(
    targets: dict[str, Path], host: str, port: int, max_batch_size: int, max_wait: float, max_body_bytes: int
) -> None:
    log = logging.getLogger("dlapps.serve")
    log.setLevel(logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.propagate = False  # TensorFlow's absl handler on the root logger would print each line again
    servables = {name: loaded(name, path) for name, path in targets.items()}
    batcher = Batcher(max_batch_size, max_wait)
    app = create_app(servables, batcher, max_body_bytes)
    for name, servable in servables.items():
        print(f"{name}: {servable.path} ({', '.join(servable.signatures)})", file=sys.stderr)
    print(f"serving on http://{host}:{port}/v1/models/NAME (Ctrl-C stops)", file=sys.stderr, flush=True)
    try:
        # uvicorn stops on SIGINT and SIGTERM by itself, finishing the requests under way
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
    finally:
        batcher.close()


def loaded(name: str, path: Path) -> Servable:
    try:
        return Servable.load(name, path)
    except (OSError, ValueError, tf.errors.OpError) as err:  # a damaged or foreign SavedModel
        message = getattr(err, "message", None) or str(err)
        raise UserError(
            f"cannot load the SavedModel {path}: {message.splitlines()[0][:300]}; export it again"
        ) from None
