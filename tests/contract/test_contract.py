"""The domain contract, checked for every registered domain and task (pipelines/domains.py).

A task registered with one line gets these tests without writing one: its smallest config
(``example_settings`` on ``example_data``) trains through the CLI, the run directory is complete,
evaluate repeats the metrics and refuses other data, ``predict`` (or ``sample``) answers its
``example_inputs``, the SavedModel answers the task's own ``serving_example`` in a fresh process
that imports only TensorFlow, a shared set of bad inputs gives exit code 2 and one line, and
``--help`` imports no TensorFlow.
"""

import base64
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from pipelines.domains import DOMAINS, tasks
from tests.helpers import REPO, assert_one_line_error, dlapps, event_scalars, event_tags
from tests.serving.browser import chromium
from tests.serving.server import Server

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


@pytest.fixture(scope="session")
def run_of_task(tmp_path_factory):
    """(pipeline, run directory, train's CLI result) of a task's smallest run, trained once when first asked."""
    made = {}

    def run_of(domain: str, task: str):
        if (domain, task) not in made:
            pipeline = pipeline_of(domain, task)
            folder = tmp_path_factory.mktemp(f"{domain}-{task}")
            (folder / "data").mkdir()
            args = [*task_args(domain, task), "--runs-dir", folder / "runs", "--name", "r"]
            result = dlapps(domain, "train", *args, *train_args(pipeline, folder / "data"))
            assert result.exit_code == 0, result.output + result.stderr
            made[domain, task] = pipeline, folder / "runs" / domain / "r", result
        return made[domain, task]

    return run_of


@pytest.fixture(scope="session", params=TASKS, ids=IDS)
def trained(request, run_of_task):
    return run_of_task(*request.param)


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


@pytest.mark.parametrize("domain, task", TASKS, ids=IDS)
def test_the_smallest_config_trains_and_evaluates_under_mixed_precision(domain, task, tmp_path):
    """``train.mixed_precision=true``: float16 inside, and every figure and output a user sees still computed."""
    pipeline = pipeline_of(domain, task)
    (tmp_path / "data").mkdir()
    args = [*task_args(domain, task), "--runs-dir", tmp_path / "runs", "--name", "r"]
    mixed = ["--set", "train.mixed_precision=true"]
    result = dlapps(domain, "train", *args, *train_args(pipeline, tmp_path / "data"), *mixed)
    assert result.exit_code == 0, result.output + result.stderr
    assert (tmp_path / "runs" / domain / "r" / "metrics.json").is_file()


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


@pytest.fixture(scope="module")
def served(run_of_task, tmp_path_factory):
    """One `dlapps serve` of every task's run (each exported by serve itself if it has no export yet)."""
    runs = {f"{domain}-{task}": run_of_task(domain, task) for domain, task in TASKS}
    server = Server([f"{name}={run}" for name, (_, run, _) in runs.items()], tmp_path_factory.mktemp("serve") / "log")
    yield server, runs
    server.stop()


def example_of(pipeline, run) -> dict:
    from pipelines.core import config as cfg

    config = cfg.load_yaml(run / "config.yaml", pipeline.config_class)
    return pipeline.serving_example(json.loads((run / "run.json").read_text()), config)


def as_json(array: np.ndarray) -> list:
    """TF Serving's JSON for a tensor: strings as {"b64": ...}, numbers as they are."""
    if array.dtype == object or array.dtype.kind in "SU":
        raw = [v.encode() if isinstance(v, str) else bytes(v) for v in array.ravel()]
        coded = np.array([{"b64": base64.b64encode(v).decode()} for v in raw], dtype=object)
        return coded.reshape(array.shape).tolist()
    return array.tolist()


def test_dlapps_serve_answers_each_example_as_the_saved_model_does(served):
    import tensorflow as tf

    server, runs = served
    for name, (pipeline, run, _) in runs.items():
        example = example_of(pipeline, run)
        request = {"inputs": {k: as_json(v) for k, v in example.items()}}
        status, answer = server.call(f"/v1/models/{name}:predict", request)
        assert status == 200, (name, answer)
        serve = tf.saved_model.load(str(run / "export" / "saved_model")).signatures["serving_default"]
        direct = {k: v.numpy() for k, v in serve(**{k: tf.constant(v) for k, v in example.items()}).items()}
        outputs = answer["outputs"] if len(direct) > 1 else {next(iter(direct)): answer["outputs"]}
        for key, expected in direct.items():
            got = outputs[key]
            if expected.dtype == object:
                expected = [v.decode() for v in expected.ravel()]
                assert [base64.b64decode(g["b64"]).decode() if isinstance(g, dict) else g for g in got] == expected
            else:
                atol = 1 if expected.dtype == np.uint8 else 1e-5
                np.testing.assert_allclose(np.array(got), expected, rtol=1e-4, atol=atol)


def fill_in(card, example: dict, folder) -> None:
    """Each of the card's inputs given the example's first value (a WAV of a tone where it has none)."""
    from selenium.webdriver.common.by import By

    from tests.helpers import tone, wav_bytes

    for field in card.find_elements(By.CSS_SELECTOR, "[data-input]"):
        name = field.get_attribute("data-input")
        value = example[name][0] if name in example else None
        if field.get_attribute("type") == "file":
            path = folder / (f"{name}.png" if "image" in field.get_attribute("accept") else f"{name}.wav")
            path.write_bytes(value if value is not None else wav_bytes(tone(440, 8000, 1.0), 8000))
            field.send_keys(str(path))
        elif field.tag_name == "textarea":
            lines = [" ".join(map(str, value))] if np.ndim(value) == 1 else [str(v) for v in example[name]]
            field.send_keys("\n".join(v.decode() if isinstance(v, bytes) else v for v in lines))
        else:
            field.clear()
            field.send_keys(str(value.decode() if isinstance(value, bytes) else value))


def answered(driver, card, times: int = 1) -> str:
    """The card's answer once the page has shown ``times`` answers (or an error)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    box = card.find_element(By.CSS_SELECTOR, ".answer")
    WebDriverWait(driver, 60).until(
        lambda _: box.get_attribute("data-done") == str(times) or box.find_elements(By.CSS_SELECTOR, ".error")
    )
    assert not box.find_elements(By.CSS_SELECTOR, ".error"), box.text
    return box.text


def test_every_task_has_a_demo_page_that_answers_in_a_real_browser(served, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server, runs = served
    driver = chromium()
    try:
        driver.get(server.url + "/")
        WebDriverWait(driver, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "section.model")) == len(runs))
        for name, (pipeline, run, _) in runs.items():
            card = driver.find_element(By.CSS_SELECTOR, f'section[data-model="{name}"]')
            signature = card.find_element(By.CSS_SELECTOR, ".signature-choice").get_attribute("value")
            example = example_of(pipeline, run)
            fill_in(card, example, tmp_path)
            card.find_element(By.CSS_SELECTOR, "button.run").click()
            text = answered(driver, card)
            # the page shows what the REST API answers for the same first example
            inputs = {k: as_json(v[:1]) for k, v in example.items()} if signature == "serving_default" else None
            if inputs and pipeline.domain != "generative":
                outputs = server.call(f"/v1/models/{name}:predict", {"inputs": inputs})[1]["outputs"]
                for value in outputs.values() if isinstance(outputs, dict) else [outputs]:
                    if isinstance(value[0], str):
                        assert value[0] in text, (name, value[0], text)
            if pipeline.domain == "generative":
                assert len(card.find_elements(By.CSS_SELECTOR, "canvas.generated")) == 8
            if card.find_elements(By.CSS_SELECTOR, "button.record"):  # the fake microphone's beep, recorded
                card.find_element(By.CSS_SELECTOR, "button.record").click()
                assert "recording" in answered(driver, card, times=2)
            driver.execute_script("arguments[0].scrollIntoView()", card)
            assert card.screenshot(str(tmp_path / f"{name}.png"))
            assert (tmp_path / f"{name}.png").stat().st_size > 2000
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not severe, severe
    finally:
        driver.quit()


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
