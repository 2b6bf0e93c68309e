"""Every nlp verb end to end through the CLI on a generated label<TAB>text file, a few steps each."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tensorflow as tf

from tests.helpers import NLP_FAST, assert_one_line_error, dlapps, event_tags, messages

SETS = [x for item in NLP_FAST for x in ("--set", item)]
TEXTS = ["Free entry win a prize claim now", "see you at 6 for dinner", "", "ünïcödé ✓"]


def test_train_fills_the_run_directory(nlp_run):
    run, result = nlp_run
    for name in (
        "config.yaml",
        "run.json",
        "model.keras",
        "metrics.json",
        "samples/confusion_matrix.png",
        "samples/pr_curves.png",
        "vocabulary/words_tfidf.txt",
        "vocabulary/chars_tfidf.txt",
        "logs/projector_metadata.tsv",
        "logs/projector_config.pbtxt",
        "logs/checkpoint",
    ):
        assert (run / name).is_file(), name
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "complete" and info["class_names"] == ["ham", "spam"]
    assert info["decision"]["positive"] == 1 and 0 < info["decision"]["threshold"] < 1  # spam, tuned on validation
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["examples"] == 24 and metrics["decision"]["positive"] == "spam"
    assert {"accuracy", "macro_f1", "roc_auc_ovr", "pr_auc", "per_class", "confusion_matrix"} <= set(metrics)
    assert "spam F1" in result.output and "Traceback" not in result.stderr
    assert "class_weight" in (run / "config.yaml").read_text()
    vocabulary = (run / "vocabulary" / "words_tfidf.txt").read_text(encoding="utf-8").splitlines()
    assert "free" in vocabulary and "Free" not in vocabulary  # standardised, adapted on the data
    metadata = (run / "logs" / "projector_metadata.tsv").read_text(encoding="utf-8").splitlines()
    assert "free" in metadata and "[UNK]" not in metadata
    tags = event_tags(run / "logs" / "eval")
    assert "evaluation/misclassified_text" in tags["text"] and "evaluation/per_class_metrics" in tags["text"]
    assert {"evaluation/pr_auc", "evaluation/roc_auc_ovr"} <= tags["scalars"] | tags.get("", set())
    assert {"pr_curve/spam/pr_curves", "pr_curve/ham/pr_curves"} <= tags["pr_curves"]


def test_tensorboard_finds_the_embedding_from_anywhere(nlp_run, tmp_path, monkeypatch):
    """The projector plugin, run from another directory, reads the run's config, checkpoint and tokens."""
    from tensorboard.plugins.projector import projector_plugin

    run, _ = nlp_run
    monkeypatch.chdir(tmp_path)
    plugin = projector_plugin.ProjectorPlugin.__new__(projector_plugin.ProjectorPlugin)
    configs, _ = plugin._read_latest_config_files([("spam", str(run / "logs"))])
    assert list(configs) == ["spam"]
    config = configs["spam"]
    assert Path(config.model_checkpoint_path).parent == run / "logs"
    reader = tf.train.load_checkpoint(config.model_checkpoint_path)
    vectors = reader.get_tensor(config.embeddings[0].tensor_name)
    tokens = (run / "logs" / config.embeddings[0].metadata_path).read_text(encoding="utf-8").splitlines()
    assert vectors.shape == (len(tokens), 8)


def test_predict_and_the_exported_model_agree_in_a_fresh_process(nlp_run):
    run, _ = nlp_run
    result = dlapps("nlp", "predict", run, *TEXTS)
    assert result.exit_code == 0, result.stderr
    lines = result.output.rstrip("\n").split("\n")
    assert [line.split("\t")[0] for line in lines] == TEXTS
    predicted = [line.split("\t")[1] for line in lines]
    assert set(predicted) <= {"ham", "spam"}
    assert dlapps("nlp", "export", run, "--format", "saved_model").exit_code == 0
    client = textwrap.dedent(f"""
        import sys, json, tensorflow as tf
        serve = tf.saved_model.load({str(run / "export" / "saved_model")!r}).signatures["serving_default"]
        out = serve(text=tf.constant({TEXTS!r}))
        assert out["probabilities"].shape == ({len(TEXTS)}, 2)
        print(json.dumps([n.decode() for n in out["class_name"].numpy().tolist()]))
        print(any(m.split(".")[0] in ("pipelines", "apps") for m in sys.modules), file=sys.stderr)
    """)
    out = subprocess.run([sys.executable, "-c", client], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == predicted  # the same tuned threshold in the graph as in predict
    assert out.stderr.strip().splitlines()[-1] == "False"  # nothing of ours was imported


def test_evaluate_rewrites_the_same_metrics(nlp_run):
    run, _ = nlp_run
    before = json.loads((run / "metrics.json").read_text())
    result = dlapps("nlp", "evaluate", run)
    assert result.exit_code == 0, result.stderr
    after = json.loads((run / "metrics.json").read_text())
    assert after["accuracy"] == before["accuracy"] and after["decision"] == before["decision"]


def test_evaluate_refuses_changed_data_and_keeps_the_tuned_threshold(text_table, tmp_path):
    """A re-split file would put training texts into the test split: evaluate says so instead."""
    table = tmp_path / "messages.tsv"
    table.write_bytes(text_table.read_bytes())
    result = dlapps("nlp", "train", "--data", table, "--runs-dir", tmp_path, "--name", "r", *SETS)
    assert result.exit_code == 0, result.stderr
    run = tmp_path / "nlp" / "r"
    decision = json.loads((run / "run.json").read_text())["decision"]
    assert dlapps("nlp", "evaluate", run).exit_code == 0
    assert json.loads((run / "run.json").read_text())["decision"] == decision  # not re-tuned
    lines = table.read_text(encoding="utf-8").splitlines(keepends=True)
    table.write_text("".join(lines[:100]), encoding="utf-8")
    assert_one_line_error(dlapps("nlp", "evaluate", run), "has changed since", "train a new run")
    table.write_text("".join(lines) + "promo\tbuy now\n" * 5, encoding="utf-8")
    assert_one_line_error(dlapps("nlp", "evaluate", run), "class names", "promo")


def test_resume_refuses_changed_data(text_table, tmp_path):
    """Resumed weights belong to the vocabulary of the first start: other data is refused, not trained on."""
    table = tmp_path / "messages.tsv"
    table.write_bytes(text_table.read_bytes())
    assert dlapps("nlp", "train", "--data", table, "--runs-dir", tmp_path, "--name", "r", *SETS).exit_code == 0
    run = tmp_path / "nlp" / "r"
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "status": "interrupted"}))  # as if killed during fit
    table.write_text(table.read_text(encoding="utf-8").replace("Free", "Gratis"), encoding="utf-8")
    assert_one_line_error(dlapps("nlp", "train", "--resume", run), "has changed since")


def test_predict_keeps_one_line_per_text(nlp_run):
    result = dlapps("nlp", "predict", nlp_run[0], "--", "-50% off\tnow\ncall", "ok")
    assert result.exit_code == 0, result.stderr
    assert result.output.splitlines()[0].split("\t")[0] == "-50% off\\tnow\\ncall"
    assert len(result.output.splitlines()) == 2


def test_tflite_is_refused_in_one_line(nlp_run):
    assert_one_line_error(dlapps("nlp", "export", nlp_run[0], "--format", "tflite"), "TFLite", "saved_model")


@pytest.mark.parametrize("name", ["cnn", "lstm", "transformer"])
def test_sequence_models_train_through_the_cli(name, text_table, tmp_path):
    result = dlapps(
        "nlp",
        "train",
        "--data",
        text_table,
        "--runs-dir",
        tmp_path,
        *SETS,
        "--set",
        f"model.name={name}",
        "--set",
        "train.epochs=1",
    )
    assert result.exit_code == 0, result.stderr
    config = (next((tmp_path / "nlp").iterdir()) / "config.yaml").read_text()
    assert "sequence_length: 0" not in config  # resolved from the data and recorded


def test_a_run_repeats_from_its_config(nlp_run, tmp_path):
    run, _ = nlp_run
    result = dlapps("nlp", "train", "--config", run / "config.yaml", "--runs-dir", tmp_path, "--name", "again")
    assert result.exit_code == 0, result.stderr
    first = json.loads((run / "metrics.json").read_text())
    again = json.loads((tmp_path / "nlp" / "again" / "metrics.json").read_text())
    assert again == first


# --- bad input: one line, exit 2, no run directory --------------------------------------------


@pytest.mark.parametrize(
    "content,sets,fragments",
    [
        (None, [], ["not found", "missing.tsv"]),
        (b"", [], ["has no rows"]),
        (b"label\ttext\n", ["data.label_column=label"], ["header row but no data rows"]),
        (
            b"label,text\nham,hi\nspam,win\n",
            ["data.text_column=message"],
            ["no text column 'message'", "columns: label, text"],
        ),
        ("".join(f"ham\t{t}\n" for _, t in messages(20)).encode(), [], ["single class", "ham"]),
        (b"ham\thello\nspam\twin \xe9 now\n", [], ["line 2", "not utf-8"]),
        (b"ham\thello\nspam\twin\n", ["model.name=gpt"], ["unknown text model 'gpt'"]),
        (b"ham\thello\nspam\twin\n", ["text.tokens=bytes"], ["text.tokens"]),
        (
            b"ham\thello\nspam\twin\n",
            ["eval.decision=best"],
            ["'eval.decision' must be one of: argmax, f1, cost; got 'best'"],
        ),
        (b"ham\thello\nspam\twin\n", ["model.name=lstm", "model.depth=0"], ["model.depth must be >= 1"]),
        (
            "".join(f"{label}\t{text}\t\n" for label, text in messages(20)).encode(),
            ["data.text_column=2"],
            ["every training text is empty"],
        ),
    ],
)
def test_bad_input(tmp_path, content, sets, fragments):
    path = tmp_path / ("missing.tsv" if content is None else "data.tsv")
    if content is not None:
        path.write_bytes(content)
    if "label,text" in str(content):
        path = path.rename(tmp_path / "data.csv")
    args = ["nlp", "train", "--data", path, "--runs-dir", tmp_path / "runs", *SETS]
    assert_one_line_error(dlapps(*args, *[x for s in sets for x in ("--set", s)]), *fragments)
    assert not (tmp_path / "runs").exists()
