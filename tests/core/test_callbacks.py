from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipelines.core.callbacks import collect


def test_collect_keeps_every_answer_and_shows_mistakes_first():
    # An identity "model": its inputs are its probabilities, so the answers are known.
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6], [0.6, 0.4]], dtype="float32")
    labels = np.array([0, 1, 1, 1, 1])  # examples 2 and 4 are wrong
    model = keras.Sequential([keras.Input((2,)), keras.layers.Identity()])
    answers = collect(model, tf.data.Dataset.from_tensor_slices((probabilities, labels)).batch(2), keep=3)
    assert answers.y_true.tolist() == labels.tolist()
    np.testing.assert_allclose(answers.probabilities, probabilities, rtol=1e-6)
    assert answers.sample_index.tolist() == [2, 4, 0]
    np.testing.assert_allclose(answers.sample_inputs, probabilities[[2, 4, 0]])
    assert answers.render(lambda x, y, p, names: bytes(len(y)), ["a", "b"]) == bytes(3)


def test_early_stopping_patience_survives_a_resume(tmp_path):
    from pipelines.core.callbacks import ResumableEarlyStopping
    from pipelines.core.rundir import RunDir

    run = RunDir.create(tmp_path, "vision", "r")
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.stop_training = False  # fit() sets this; here the callbacks are driven by hand
    first = ResumableEarlyStopping(run, monitor="val_loss", patience=3)
    first.set_model(model)
    first.on_train_begin()
    for epoch, loss in enumerate([1.0, 1.1, 1.2]):  # best at epoch 0, then two epochs without progress
        first.on_epoch_end(epoch, {"val_loss": loss})
    assert first.wait == 2 and not model.stop_training
    resumed = ResumableEarlyStopping(run, monitor="val_loss", patience=3)  # a new process after --resume
    resumed.set_model(model)
    resumed.on_train_begin()
    assert (resumed.wait, resumed.best) == (2, 1.0)
    resumed.on_epoch_end(3, {"val_loss": 1.3})
    assert model.stop_training  # the third epoch without progress, counted across the resume


def test_a_monitored_score_is_maximised_and_kept_for_resuming(tmp_path):
    from pipelines.core.callbacks import ResumableEarlyStopping, RunProgress
    from pipelines.core.rundir import RunDir

    run = RunDir.create(tmp_path, "fraud", "r")
    progress = RunProgress(run, "val_pr_auc", "max")
    for epoch, score in enumerate([0.5, 0.7, 0.6]):
        progress.on_epoch_end(epoch, {"val_pr_auc": score, "val_loss": 1.0})
    assert run.info()["best_val_pr_auc"] == 0.7 and run.info()["epochs_done"] == 3
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.stop_training = False
    stopping = ResumableEarlyStopping(run, monitor="val_pr_auc", mode="max", patience=2)
    stopping.set_model(model)
    stopping.on_train_begin()
    for epoch, score in enumerate([0.5, 0.7, 0.6, 0.65]):
        stopping.on_epoch_end(epoch, {"val_pr_auc": score})
    assert model.stop_training and stopping.best == 0.7  # two epochs below the best


@pytest.mark.parametrize(
    "monitor, mode",
    [("val_loss", "min"), ("loss", "min"), ("val_d_loss", "min"), ("val_frechet", "min"), ("val_recognisable", "max")],
)
def test_a_monitor_is_minimised_or_maximised_as_its_pipeline_declares(monitor, mode):
    from pipelines.core.config import TrainConfig
    from pipelines.core.pipeline import Pipeline

    class Declared(Pipeline):
        domain = "test"

        def metric_directions(self, config):
            return {"frechet": "min", "recognisable": "max"}

    assert Declared().monitor_mode(SimpleNamespace(train=TrainConfig(monitor=monitor))) == mode


def test_a_monitor_nothing_logs_is_refused_not_guessed():
    from pipelines.core.config import TrainConfig
    from pipelines.core.errors import UserError
    from pipelines.core.pipeline import Pipeline

    class Declared(Pipeline):
        domain = "test"

    # val_mae: before, core guessed "higher is better" for any name it did not know, so best.keras kept the worst
    with pytest.raises(UserError, match="train.monitor 'val_mae'.*val_loss"):
        Declared().monitor_mode(SimpleNamespace(train=TrainConfig(monitor="val_mae")))


@pytest.mark.parametrize(
    "when, stops, restored", [("always", False, True), ("when_stopped", False, False), ("when_stopped", True, True)]
)
def test_the_best_weights_come_back_always_or_only_when_patience_runs_out(tmp_path, when, stops, restored):
    from pipelines.core.callbacks import ResumableEarlyStopping
    from pipelines.core.rundir import RunDir

    run = RunDir.create(tmp_path, "forecast", "r")
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, kernel_initializer="zeros")])
    model.stop_training = False
    stopping = ResumableEarlyStopping(
        run, monitor="val_loss", patience=2, restore_best_weights=True, only_when_stopped=when == "when_stopped"
    )
    stopping.set_model(model)
    stopping.on_train_begin()
    losses = [1.0, 1.1, 1.2] if stops else [1.0, 1.1]  # best at epoch 0; patience runs out at epoch 2
    for epoch, loss in enumerate(losses):
        model.layers[0].kernel.assign([[float(epoch + 1)]])  # each epoch's weights tell which epoch they are
        stopping.on_epoch_end(epoch, {"val_loss": loss})
    assert model.stop_training == stops
    stopping.on_train_end()
    assert float(model.layers[0].kernel[0, 0]) == (1.0 if restored else float(len(losses)))
