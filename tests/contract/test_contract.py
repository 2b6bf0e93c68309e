"""The domain contract, checked for every registered domain and task (pipelines/domains.py).

A task registered with one line gets these tests without writing one: its smallest config
(``example_settings`` on ``example_data``) trains through the CLI, the run directory is complete,
evaluate repeats the metrics and refuses other data, ``predict`` (or ``sample``) answers its
``example_inputs``, the SavedModel answers the task's own ``serving_example`` in a fresh process
that imports only TensorFlow, a shared set of bad inputs gives exit code 2 and one line, and
``--help`` imports no TensorFlow.
"""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from pipelines.domains import DOMAINS, tasks
from tests.helpers import REPO, assert_one_line_error, dlapps, event_scalars, event_tags

TASKS = tasks()
IDS = [f"{domain}-{task}" for domain, task in TASKS]


def pipeline_of(domain: str, task: str):
    import importlib

    return importlib.import_module(DOMAINS[domain].tasks[task]).PIPELINE


def task_args(domain: str, task: str) -> list[str]:
    return ["--task", task] if len(DOMAINS[domain].tasks) > 1 else []


def train_args(pipeline, folder) -> list[str]:
    """`train` arguments of the task's smallest real run: its example data and settings."""
    sets = [x for item in pipeline.example_settings for x in ("--set", item)]
    return [*pipeline.example_data(folder), *sets]


@pytest.fixture(scope="session", params=TASKS, ids=IDS)
def trained(request, tmp_path_factory):
    domain, task = request.param
    pipeline = pipeline_of(domain, task)
    folder = tmp_path_factory.mktemp(f"{domain}-{task}")
    (folder / "data").mkdir()
    args = train_args(pipeline, folder / "data")
    result = dlapps(domain, "train", *task_args(domain, task), "--runs-dir", folder / "runs", "--name", "r", *args)
    assert result.exit_code == 0, result.output + result.stderr
    return pipeline, folder / "runs" / domain / "r", result


def test_the_smallest_config_trains_and_fills_the_run_directory(trained):
    pipeline, run, result = trained
    for name in (
        "config.yaml",
        "run.json",
        "model.keras",
        "metrics.json",
        "checkpoints/best.keras",
        *pipeline.run_files,
    ):
        assert (run / name).is_file(), name
    assert not (run / "checkpoints" / "backup").exists()  # resume state goes once training completes
    info = json.loads((run / "run.json").read_text())
    assert info["domain"] == pipeline.domain and info["status"] == "complete" and info["data_fingerprint"]
    for split in ("train", "validation"):  # Keras' per-epoch scalars: a loss at least (a GAN has two)
        assert any(tag.endswith("loss") for tag in event_tags(run / "logs" / split)["scalars"]), split
    assert "_hparams_/session_start_info" in event_tags(run / "logs")["hparams"]
    assert event_tags(run / "logs" / "eval"), "no test-split summaries in logs/eval"
    assert f"Test split: {pipeline.headline(json.loads((run / 'metrics.json').read_text()))}" in result.output
    assert f"dlapps {pipeline.domain} evaluate {run}" in result.output
    assert "Traceback" not in result.output + result.stderr


def test_the_task_is_registered_under_its_own_names():
    for domain, task in TASKS:
        pipeline = pipeline_of(domain, task)
        assert (pipeline.domain, pipeline.task) == (domain, task)


def test_the_best_monitored_value_is_the_best_in_its_declared_direction(trained):
    import yaml

    from pipelines.core import config as cfg

    pipeline, run, _ = trained
    config = cfg.from_dict(pipeline.config_class, yaml.safe_load((run / "config.yaml").read_text()))
    monitor = config.train.monitor
    split, name = ("validation", monitor[4:]) if monitor.startswith("val_") else ("train", monitor)
    values = event_scalars(run / "logs" / split, f"epoch_{name}")
    assert len(values) == json.loads((run / "run.json").read_text())["epochs_done"], values
    best = min(values) if pipeline.monitor_mode(config) == "min" else max(values)
    assert json.loads((run / "run.json").read_text())[f"best_{monitor}"] == pytest.approx(best, rel=1e-5)


def test_evaluate_repeats_the_metrics(trained):
    pipeline, run, _ = trained
    before = json.loads((run / "metrics.json").read_text())
    result = dlapps(pipeline.domain, "evaluate", run)
    assert result.exit_code == 0, result.output + result.stderr
    assert json.loads((run / "metrics.json").read_text()) == before
    assert pipeline.headline(before) in result.output


def test_the_trained_model_answers_its_example_inputs(trained, tmp_path):
    pipeline, run, _ = trained
    inputs = pipeline.example_inputs(tmp_path)
    result = dlapps(pipeline.domain, DOMAINS[pipeline.domain].verb, run, *inputs)
    assert result.exit_code == 0, result.output + result.stderr
    lines = result.output.strip().splitlines()
    assert lines and "Traceback" not in result.output + result.stderr
    if DOMAINS[pipeline.domain].verb == "predict" and not inputs[0].endswith(".csv"):
        assert len(lines) == len(inputs)  # one line per input (a table file: one per row, under a header)


def test_evaluate_refuses_other_data(trained, tmp_path):
    import shutil

    pipeline, run, _ = trained
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    info = json.loads((copy / "run.json").read_text())
    (copy / "run.json").write_text(json.dumps({**info, "data_fingerprint": "0" * 64}))
    assert_one_line_error(dlapps(pipeline.domain, "evaluate", copy), "has changed since", "train a new run")


def test_the_saved_model_answers_its_example_in_a_fresh_process_with_only_tensorflow(trained, tmp_path):
    import yaml

    from pipelines.core import config as cfg

    pipeline, run, _ = trained
    result = dlapps(pipeline.domain, "export", run, "--format", "saved_model")
    assert result.exit_code == 0, result.output + result.stderr
    config = cfg.from_dict(pipeline.config_class, yaml.safe_load((run / "config.yaml").read_text()))
    example = pipeline.serving_example(json.loads((run / "run.json").read_text()), config)
    # Text as bytes: np.load needs no pickling for them
    np.savez(tmp_path / "example.npz", **{k: v.astype(bytes) if v.dtype == object else v for k, v in example.items()})
    client = textwrap.dedent(f"""
        import json, sys
        import numpy as np, tensorflow as tf
        serve = tf.saved_model.load({str(run / "export" / "saved_model")!r}).signatures["serving_default"]
        example = np.load({str(tmp_path / "example.npz")!r})
        out = serve(**{{name: tf.constant(example[name]) for name in example.files}})
        numbers = [v.numpy() for v in out.values() if v.dtype.is_floating]
        assert all(np.isfinite(n).all() for n in numbers), "outputs not finite"
        ours = any(m.split(".")[0] in ("pipelines", "apps") for m in sys.modules)
        print("ANSWER", json.dumps([ours, {{k: [v.dtype.name, v.shape.as_list()] for k, v in out.items()}}]))
    """)
    out = subprocess.run([sys.executable, "-c", client], capture_output=True, text=True, cwd="/", timeout=300)
    assert out.returncode == 0, out.stderr
    ours, outputs = json.loads(out.stdout.split("ANSWER ", 1)[1])
    assert outputs and all(shape[:1] == [2] for _, shape in outputs.values()), outputs  # the example is a batch of 2
    assert not ours  # nothing of ours was imported


BAD_TRAINING = {
    "an unknown key": (["--set", "train.epochz=3"], ["unknown config key 'train.epochz'"]),
    "a value of the wrong type": (["--set", "train.epochs=many"], ["train.epochs", "expects int"]),
    "an unknown model": (["--set", "model.name=nosuch"], ["'nosuch'"]),
    "a monitor nothing logs": (["--set", "train.monitor=val_nosuch"], ["train.monitor 'val_nosuch'"]),
    "a missing data path": (["--data", "{tmp}/absent"], ["absent"]),
    "a missing config file": (["--config", "{tmp}/absent.yaml"], ["config file not found"]),
}


@pytest.mark.parametrize("case", list(BAD_TRAINING))
@pytest.mark.parametrize("domain, task", TASKS, ids=IDS)
def test_bad_training_input_is_one_line_and_leaves_no_run(domain, task, case, tmp_path):
    args, fragments = BAD_TRAINING[case]
    args = [a.format(tmp=tmp_path) for a in args]
    result = dlapps(domain, "train", *task_args(domain, task), "--runs-dir", tmp_path / "runs", *args)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("domain", list(DOMAINS))
def test_every_verb_names_a_missing_or_foreign_run_in_one_line(domain, tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "run.json").write_text(json.dumps({"domain": "elsewhere"}))
    for verb in ("evaluate", DOMAINS[domain].verb, "export"):
        extra = ["input"] if verb == "predict" else []
        assert_one_line_error(dlapps(domain, verb, tmp_path / "no-run", *extra), "run directory not found", "no-run")
        assert_one_line_error(dlapps(domain, verb, foreign, *extra), "is a elsewhere run", "dlapps elsewhere")


def test_help_imports_no_tensorflow():
    commands = [[], *([domain, *verb] for domain in DOMAINS for verb in ([], ["train"]))]
    code = textwrap.dedent(f"""
        import sys
        from apps.cli import main
        for args in {commands!r}:
            try:
                main([*args, "--help"])
            except SystemExit as stop:
                assert stop.code == 0, (args, stop.code)
        assert "tensorflow" not in sys.modules
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    for domain in DOMAINS:
        assert domain in out.stdout
