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
