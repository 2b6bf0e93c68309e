"""`dlapps DOMAIN tune`: a KerasTuner search whose trials are real training runs, and its checks of the space."""

import csv
import json

import pytest
import yaml

from tests.helpers import FAST, assert_one_line_error, dlapps, event_scalars, odd_image_folder

# FAST without the setting the searches below vary
BASE = [arg for item in FAST if not item.startswith("model.width=") for arg in ("--set", item)]


def rows(tune) -> list[dict]:
    with open(tune / "results.csv", newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_a_search_trains_each_trial_as_a_run_and_its_best_config_retrains_the_same_model(tmp_path):
    result = dlapps(
        "vision", "tune", *BASE, "--space", "model.width=4,8", "--space", "train.learning_rate=log:1e-3..1e-2",
        "--trials", 2, "--runs-dir", tmp_path, "--name", "s",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    tune = tmp_path / "vision" / "s"
    found = rows(tune)
    assert [row["status"] for row in found] == ["completed", "completed"]
    losses = [float(row["val_loss"]) for row in found]
    assert losses == sorted(losses)  # best first: val_loss is minimised
    # a progress line per trial, then the table and where the best config is
    assert result.output.count("] trial ") == 2 and "[2/2]" in result.output
    assert f"dlapps vision train --config {tune / 'best.yaml'}" in result.output

    for row in found:  # each trial is a complete run with the searched settings in its config
        run = tune / row["run"]
        info = json.loads((run / "run.json").read_text())
        assert info["status"] == "complete" and info["best_val_loss"] == pytest.approx(float(row["val_loss"]), 1e-5)
        config = yaml.safe_load((run / "config.yaml").read_text())
        assert config["model"]["width"] == int(row["model.width"])
        assert 1e-3 <= config["train"]["learning_rate"] <= 1e-2
        assert config["train"]["learning_rate"] == pytest.approx(float(row["train.learning_rate"]))
        # TensorBoard HParams: the run is a session; the search adds its best objective beside it
        assert event_scalars(run / "logs", "tune/best_val_loss") == [pytest.approx(float(row["val_loss"]), 1e-5)]
    assert hparams_experiment(tune / "logs") == ["model.width", "train.learning_rate"]

    # best.yaml trains the best trial again, from its config and seed alone, to the same validation loss
    best = tune / found[0]["run"]
    assert yaml.safe_load((tune / "best.yaml").read_text()) == yaml.safe_load((best / "config.yaml").read_text())
    again = dlapps("vision", "train", "--config", tune / "best.yaml", "--runs-dir", tmp_path, "--name", "again")
    assert again.exit_code == 0, again.output
    retrained = json.loads((tmp_path / "vision" / "again" / "run.json").read_text())["best_val_loss"]
    assert retrained == pytest.approx(losses[0], rel=1e-5)

    finished = dlapps("vision", "tune", "--resume", tune)
    assert_one_line_error(finished, "finished its 2 trials", "best.yaml")


def hparams_experiment(folder) -> list[str]:
    """The hyperparameter names of the HParams experiment summary written in ``folder``."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import plugin_data_pb2

    for path in folder.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "hparams":
                    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                    if data.HasField("experiment"):
                        return [info.name for info in data.experiment.hparam_infos]
    raise AssertionError(f"no HParams experiment in {folder}")


def test_a_grid_search_tries_each_combination_once_and_a_failing_trial_is_a_row_not_a_crash(tmp_path):
    images = odd_image_folder(tmp_path / "images")  # 16x16: 256 pixels, over data.max_pixels=100
    result = dlapps(
        "vision", "tune", *BASE, "--data", images, "--space", "data.max_pixels=100,100000",
        "--space-file", space_file(tmp_path), "--algorithm", "grid", "--trials", 10, "--objective", "val_accuracy",
        "--runs-dir", tmp_path, "--name", "g",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    found = rows(tmp_path / "vision" / "g")
    tried = sorted((row["data.max_pixels"], row["model.width"]) for row in found)
    assert tried == [("100", "4"), ("100", "8"), ("100000", "4"), ("100000", "8")]
    assert [row["status"] for row in found] == ["completed", "completed", "failed", "failed"]  # finished first
    for row in found[2:]:
        assert row["data.max_pixels"] == "100" and "more than data.max_pixels=100 pixels" in row["message"]
        assert "failed: " in result.output
    accuracies = [float(row["val_accuracy"]) for row in found[:2]]
    assert accuracies == sorted(accuracies, reverse=True)  # best first: accuracy is maximised


@pytest.mark.parametrize("workers", [1, 2])
def test_trials_failing_in_a_row_end_the_search_in_one_line_with_every_worker_stopped(tmp_path, workers):
    images = odd_image_folder(tmp_path / "images")  # 16x16: over every data.max_pixels searched
    result = dlapps(
        "vision", "tune", *BASE, "--data", images, "--space", "data.max_pixels=100..200", "--trials", 10,
        "--workers", workers, "--runs-dir", tmp_path, "--name", "f",
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the search stopped: Number of consecutive failures exceeded the limit of 3: ")
    assert "more than data.max_pixels=" in last and "Traceback" not in result.stderr + result.output
    tune = tmp_path / "vision" / "f"
    found = rows(tune)
    assert 3 <= len(found) <= 2 + workers and {row["status"] for row in found} == {"failed"}
    assert json.loads((tune / "tune.json").read_text())["status"] == "failed"
    oracle = json.loads((tune / "oracle" / "oracle.json").read_text())
    assert oracle["ongoing_trials"] == {}  # each failed trial ended in order, its worker freed


def space_file(folder):
    path = folder / "space.yaml"
    path.write_text("model.width: [4, 8]\n")
    return path


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--space", "model.widht=4,8"], ["unknown config key 'model.widht'"]),
        (["--space", "model.width=4,x"], ["search space", "model.width", "expects int"]),
        (["--space", "model.width=8..4"], ["model.width=8..4", "is empty"]),
        (["--space", "model.width=0..4"], ["model.width", ">= 1"]),
        (["--space", "model.width=4.5..9"], ["model.width", "expects int"]),
        (["--space", "train.learning_rate=log:0..1e-2"], ["train.learning_rate", "> 0"]),
        (["--space", "model.name=cnn,nope"], ["unknown vision model 'nope'"]),
        (["--space", "train.optimizer=adam,nadam"], ["train.optimizer", "nadam"]),
        (["--space", "model.width"], ["--space expects KEY=VALUES"]),
        (["--space", "model.width=4,4"], ["lists a value twice"]),
        (["--space", "train.monitor=val_loss,val_accuracy"], ["--objective"]),
        (["--space", "train.learning_rate=1e-3..1e-2", "--algorithm", "grid"], ["grid", "float range"]),
        (["--space", "train.epochs=2,4", "--algorithm", "hyperband"], ["hyperband", "train.epochs"]),
        (["--space", "model.width=4,8", "--objective", "test_accuracy"], ["validation", "never on the test split"]),
        (["--space", "model.width=4,8", "--objective", "val_acc"], ["val_acc", "val_accuracy"]),
        (["--space", "model.width=4,8", "--data", "/no/such/folder"], ["base config", "/no/such/folder"]),
        ([], ["nothing to search"]),
    ],
)
def test_a_bad_search_is_one_line_before_anything_is_written(tmp_path, args, fragments):
    result = dlapps("vision", "tune", *args, "--runs-dir", tmp_path / "runs")
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "runs" / "vision").exists() or not any((tmp_path / "runs" / "vision").iterdir())


def test_a_space_file_that_is_not_a_mapping_of_keys_is_one_line(tmp_path):
    path = tmp_path / "space.yaml"
    for text, fragment in [("- 4\n- 8\n", "must map config keys"), ("model:\n  width: [4, 8]\n", "full key")]:
        path.write_text(text)
        assert_one_line_error(dlapps("vision", "tune", "--space-file", path, "--runs-dir", tmp_path), fragment)
    resumed = dlapps("vision", "tune", "--resume", tmp_path / "nothing-here")
    assert_one_line_error(resumed, "not a dlapps search")


def test_a_drawn_value_is_given_to_the_trial_as_the_setting_takes_it():
    from apps.tuning.space import overrides, parse_space
    from pipelines.vision.pipeline import VisionConfig

    cache, width, rate = parse_space(
        ["data.cache=true,false", "model.width=4..8", "train.learning_rate=1e-3..1e-2"], VisionConfig()
    )
    # KerasTuner keeps a true/false choice as 1/0 (a trial given data.cache=1 failed: "expects bool")
    assert cache.value_of(1) is True and cache.value_of(0) is False
    assert overrides({"data.cache": cache.value_of(0), "model.width": width.value_of(5.0)}) == [
        "data.cache=false",
        "model.width=5",
    ]
    assert rate.value_of(2e-3) == 2e-3
