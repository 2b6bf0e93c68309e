"""The training switches that the default run does not exercise: mixed precision, a strategy, early stopping."""

import json

import pytest
from click.testing import CliRunner

from apps.cli import main
from tests.helpers import FAST


@pytest.mark.parametrize(
    "switch", ["train.mixed_precision=true", "train.strategy=mirrored", "train.early_stopping_patience=1"]
)
def test_training_switches_train_and_evaluate(tmp_path, switch):
    import keras

    sets = [x for item in [*FAST, switch] for x in ("--set", item)]
    result = CliRunner().invoke(main, ["vision", "train", "--runs-dir", str(tmp_path), "--name", "r", *sets])
    assert result.exit_code == 0, result.stderr
    run = tmp_path / "vision" / "r"
    assert 0.0 <= json.loads((run / "metrics.json").read_text())["accuracy"] <= 1.0
    model = keras.models.load_model(run / "model.keras", compile=False)
    assert model.output.dtype == "float32"  # probabilities stay float32 under mixed precision
    assert keras.mixed_precision.global_policy().name == "float32"  # the policy does not leak out


def test_a_diverging_run_stops_in_one_line_and_keeps_the_last_good_epoch(tmp_path):
    """A VAE on plain SGD at learning rate 2: finite through epoch 1, infinite in epoch 2 (deterministic ops)."""
    import keras
    import numpy as np

    from tests.helpers import assert_one_line_error, dlapps

    settings = [
        "model.name=vae",
        "train.optimizer=sgd",
        "train.learning_rate=2",
        "train.epochs=3",
        "train.steps_per_epoch=2",
        "eval.epoch_samples=20",
        "eval.classifier_steps=5",
        "eval.samples=20",
    ]
    sets = [x for item in settings for x in ("--set", item)]
    result = dlapps("generative", "train", "--runs-dir", tmp_path, "--name", "r", *sets)
    # exit 2 and, after the run directory's line, one line that says what happened and what to do
    assert result.exit_code == 2 and "Traceback" not in result.output + result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    for fragment in ("error: training diverged", "epoch 2", "checkpoints of epoch 1", "train.learning_rate=0.2"):
        assert fragment in last, (fragment, last)
    run = tmp_path / "generative" / "r"
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "diverged" and info["epochs_done"] == 1
    best = keras.models.load_model(run / "checkpoints" / "best.keras", compile=False)
    assert all(np.isfinite(w).all() for w in best.get_weights())  # the epoch-1 model, not the broken one
    assert (run / "checkpoints" / "backup").is_dir()
    assert_one_line_error(dlapps("generative", "train", "--resume", run), "diverged", "start a new run")


def test_resume_refuses_an_edited_config(tmp_path):
    from tests.helpers import assert_one_line_error, dlapps

    run = tmp_path / "vision" / "r"
    sets = [x for item in [*FAST, "train.max_minutes=0.0001"] for x in ("--set", item)]
    assert dlapps("vision", "train", "--runs-dir", tmp_path, "--name", "r", *sets).exit_code == 0
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "status": "interrupted"}))
    (run / "config.yaml").write_text(
        (run / "config.yaml").read_text().replace("learning_rate: 0.003", "learning_rate: 0.1")
    )
    assert_one_line_error(dlapps("vision", "train", "--resume", run), "was changed after the run started")
