"""`dlapps nlp ... --task translate` end to end through the CLI on a generated pair file."""

import json
import subprocess
import sys
import textwrap

import pytest

from pipelines.nlp.translation import PIPELINE as TRANSLATION
from tests.helpers import (
    assert_one_line_error,
    dlapps,
    event_tags,
    killed_then_resumed,
    optimizer_steps,
    toy_pairs,
    write_pairs,
)

FAST = list(TRANSLATION.example_settings)
SETS = [x for item in FAST for x in ("--set", item)]
TEXTS = ["One two three.", "Eight?", "", "zebra quantum ünïcödé"]


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("pairs") / "hin.txt"
    write_pairs(path, 120)  # with Tatoeba's third column, the attribution
    return path


@pytest.fixture(scope="module")
def translate_run(pairs_file, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    result = dlapps(
        "nlp", "train", "--task", "translate", "--data", pairs_file, "--runs-dir", runs, "--name", "t", *SETS
    )
    assert result.exit_code == 0, result.output + result.stderr
    return runs / "nlp" / "t", result


def test_train_fills_the_run_directory(translate_run):
    run, result = translate_run
    assert "task: translate" in (run / "config.yaml").read_text()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["pairs"] == 12 and metrics["decoding"] == "beam 4"
    assert {"bleu", "chrf", "greedy", "test_loss", "test_token_accuracy"} <= set(metrics)
    assert 0 <= metrics["chrf"] <= 100 and 0 <= metrics["greedy"]["bleu"] <= 100
    lines = (run / "samples" / "translations.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "source\treference\ttranslation" and len(lines) == 13
    sources, targets = toy_pairs(120)
    assert all(line.split("\t")[1] == dict(zip(sources, targets))[line.split("\t")[0]] for line in lines[1:])
    assert "BLEU" in result.output and "chrF" in result.output and "Traceback" not in result.stderr
    assert "evaluation/translations" in event_tags(run / "logs" / "eval")["text"]
    assert {"evaluation/bleu", "evaluation/chrf"} <= event_tags(run / "logs" / "eval")["scalars"]
    assert "translations/validation" in event_tags(run / "logs" / "validation")["text"]
    # The curves: token accuracy in training and validation, validation BLEU and chrF each epoch.
    assert {"epoch_chrf", "epoch_bleu", "epoch_token_accuracy"} <= event_tags(run / "logs" / "validation")["scalars"]
    assert "epoch_token_accuracy" in event_tags(run / "logs" / "train")["scalars"]


def test_predict_and_the_exported_model_agree_in_a_fresh_process(translate_run):
    run, _ = translate_run
    result = dlapps("nlp", "predict", run, "--", *TEXTS)
    assert result.exit_code == 0, result.stderr
    lines = result.output.rstrip("\n").split("\n")
    assert [line.split("\t")[0] for line in lines] == TEXTS
    translated = [line.split("\t")[1] for line in lines]
    assert dlapps("nlp", "export", run, "--format", "saved_model").exit_code == 0
    client = textwrap.dedent(f"""
        import sys, json, tensorflow as tf
        model = tf.saved_model.load({str(run / "export" / "saved_model")!r})
        out = {{name: [t.decode() for t in model.signatures[name](text=tf.constant({TEXTS!r}))["translation"].numpy()]
               for name in ("serving_default", "greedy", "beam")}}
        print(json.dumps(out))
        print(any(m.split(".")[0] in ("pipelines", "apps") for m in sys.modules), file=sys.stderr)
    """)
    out = subprocess.run([sys.executable, "-c", client], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0, out.stderr
    served = json.loads(out.stdout)
    assert served["serving_default"] == translated == served["beam"]  # beam 4, as configured
    assert len(served["greedy"]) == len(TEXTS)
    assert out.stderr.strip().splitlines()[-1] == "False"  # nothing of ours was imported


def test_evaluate_rewrites_the_same_figures(translate_run):
    run, _ = translate_run
    before = json.loads((run / "metrics.json").read_text())
    result = dlapps("nlp", "evaluate", run)
    assert result.exit_code == 0, result.stderr
    after = json.loads((run / "metrics.json").read_text())
    assert (after["bleu"], after["chrf"], after["greedy"]) == (before["bleu"], before["chrf"], before["greedy"])


def test_the_lstm_trains_and_a_config_file_keeps_the_task(pairs_file, translate_run, tmp_path):
    run, _ = translate_run
    result = dlapps(
        "nlp",
        "train",
        "--config",
        run / "config.yaml",
        "--runs-dir",
        tmp_path,
        "--name",
        "l",
        "--set",
        "model.name=lstm",
        "--set",
        "train.epochs=1",
        "--set",
        "eval.beam_size=2",
    )
    assert result.exit_code == 0, result.stderr
    metrics = json.loads((tmp_path / "nlp" / "l" / "metrics.json").read_text())
    assert metrics["decoding"] == "beam 2" and "chrf" in metrics


@pytest.mark.parametrize(
    "content, fragments",
    [
        ("one\tएक\ntwo एक\n" + "three\tतीन\n" * 10, ["line 2", "tab"]),
        ("one\tएक\ntwo\t \n" + "three\tतीन\n" * 10, ["line 2", "target sentence is empty"]),
        ("one\tएक\n" * 9, ["9 sentence pair(s)"]),
    ],
)
def test_bad_pair_files_fail_in_one_line_without_a_run(tmp_path, content, fragments):
    path = tmp_path / "pairs.tsv"
    path.write_text(content, encoding="utf-8")
    result = dlapps("nlp", "train", "--task", "translate", "--data", path, "--runs-dir", tmp_path / "runs", *SETS)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "runs").exists()


def test_unknown_task_and_task_in_set_are_refused(pairs_file, tmp_path):
    assert_one_line_error(
        dlapps("nlp", "train", "--task", "summarise", "--data", pairs_file, "--runs-dir", tmp_path),
        "no task 'summarise'",
        "classify, translate",
    )
    assert_one_line_error(
        dlapps("nlp", "train", "--data", pairs_file, "--set", "task=translate", "--runs-dir", tmp_path), "--task"
    )
    assert not (tmp_path / "nlp").exists()


def test_a_translator_resumes_after_a_kill(pairs_file, tmp_path):
    """The task comes back from the run's config.yaml; the optimizer continues from the last finished epoch."""
    run = tmp_path / "nlp" / "t"
    epochs, steps = 5, 3
    settings = [*FAST, f"train.epochs={epochs}", f"train.steps_per_epoch={steps}"]
    second = killed_then_resumed(
        run,
        "nlp",
        "train",
        "--task",
        "translate",
        "--data",
        pairs_file,
        "--runs-dir",
        tmp_path,
        "--name",
        "t",
        *[x for s in settings for x in ("--set", s)],
    )
    assert second.returncode == 0, second.stderr
    assert "Epoch 1/" not in second.stdout + second.stderr and "BLEU" in second.stdout
    assert optimizer_steps(run / "model.keras") == {"optimizer": epochs * steps}
