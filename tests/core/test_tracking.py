"""Tracking in MLflow: a real `mlflow server` (SQLite store, loopback, a free port) receives a run's params,
epoch histories, test metrics, status and files; evaluate and export log into the same MLflow run; a server
that does not answer costs one warning, not the run; without MLflow, track.mlflow is one line."""

import json
import logging
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from pipelines.forecast.pipeline import PIPELINE
from tests.helpers import assert_one_line_error, dlapps

SETS = [x for item in PIPELINE.example_settings for x in ("--set", item)]
EPOCHS = next(int(s.split("=")[1]) for s in PIPELINE.example_settings if s.startswith("train.epochs="))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`mlflow server` on 127.0.0.1, stopped at the end (and waited for at most 90 s to come up)."""
    folder = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}"]
    command += ["--artifacts-destination", str(folder / "artifacts"), "--workers", "1"]
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(command, cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"mlflow server did not start: {(folder / 'server.log').read_text()[-2000:]}")
        time.sleep(0.5)
    yield url
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture(scope="module")
def tracked(server, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tracked")
    track = ["--set", f"track.mlflow={server}", "--set", "track.experiment=forecasts"]
    args = [*PIPELINE.example_data(folder), "--runs-dir", folder / "runs", "--name", "r", *SETS, *track]
    result = dlapps("forecast", "train", *args)
    assert result.exit_code == 0, result.output + result.stderr
    return folder / "runs" / "forecast" / "r"


def client(server):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=server)


def test_a_run_logs_its_config_histories_test_metrics_status_and_files(server, tracked):
    info = json.loads((tracked / "run.json").read_text())
    assert info["tracking"] == "ok"
    found = client(server).get_run(info["mlflow_run_id"])
    assert found.info.status == "FINISHED" and found.info.run_name == "r"
    assert found.data.params["train.epochs"] == str(EPOCHS) and found.data.params["track.experiment"] == "forecasts"
    assert found.data.tags["dlapps.status"] == "complete" and found.data.tags["dlapps.domain"] == "forecast"
    assert found.data.tags["dlapps.data_fingerprint"] == info["data_fingerprint"]
    for key in ("loss", "val_loss"):
        history = client(server).get_metric_history(found.info.run_id, key)
        assert [m.step for m in history] == list(range(EPOCHS)), key
    metrics = json.loads((tracked / "metrics.json").read_text())
    assert found.data.metrics["test/model.mase"] == pytest.approx(metrics["model"]["mase"])
    files = {f.path for f in client(server).list_artifacts(found.info.run_id)}
    assert {"config.yaml", "metrics.json", "samples"} <= files
    samples = {f.path for f in client(server).list_artifacts(found.info.run_id, "samples")}
    assert "samples/backtest.png" in samples


def test_evaluate_and_export_log_into_the_same_mlflow_run(server, tracked):
    run_id = json.loads((tracked / "run.json").read_text())["mlflow_run_id"]
    assert dlapps("forecast", "evaluate", tracked).exit_code == 0
    assert dlapps("forecast", "export", tracked, "--format", "saved_model").exit_code == 0
    mlflow = client(server)
    assert len(mlflow.get_metric_history(run_id, "test/model.mase")) == 2  # train's evaluation, then evaluate's
    assert "saved_model/saved_model.pb" in {f.path for f in mlflow.list_artifacts(run_id, "saved_model")}
    experiment = mlflow.get_experiment_by_name("forecasts")
    assert len(mlflow.search_runs([experiment.experiment_id])) == 1


def test_an_interrupted_run_is_killed_in_mlflow_and_resumes_into_the_same_run(server, tmp_path):
    import keras

    from pipelines.core import config as cfg
    from pipelines.core import training

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt  # Ctrl-C after the first epoch was saved and logged

    overrides = [*PIPELINE.data_overrides(PIPELINE.example_data(tmp_path)[1]), *PIPELINE.example_settings]
    config = cfg.apply_overrides(PIPELINE.config_class(), [*overrides, f"track.mlflow={server}"])
    data, model = training.prepare(PIPELINE, config)
    run = training.create_run(PIPELINE, config, tmp_path / "runs", "r")
    with pytest.raises(KeyboardInterrupt):
        training.train(PIPELINE, config, data, model, run, callbacks=(Interrupt(),))
    run_id = run.info()["mlflow_run_id"]
    stopped = client(server).get_run(run_id)
    assert stopped.info.status == "KILLED" and stopped.data.tags["dlapps.status"] == "interrupted"
    run.write_info(status="interrupted")  # as the CLI does on Ctrl-C
    assert dlapps("forecast", "train", "--resume", run.root).exit_code == 0
    assert run.info()["mlflow_run_id"] == run_id
    resumed = client(server).get_run(run_id)
    assert resumed.info.status == "FINISHED" and resumed.data.tags["dlapps.status"] == "complete"
    assert [m.step for m in client(server).get_metric_history(run_id, "loss")] == list(range(EPOCHS))


def test_a_server_that_does_not_answer_is_one_warning_and_the_run_trains_on(tmp_path, caplog):
    nobody = f"http://127.0.0.1:{free_port()}"
    args = [*PIPELINE.example_data(tmp_path), "--runs-dir", tmp_path, "--name", "r", *SETS]
    result = dlapps("forecast", "train", *args, "--set", f"track.mlflow={nobody}")
    assert result.exit_code == 0, result.output + result.stderr
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "training goes on without it" in warnings[0], warnings
    info = json.loads((tmp_path / "forecast" / "r" / "run.json").read_text())
    assert info["status"] == "complete" and info["tracking"].startswith("failed")
    assert (tmp_path / "forecast" / "r" / "model.keras").is_file()


def test_a_local_sqlite_store_needs_no_server_and_folder_stores_are_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the store's artifacts go to ./mlruns beside it
    args = [*PIPELINE.example_data(tmp_path), "--runs-dir", tmp_path, *SETS]
    result = dlapps("forecast", "train", *args, "--name", "r", "--set", "track.mlflow=sqlite:///mlflow.db")
    assert result.exit_code == 0, result.output + result.stderr
    run_id = json.loads((tmp_path / "forecast" / "r" / "run.json").read_text())["mlflow_run_id"]
    assert client("sqlite:///mlflow.db").get_run(run_id).data.tags["dlapps.status"] == "complete"
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    refused = dlapps("forecast", "train", *args, "--name", "f", "--set", "track.mlflow=file:./mlruns")
    assert_one_line_error(refused, "no longer writes folder stores", "sqlite:///mlflow.db")
    assert not (tmp_path / "forecast" / "f").exists()


def test_without_mlflow_the_setting_is_one_line_saying_what_to_install(tmp_path):
    # A fresh process in which `import mlflow` fails, as where it is not installed.
    code = "import sys; sys.modules['mlflow'] = None; from apps.cli import main; main()"
    args = ["forecast", "train", *PIPELINE.example_data(tmp_path), "--runs-dir", str(tmp_path / "runs")]
    args += ["--set", "track.mlflow=http://127.0.0.1:5000"]
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)
    assert_one_line_error(_Result(out), "track.mlflow needs MLflow", "pip install 'dlapps[track]'")
    assert not (tmp_path / "runs").exists()


class _Result:
    """A finished process as assert_one_line_error reads a CLI result."""

    def __init__(self, process):
        self.exit_code, self.output, self.stderr = process.returncode, process.stdout, process.stderr
