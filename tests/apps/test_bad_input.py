"""Bad input: one line on stderr naming what and where, exit code 2, no traceback, nothing lost."""

from pathlib import Path

import pytest

from tests.helpers import FAST, assert_one_line_error, dlapps

SETS = [x for item in FAST for x in ("--set", item)]


def make_folder(root: Path, spec: dict, source: Path) -> Path:
    """Copy images from the shared folder: spec is {class: number of images}."""
    for cls, count in spec.items():
        (root / cls).mkdir(parents=True)
        for image in sorted((source / "square").iterdir())[:count]:
            (root / cls / image.name).write_bytes(image.read_bytes())
    return root


def test_missing_data_path(tmp_path):
    result = dlapps("vision", "train", "--data", tmp_path / "nope", "--runs-dir", tmp_path / "runs")
    assert_one_line_error(result, "data path not found", "nope")
    assert not (tmp_path / "runs").exists()  # a failed start leaves no run directory behind


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    assert_one_line_error(dlapps("vision", "train", "--data", tmp_path / "empty"), "no class subfolders", "empty")


def test_corrupt_image_is_named_and_can_be_skipped(tmp_path, image_folder, caplog):
    folder = make_folder(tmp_path / "imgs", {"a": 6, "b": 6}, image_folder)
    (folder / "a" / "notes.txt").write_text("not an image")
    args = ["vision", "train", "--data", folder, "--runs-dir", tmp_path / "runs", *SETS]
    assert_one_line_error(dlapps(*args), "notes.txt", "data.on_bad_file=skip")
    result = dlapps(*args, "--set", "data.on_bad_file=skip")
    assert result.exit_code == 0, result.stderr
    assert "skipped 1 unreadable file(s)" in caplog.text and "notes.txt" in caplog.text


def test_class_folder_without_images(tmp_path, image_folder):
    folder = make_folder(tmp_path / "imgs", {"a": 6, "b": 6}, image_folder)
    (folder / "c").mkdir()
    assert_one_line_error(dlapps("vision", "train", "--data", folder), "class folder", "has no images")


def test_single_class(tmp_path, image_folder):
    folder = make_folder(tmp_path / "imgs", {"a": 6}, image_folder)
    assert_one_line_error(dlapps("vision", "train", "--data", folder), "only one class")


@pytest.mark.parametrize(
    "override, fragments",
    [
        ("model.name=transformer9", ["unknown vision model 'transformer9'", "cnn"]),
        ("data.source=ftp", ["unknown vision data source 'ftp'", "digits"]),
        ("train.epochz=3", ["unknown config key 'train.epochz'"]),
        ("train.epochs=many", ["train.epochs", "expects int"]),
        ("model.augment=[spin]", ["'model.augment[0]' must be one of: translate", "got 'spin'"]),
        ("train.optimizer=lbfgs", ["'train.optimizer' must be one of: adam, adamw, sgd; got 'lbfgs'"]),
        ("data.image_size=[224]", ["'data.image_size' needs 2 values, got 1"]),
        ("data.image_size=[0, 8]", ["'data.image_size[0]' must be >= 1 and <= 8,192, got 0"]),
        ("data.test_fraction=1.5", ["'data.test_fraction' must be > 0 and < 1, got 1.5"]),
        ("data.validation_fraction=-0.1", ["'data.validation_fraction' must be > 0 and < 1"]),
        # the list: every one a traceback, a hang or a run started before
        ("train.batch_size=0", ["'train.batch_size' must be >= 1"]),
        ("train.batch_size=-4", ["'train.batch_size' must be >= 1"]),
        ("train.learning_rate=nan", ["'train.learning_rate' must be a finite number"]),
        ("train.learning_rate=inf", ["'train.learning_rate' must be a finite number"]),
        ("train.learning_rate=1e30", ["'train.learning_rate' must be > 0 and <= 10, got 1e+30"]),
        ("train.epochs=0", ["'train.epochs' must be >= 1"]),
        ("train.epochs=-3", ["'train.epochs' must be >= 1"]),
    ],
)
def test_bad_settings(tmp_path, override, fragments):
    result = dlapps("vision", "train", "--runs-dir", tmp_path, "--set", override)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "vision").exists()


def test_missing_config_file(tmp_path):
    assert_one_line_error(dlapps("vision", "train", "--config", tmp_path / "run.yaml"), "config file not found")


@pytest.mark.parametrize("name", ["../escape", "/tmp/abs", "a/b", ".hidden", "-x", "..", "x" * 300, "tab\there"])
def test_run_names_stay_inside_the_runs_directory(tmp_path, name):
    result = dlapps("vision", "train", "--runs-dir", tmp_path / "runs", "--name", name, *SETS)
    assert_one_line_error(result, "--name")
    assert list(tmp_path.iterdir()) == []  # nothing written anywhere, before any data was read


def test_runs_dir_that_is_a_file(tmp_path):
    (tmp_path / "runs").write_text("a file")
    assert_one_line_error(dlapps("vision", "train", "--runs-dir", tmp_path / "runs", *SETS), "is a file, not a folder")


def test_check_reads_the_data_and_writes_nothing(tmp_path):
    result = dlapps("vision", "train", "--runs-dir", tmp_path, "--name", "ok", *SETS, "--check")
    assert result.exit_code == 0, result.stderr
    assert "settings, data and model OK: digits" in result.output
    assert list(tmp_path.iterdir()) == []


def test_existing_run_directory_is_never_overwritten(tmp_path):
    (tmp_path / "vision" / "mine").mkdir(parents=True)
    (tmp_path / "vision" / "mine" / "precious.txt").write_text("keep")
    result = dlapps("vision", "train", "--runs-dir", tmp_path, "--name", "mine", *SETS)
    assert_one_line_error(result, "already exists", "mine")
    assert [p.name for p in (tmp_path / "vision" / "mine").iterdir()] == ["precious.txt"]


@pytest.mark.parametrize("verb", ["evaluate", "predict", "export"])
def test_missing_run_directory(tmp_path, verb):
    extra = [tmp_path / "a.png"] if verb == "predict" else []
    assert_one_line_error(dlapps("vision", verb, tmp_path / "no-run", *extra), "run directory not found", "no-run")


def test_unreadable_image_for_predict(folder_run, tmp_path):
    (tmp_path / "fake.png").write_bytes(b"GIF89a but broken")
    assert_one_line_error(
        dlapps("vision", "predict", folder_run[0], tmp_path / "fake.png"), "cannot read image", "fake.png"
    )
    assert_one_line_error(dlapps("vision", "predict", folder_run[0], tmp_path / "absent.png"), "absent.png")
    assert_one_line_error(dlapps("vision", "predict", folder_run[0], tmp_path), "is a folder, not a file")


def test_predict_reads_only_regular_files(folder_run, tmp_path):
    """``predict RUN /dev/zero`` grew without end and a FIFO waited forever for a writer: both are looked at
    (stat), never opened."""
    import os

    os.mkfifo(tmp_path / "fifo.png")
    for path in ("/dev/zero", tmp_path / "fifo.png"):
        assert_one_line_error(dlapps("vision", "predict", folder_run[0], path), "is not a regular file")


def test_predict_and_serving_refuse_an_image_of_too_many_pixels_before_decoding(folder_run, tmp_path):
    """The 20000 x 20000 PNG that training refuses is refused by predict and by the exported SavedModel too (its
    header is read; decoding it would take 1.2 GB), as InvalidArgument: a 400 for a server."""
    import tensorflow as tf

    from tests.helpers import huge_png

    huge = huge_png(tmp_path / "huge.png")
    assert_one_line_error(
        dlapps("vision", "predict", folder_run[0], huge), "huge.png", "states more than data.max_pixels=40,000,000"
    )
    assert dlapps("vision", "export", folder_run[0]).exit_code == 0
    serve = tf.saved_model.load(str(folder_run[0] / "export" / "saved_model")).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="states more than data.max_pixels"):
        serve(image_bytes=tf.constant([huge.read_bytes()]))


def test_a_model_file_that_is_not_the_runs_is_refused(folder_run, tmp_path):
    """A model.keras copied in from elsewhere (another input size, or 10 classes where the run has 3): evaluate,
    predict and export refuse it in one line rather than print another model's answers under the run's names."""
    import json
    import shutil

    import keras

    run = tmp_path / "copy"
    shutil.copytree(folder_run[0], run)
    shape = tuple(json.loads((run / "run.json").read_text())["input_shape"])
    image = next((run / "samples").glob("*.png"))
    for inputs, classes, part in (((10, 10, 1), 3, "inputs"), (shape, 10, "outputs")):
        foreign = keras.Sequential([keras.Input(inputs), keras.layers.Flatten(), keras.layers.Dense(classes)])
        foreign.save(run / "model.keras")
        for verb, extra in (("evaluate", []), ("predict", [image]), ("export", [])):
            assert_one_line_error(dlapps("vision", verb, run, *extra), "is not the model this run trained", part)
