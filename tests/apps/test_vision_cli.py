"""Every vision verb end to end through the CLI, on small real data, a few training steps each."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import yaml

from tests.helpers import FAST, dlapps, event_tags, odd_image_folder


def test_train_on_an_image_folder_names_its_classes_and_metrics(folder_run):
    # The run directory's files are the contract's (tests/contract); here: what an image folder gives.
    run, result = folder_run
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "complete" and info["class_names"] == ["hbar", "square", "vbar"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"accuracy", "macro_f1", "roc_auc_ovr", "per_class", "confusion_matrix"} <= set(metrics)
    assert metrics["examples"] == sum(map(sum, metrics["confusion_matrix"]))
    assert "Test split: accuracy" in result.output and f"dlapps vision evaluate {run}" in result.output
    assert "Traceback" not in result.stderr


def test_tensorboard_event_files_carry_the_listed_tags(folder_run):
    logs = folder_run[0] / "logs"
    train = event_tags(logs / "train")
    assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"} <= train["scalars"]
    for split in ("validation", "eval"):
        tags = event_tags(logs / split)
        assert {"evaluation/confusion_matrix", "evaluation/sample_predictions"} <= tags["images"]
        assert "evaluation/per_class_metrics" in tags["text"]
        assert {"evaluation/accuracy", "evaluation/macro_f1", "evaluation/roc_auc_ovr"} <= tags["scalars"]
        assert {f"pr_curve/{c}/pr_curves" for c in ("hbar", "square", "vbar")} <= tags["pr_curves"]
    assert {"epoch_loss", "epoch_accuracy"} <= event_tags(logs / "validation")["scalars"]
    assert "_hparams_/session_start_info" in event_tags(logs)["hparams"]


def test_evaluate_rewrites_metrics(folder_run):
    run, _ = folder_run
    before = json.loads((run / "metrics.json").read_text())
    result = dlapps("vision", "evaluate", run)
    assert result.exit_code == 0, result.stderr
    assert json.loads((run / "metrics.json").read_text())["accuracy"] == before["accuracy"]
    assert "accuracy" in result.output


def test_predict_prints_one_line_per_file(folder_run, image_folder):
    files = [image_folder / "square" / "00.png", image_folder / "hbar" / "01.jpg", image_folder / "vbar" / "03.gif"]
    result = dlapps("vision", "predict", folder_run[0], *files)
    assert result.exit_code == 0, result.stderr
    lines = result.output.strip().splitlines()
    assert len(lines) == 3
    for line, path in zip(lines, files):
        name, label, probability = line.split("\t")
        assert name == str(path) and label in ("hbar", "square", "vbar") and 0 < float(probability) <= 1


def test_names_that_are_not_utf8_train_and_predict_without_a_traceback(tmp_path):
    """Issue 22: a folder of such names was a TypeError traceback before training."""
    root = odd_image_folder(tmp_path / "images")
    sets = [x for item in FAST for x in ("--set", item)]
    result = dlapps("vision", "train", "--data", root, "--runs-dir", tmp_path / "runs", "--name", "odd", *sets)
    assert result.exit_code == 0, result.stderr
    run = tmp_path / "runs" / "vision" / "odd"
    assert json.loads((run / "run.json").read_text())["class_names"] == ["café", "caf\\xe9", "plain"]
    image = root / os.fsdecode(b"caf\xe9") / os.fsdecode(b"sub\xfe") / os.fsdecode(b"0\xff.png")
    predicted = dlapps("vision", "predict", run, image)
    assert predicted.exit_code == 0, predicted.stderr
    name, label, _ = predicted.output.strip().split("\t")
    assert name == f"{root}/caf\\xe9/sub\\xfe/0\\xff.png" and label in ("café", "caf\\xe9", "plain")


def test_saved_model_answers_in_a_fresh_process_with_only_tensorflow(folder_run, image_folder):
    run, _ = folder_run
    assert dlapps("vision", "export", run, "--format", "saved_model").exit_code == 0
    files = [str(p) for p in sorted((image_folder / "square").iterdir())[:4]]
    predicted = dlapps("vision", "predict", run, *files).output.strip().splitlines()
    client = textwrap.dedent(f"""
        import sys, json, tensorflow as tf
        serve = tf.saved_model.load({str(run / "export" / "saved_model")!r}).signatures["serving_default"]
        files = {files!r}
        out = serve(image_bytes=tf.constant([open(f, "rb").read() for f in files]))
        assert out["probabilities"].shape == (len(files), 3)
        print(json.dumps([n.decode() for n in out["class_name"].numpy().tolist()]))
        print(any(m.split(".")[0] in ("pipelines", "apps") for m in sys.modules), file=sys.stderr)
    """)
    out = subprocess.run([sys.executable, "-c", client], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [line.split("\t")[1] for line in predicted]
    assert out.stderr.strip().splitlines()[-1] == "False"  # nothing of ours was imported


def test_tflite_gives_the_same_top1(folder_run, image_folder):
    import keras
    import tensorflow as tf

    run, _ = folder_run
    result = dlapps("vision", "export", run, "--format", "tflite")
    assert result.exit_code == 0, result.stderr
    model = keras.models.load_model(run / "model.keras", compile=False)
    from pipelines.core import config as cfg
    from pipelines.vision.pipeline import PIPELINE, VisionConfig

    config = cfg.load_yaml(run / "config.yaml", VisionConfig)
    files = sorted(p for c in ("hbar", "square", "vbar") for p in (image_folder / c).iterdir())[:12]
    images = PIPELINE.read_inputs(files, model, config)
    interpreter = tf.lite.Interpreter(model_path=str(run / "export" / "model.tflite"))
    runner = interpreter.get_signature_runner("serving_pixels")
    lite = np.concatenate([runner(images=img[None])["probabilities"] for img in images])
    np.testing.assert_array_equal(lite.argmax(1), model.predict(images, verbose=0).argmax(1))


def test_config_yaml_repeats_the_run_exactly(tmp_path):
    sets = [x for item in FAST for x in ("--set", item)]
    first = dlapps("vision", "train", "--runs-dir", tmp_path, "--name", "a", *sets)
    assert first.exit_code == 0, first.stderr
    config = tmp_path / "vision" / "a" / "config.yaml"
    assert yaml.safe_load(config.read_text())["train"]["epochs"] == 2
    second = dlapps("vision", "train", "--runs-dir", tmp_path, "--name", "b", "--config", config)
    assert second.exit_code == 0, second.stderr
    metrics = [json.loads((tmp_path / "vision" / n / "metrics.json").read_text()) for n in "ab"]
    assert metrics[0] == metrics[1]


def test_list_shows_sources_and_models():
    result = dlapps("list")
    assert result.exit_code == 0
    for name in (
        "vision:",
        "digits",
        "idx",
        "folder",
        "tfds",
        "mlp",
        "cnn",
        "resnet",
        "mobilenet_v3_small",
        "efficientnet_b0",
    ):
        assert name in result.output
