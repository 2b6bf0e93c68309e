"""Experiment tracking in MLflow: one dlapps run is one MLflow run, logged with no user code.

With ``track.mlflow`` set (a tracking server ``http://host:port``, or a local store ``sqlite:///mlflow.db``) a run
logs its flattened config as params; the data source and fingerprint, domain, task and run directory as
tags; every epoch's training and validation values as metric histories (step = epoch); the test metrics;
config.yaml, metrics.json, samples/ and, after ``export``, the SavedModel as artifacts; and its status as the
tag ``dlapps.status`` (and the MLflow run status). run.json keeps the MLflow run id, so ``--resume``,
``evaluate`` and ``export`` log into the same MLflow run.

Tracking never costs a training run: the first failure (a server that does not answer, a full store) is one
warning, run.json records it under ``tracking``, and the run goes on without tracking.
"""

from __future__ import annotations

import dataclasses
import logging
import numbers
import os
import time
from pathlib import Path
from typing import Any

import keras

from pipelines.core.config import flatten, to_dict
from pipelines.core.errors import UserError
from pipelines.core.rundir import RunDir

log = logging.getLogger(__name__)
INSTALL = "pip install 'dlapps[track]' (or: pip install mlflow)"
# MLflow's own defaults retry an unreachable server for minutes; a user's environment still decides.
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}
MLFLOW_STATUS = {"complete": "FINISHED", "interrupted": "KILLED", "failed": "FAILED", "diverged": "FAILED"}
PARAMS_PER_CALL, METRICS_PER_CALL = 100, 1000  # MLflow's log_batch limits
PARAM_LENGTH = 6000


@dataclasses.dataclass
class TrackConfig:
    mlflow: str | None = None  # tracking URI: http://HOST:PORT (a server), sqlite:///mlflow.db (a local store); off
    experiment: str | None = None  # the MLflow experiment (None: the domain's name)


def mlflow_module():
    """MLflow, or one line saying how to get it."""
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)  # its retry lines would bury our warning
    try:
        import mlflow
    except ImportError:
        raise UserError(f"track.mlflow needs MLflow, which is not installed: {INSTALL}") from None
    return mlflow


def check(track: TrackConfig) -> None:
    """Settings checked before any data is read: MLflow importable, a URI it knows."""
    if track.mlflow is None:
        return
    mlflow_module()
    if not track.mlflow.startswith(("http://", "https://", "file:", "sqlite:", "databricks")):
        raise UserError(
            f"track.mlflow '{track.mlflow}' is not a tracking URI; give http://HOST:PORT (an MLflow server) "
            "or sqlite:///mlflow.db (a local store)"
        )
    if track.mlflow.startswith("file:") and os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() != "true":
        raise UserError(
            f"track.mlflow {track.mlflow}: MLflow 3 no longer writes folder stores; use a local database, "
            "--set track.mlflow=sqlite:///mlflow.db (or set MLFLOW_ALLOW_FILE_STORE=true)"
        )


class Tracker:
    """Logs one dlapps run into one MLflow run; after the first failure every call does nothing."""

    def __init__(self, run: RunDir, track: TrackConfig, domain: str):
        self.run, self.track, self.domain = run, track, domain
        self.enabled = track.mlflow is not None  # until the first failure
        self.client = None
        self.run_id = run.info().get("mlflow_run_id")
        self._safely("connect", self._connect)

    def _connect(self) -> None:
        self.client = mlflow_module().tracking.MlflowClient(tracking_uri=self.track.mlflow)
        if self.run_id is None:
            name = self.track.experiment or self.domain
            found = self.client.get_experiment_by_name(name)
            experiment = found.experiment_id if found else self.client.create_experiment(name)
            created = self.client.create_run(experiment, run_name=self.run.root.name)
            self.run_id = created.info.run_id
            self.run.write_info(mlflow_run_id=self.run_id, mlflow_uri=self.track.mlflow, tracking="ok")

    def _safely(self, what: str, call, *args) -> None:
        if not self.enabled:
            return
        try:
            call(*args)
        except Exception as err:  # any failure of the store or the network: warn once, train on
            first = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
            log.warning(
                "MLflow tracking at %s failed (%s: %s); training goes on without it", self.track.mlflow, what, first
            )
            self.enabled = False
            self.run.write_info(tracking=f"failed while logging {what}: {first}")

    # --- what a run logs ---------------------------------------------------------------------------

    def start(self, config: Any, task: str, data_source: str, fingerprint: str) -> None:
        """The config as params, what was trained on as tags; the MLflow run marked running."""
        self._safely("params", self._start, config, task, data_source, fingerprint)

    def _start(self, config, task, data_source, fingerprint) -> None:
        from mlflow.entities import Param, RunTag

        params = [Param(k, _param_text(v)) for k, v in flatten(to_dict(config)).items()]
        logged = self.client.get_run(self.run_id).data.params
        params = [p for p in params if p.key not in logged]  # a resumed run: the params are there already
        tags = {
            "dlapps.domain": self.domain,
            "dlapps.task": task,
            "dlapps.run_dir": str(self.run.root.resolve()),
            "dlapps.data_source": data_source,
            "dlapps.data_fingerprint": fingerprint,
            "dlapps.status": "training",
        }
        for k in range(0, len(params), PARAMS_PER_CALL):
            self.client.log_batch(self.run_id, params=params[k : k + PARAMS_PER_CALL])
        self.client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        self.client.update_run(self.run_id, status="RUNNING")

    def log_epoch(self, epoch: int, logs: dict) -> None:
        values = {k: float(v) for k, v in (logs or {}).items() if _is_number(v)}
        self._safely("epoch metrics", self._metrics, values, epoch)

    def log_evaluation(self, metrics: dict, step: int) -> None:
        """The test metrics (every number in metrics.json, as ``test/<key>``) and the run's files."""
        values = {f"test/{k}": float(v) for k, v in flatten(metrics).items() if _is_number(v)}
        self._safely("test metrics", self._metrics, values, step)
        self._safely("artifacts", self._files)

    def log_export(self, path: Path) -> None:
        """The SavedModel folder (as ``saved_model/``) or the TFLite file."""
        if path.is_dir():
            self._safely("the export", lambda: self.client.log_artifacts(self.run_id, str(path), path.name))
        else:
            self._safely("the export", lambda: self.client.log_artifact(self.run_id, str(path)))

    def finish(self, status: str) -> None:
        """``status``: complete, interrupted or failed (run.json's word; MLflow's FINISHED, KILLED, FAILED)."""
        self._safely("the status", self._finish, status)

    def _finish(self, status: str) -> None:
        self.client.set_tag(self.run_id, "dlapps.status", status)
        self.client.set_terminated(self.run_id, status=MLFLOW_STATUS[status])

    def _metrics(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        found = [Metric(_metric_key(k), v, now, step) for k, v in values.items()]
        for k in range(0, len(found), METRICS_PER_CALL):
            self.client.log_batch(self.run_id, metrics=found[k : k + METRICS_PER_CALL])

    def _files(self) -> None:
        for path in (self.run.config, self.run.metrics):
            if path.is_file():
                self.client.log_artifact(self.run_id, str(path))
        if any(self.run.samples.iterdir()):
            self.client.log_artifacts(self.run_id, str(self.run.samples), "samples")

    def callback(self) -> keras.callbacks.Callback:
        return EpochMetrics(self)


class EpochMetrics(keras.callbacks.Callback):
    """Every epoch's logs (loss, val_loss, the domain's metrics) as MLflow metric histories, step = epoch."""

    def __init__(self, tracker: Tracker):
        super().__init__()
        self.tracker = tracker

    def on_epoch_end(self, epoch, logs=None):
        self.tracker.log_epoch(epoch, logs)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _param_text(value) -> str:
    return str(value)[:PARAM_LENGTH]


def _metric_key(key: str) -> str:
    """MLflow keys hold letters, digits, ``_-./`` and spaces; anything else becomes ``_``."""
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in key)
