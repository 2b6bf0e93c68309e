"""Callbacks shared by every domain: evaluation summaries, HParams, checkpoints, TensorBoard.

TensorBoard tags written here (stable; the README lists them):

- ``evaluation/confusion_matrix``, ``evaluation/sample_predictions`` (images)
- ``evaluation/per_class_metrics`` (text: per-class precision/recall/F1 table)
- ``evaluation/accuracy``, ``evaluation/macro_f1``, ``evaluation/roc_auc_ovr``, ``evaluation/pr_auc``
  (scalars; PR-AUC for binary tasks)
- ``pr_curve/<class name>/pr_curves`` (pr_curve plugin, one per class)

to ``logs/validation`` each ``eval.every_epochs`` epochs and to ``logs/eval`` for the final
test evaluation; the HParams session (config -> metrics) goes to ``logs/``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hp
from tensorboard.plugins.pr_curve import summary as pr_summary

from pipelines.core import cluster, evaluation, figures
from pipelines.core.errors import UserError

# (inputs, y_true, probabilities, class_names) -> PNG bytes of a few examples with their predictions
SampleRenderer = Callable[[np.ndarray, np.ndarray, np.ndarray, list], bytes]
# (writer, step, scored split) -> None: a domain's own metrics, figures and summaries beside the shared ones
ExtraSummaries = Callable[[tf.summary.SummaryWriter, int, "Scored"], None]


def write_classification_summaries(
    writer: tf.summary.SummaryWriter, step: int, scored: Scored, class_names: list[str]
) -> None:
    """Everything the evaluation contract promises, for one split at one step."""
    result, answers = scored.metrics, scored.answers
    with writer.as_default(step=step):
        for name, png in scored.figures.items():
            tf.summary.image(f"evaluation/{name}", png_batch(png))
        tf.summary.text("evaluation/per_class_metrics", evaluation.per_class_table(result))
        for key in ("accuracy", "macro_f1", "roc_auc_ovr", "pr_auc"):
            if result.get(key) is not None:
                tf.summary.scalar(f"evaluation/{key}", result[key])
        for index, name in enumerate(class_names):
            proto = pr_summary.pb(
                f"pr_curve/{name}",
                labels=(answers.y_true == index),
                predictions=answers.probabilities[:, index].astype(np.float32),
                num_thresholds=101,
            )
            tf.summary.experimental.write_raw_pb(proto.SerializeToString(), step=step)
    writer.flush()


@dataclasses.dataclass
class Predictions:
    """A model's answers on a whole split, and a few examples worth showing a person."""

    y_true: np.ndarray
    probabilities: np.ndarray
    sample_inputs: np.ndarray  # up to ``keep`` examples, misclassified ones first
    sample_index: np.ndarray  # their positions in y_true

    def render(self, renderer: SampleRenderer | None, class_names: list[str]) -> bytes | None:
        if renderer is None or len(self.sample_index) == 0:
            return None
        idx = self.sample_index
        return renderer(self.sample_inputs, self.y_true[idx], self.probabilities[idx], class_names)


def predict_batch(model: keras.Model, x):
    """The model's answers to one batch, compiled once and reused. Under a multi-worker strategy
    ``predict_on_batch`` gathers every worker's answers to the same batch (twice the rows for two workers):
    there each worker runs the model by itself on its copy of the weights, the same on every worker."""
    if not cluster.is_multi_worker(model.distribute_strategy):
        return model.predict_on_batch(x)
    if getattr(model, "_dlapps_predict", None) is None:
        model._dlapps_predict = tf.function(lambda batch: model(batch, training=False), reduce_retracing=True)
    return model._dlapps_predict(x)


def collect(model: keras.Model, dataset: tf.data.Dataset, keep: int) -> Predictions:
    """Labels and probabilities for a whole (unshuffled) dataset, keeping ``keep`` example inputs."""
    labels, probabilities, wrong, right = [], [], [], []
    offset = 0
    for x, y in dataset:
        batch_probabilities = np.asarray(predict_batch(model, x))
        batch_labels = y.numpy().astype(int)
        if keep:
            hits = batch_probabilities.argmax(axis=1) == batch_labels
            x = np.asarray(x)
            wrong += [(offset + i, x[i]) for i in np.flatnonzero(~hits)[: max(0, keep - len(wrong))]]
            right += [(offset + i, x[i]) for i in np.flatnonzero(hits)[: max(0, keep - len(right))]]
        labels.append(batch_labels)
        probabilities.append(batch_probabilities)
        offset += len(batch_labels)
    chosen = (wrong + right)[:keep]
    return Predictions(
        np.concatenate(labels),
        np.concatenate(probabilities).astype(np.float64),
        np.stack([x for _, x in chosen]) if chosen else np.zeros((0,)),
        np.array([i for i, _ in chosen], dtype=int),
    )


@dataclasses.dataclass
class Scored:
    """One split scored: the answers, their metrics, and the figures (PNG bytes) a person looks at."""

    answers: Predictions
    metrics: dict
    figures: dict[str, bytes]  # confusion_matrix, and sample_predictions when there is a renderer


def score(
    model: keras.Model,
    dataset: tf.data.Dataset,
    class_names: list[str],
    top_k: int,
    keep: int,
    render_samples: SampleRenderer | None,
    decision: dict | None = None,
) -> Scored:
    """Predict a whole split, compute its metrics (classes by ``decision``, see
    :func:`pipelines.core.evaluation.decide`) and render its figures, each once."""
    answers = collect(model, dataset, keep)
    metrics = evaluation.classification_metrics(answers.y_true, answers.probabilities, class_names, top_k, decision)
    pngs = {"confusion_matrix": figures.confusion_matrix_png(metrics["confusion_matrix"], class_names)}
    samples = answers.render(render_samples, class_names)
    if samples:
        pngs["sample_predictions"] = samples
    return Scored(answers, metrics, pngs)


class EpochSummaries(keras.callbacks.Callback):
    """Base of the per-epoch summary callbacks: every ``every_epochs`` epochs (0: never) :meth:`summarise` writes
    to one TensorBoard folder, and may add values to the epoch's logs, which then reach TensorBoard's scalars,
    early stopping and best.keras in the same epoch (domain callbacks run before the shared ones). The writer
    opens on first use and closes when training ends."""

    def __init__(self, log_dir: Path, every_epochs: int):
        super().__init__()
        self.log_dir = Path(log_dir)
        self.every_epochs = every_epochs
        self._writer = None

    @property
    def writer(self) -> tf.summary.SummaryWriter:
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.log_dir))
        return self._writer

    def on_epoch_end(self, epoch, logs=None):
        if self.every_epochs and (epoch + 1) % self.every_epochs == 0:
            self.summarise(epoch + 1, logs if logs is not None else {})
            self.writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def summarise(self, step: int, logs: dict) -> None:
        raise NotImplementedError


class EvaluationCallback(EpochSummaries):
    """Writes confusion matrix, sample predictions, PR curves and per-class metrics on validation data."""

    def __init__(
        self,
        dataset,
        class_names,
        log_dir: Path,
        every_epochs: int,
        top_k: int,
        sample_count: int,
        render_samples: SampleRenderer | None = None,
        extra_summaries: ExtraSummaries | None = None,
    ):
        super().__init__(log_dir, every_epochs)
        self.dataset = dataset
        self.class_names = class_names
        self.top_k = top_k
        self.sample_count = sample_count
        self.render_samples = render_samples
        self.extra_summaries = extra_summaries

    def summarise(self, step: int, logs: dict) -> None:
        scored = score(self.model, self.dataset, self.class_names, self.top_k, self.sample_count, self.render_samples)
        if self.extra_summaries is not None:  # first: its figures join the shared images
            self.extra_summaries(self.writer, step, scored)
        write_classification_summaries(self.writer, step, scored, self.class_names)


def write_hparams(log_dir: Path, flat_config: dict, trial_id: str) -> None:
    """HParams session start: ties this run's config to the scalars in its logs/ subfolders."""
    hparams = {key: _hparam_value(value) for key, value in flat_config.items()}
    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        hp.hparams(hparams, trial_id=trial_id)
    writer.close()


class RunProgress(keras.callbacks.Callback):
    """Records finished epochs and the best monitored value (``best_<monitor>``) in run.json, for people and
    for resuming."""

    def __init__(self, run, monitor: str = "val_loss", mode: str = "min"):
        super().__init__()
        self.run = run
        self.monitor = monitor
        self.better = np.less if mode == "min" else np.greater

    def on_epoch_end(self, epoch, logs=None):
        key = f"best_{self.monitor}"
        best = self.run.info().get(key)
        value = (logs or {}).get(self.monitor)
        if value is not None and (best is None or self.better(value, best)):
            best = float(value)
        self.run.write_info(epochs_done=epoch + 1, **{key: best})


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """Early stopping whose patience count and best value survive ``--resume`` (kept in run.json).

    The best weights in memory are not carried over; checkpoints/best.keras holds them. ``only_when_stopped``:
    the best weights come back only when patience ran out, not at the end of a run that finished its epochs.
    """

    def __init__(self, run, only_when_stopped: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.run = run
        self.only_when_stopped = only_when_stopped

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        state = self.run.info().get("early_stopping")
        if state:
            self.wait, self.best = state["wait"], state["best"]

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        best = None if self.best is None else float(self.best)
        self.run.write_info(early_stopping={"wait": self.wait, "best": best})

    def on_train_end(self, logs=None):
        if self.only_when_stopped and not self.stopped_epoch:
            self.best_weights = None  # the run finished its epochs: its last weights stand
        super().on_train_end(logs)


def save_atomically(model: keras.Model, path: Path) -> None:
    """Write-then-rename: a kill while saving never leaves a half-written model behind, and a failed write (a
    full disk) removes its partial file, giving its space back.

    Always the ``.keras`` format: Keras writes its weights into memory and the file through Python, so a full
    disk is an OSError. A ``.weights.h5`` file is written by HDF5 itself, which crashes the process on a full
    disk (h5py segfaults while closing the file).
    """
    partial = path.with_name(f"{path.stem}.partial.keras")
    try:
        model.save(partial)
        _flush(partial)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(path)


class ResumeState(keras.callbacks.Callback):
    """What ``--resume`` continues from: after every epoch, the model with its optimizer state as
    ``epoch-NNNN.keras`` in ``folder``.

    Each file is written under a temporary name and renamed into place, and the one before it is kept until
    the next is complete, so a kill at any instant leaves the last complete epoch (Keras' BackupAndRestore
    overwrites one file in place: a kill while it writes leaves nothing to resume from). The epoch is in the
    name, so weights and epoch count can never disagree. Training that ends removes the folder.
    """

    NAME = re.compile(r"epoch-(\d+)\.(keras|weights\.h5)")  # .weights.h5: written by dlapps before 2026-12

    def __init__(self, folder: Path):
        super().__init__()
        self.folder = Path(folder)

    def saved(self) -> list[tuple[int, Path]]:
        """The complete states, newest first (a ``.partial`` file is a write that did not finish)."""
        found = []
        for path in self.folder.glob("epoch-*") if self.folder.is_dir() else ():
            match = self.NAME.fullmatch(path.name)
            if match:
                found.append((int(match.group(1)), path))
        legacy, metadata = self.folder / "latest.weights.h5", self.folder / "training_metadata.json"
        if legacy.is_file() and metadata.is_file():  # Keras' BackupAndRestore, which dlapps used before
            found.append((int(json.loads(metadata.read_text())["epoch"]), legacy))
        return sorted(found, reverse=True)

    def latest_epoch(self) -> int:
        """The epoch training will continue after (0: none saved); the one before it where its file is damaged."""
        saved = self.saved()
        return saved[0][0] if saved else 0

    def on_train_begin(self, logs=None):
        saved = self.saved()
        if not saved:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)  # its variables must exist to be loaded
        for epoch, path in saved:
            try:
                self.model.load_weights(path)
            except Exception:  # a damaged file (a disk error, not a kill): the one before it
                continue
            self.model._initial_epoch = epoch  # how Keras' own BackupAndRestore tells fit where to start
            return
        raise UserError(f"the resume state in {self.folder} is damaged; start a new run with the same --config")

    def on_epoch_end(self, epoch, logs=None):
        self.folder.mkdir(parents=True, exist_ok=True)
        save_atomically(self.model, self.folder / f"epoch-{epoch + 1:04d}.keras")
        for _, older in self.saved()[2:]:
            older.unlink(missing_ok=True)
        for leftover in self.folder.glob("*.partial.*"):  # a write a kill interrupted
            leftover.unlink(missing_ok=True)

    def on_train_end(self, logs=None):
        shutil.rmtree(self.folder, ignore_errors=True)


class EpochSeeds(keras.callbacks.Callback):
    """Each epoch's random draws in the model (augmentation, dropout, a GAN's noise) start from the epoch's own
    point of the seed's sequence: Keras keeps its seed generators' state out of saved models, so a resumed run
    would otherwise replay epoch 1's draws, and end with other weights than a run that was never stopped."""

    PER_EPOCH = 1 << 24  # draws each generator may make in an epoch before it reaches the next epoch's

    def on_epoch_begin(self, epoch, logs=None):
        for variable in self.model.variables:
            if variable.path.endswith("seed_generator_state"):
                seed = np.asarray(variable)[0]
                variable.assign(np.array([seed, epoch * self.PER_EPOCH], dtype=variable.dtype))


class BestModel(keras.callbacks.Callback):
    """``checkpoints/best.keras``: the model of the epoch with the best ``monitor`` so far (across --resume:
    the best value so far comes from run.json), replaced only by a complete file."""

    def __init__(self, path: Path, monitor: str, mode: str, best: float | None):
        super().__init__()
        self.path, self.monitor, self.best = Path(path), monitor, best
        self.better = np.less if mode == "min" else np.greater

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and (self.best is None or self.better(float(value), self.best)):
            self.best = float(value)
            save_atomically(self.model, self.path)


def _flush(path: Path) -> None:
    """Onto the disk before the rename that makes it current (a power cut, not only a kill, keeps it)."""
    with open(path, "rb+") as file:
        os.fsync(file.fileno())


class TrainingDiverged(Exception):
    """A loss became NaN or infinite (the training driver turns it into one line, with advice)."""

    def __init__(self, name: str, value: float, where: str):
        self.validation = name.startswith("val_")
        what = "the validation loss" if self.validation else "training diverged"
        super().__init__(f"{what}: {name} became {value} at {where}")
        self.where = where


class StopOnDivergence(keras.callbacks.Callback):
    """Ends training at the first batch whose loss is NaN or infinite, by raising :class:`TrainingDiverged`.

    Raising (not ``stop_training``) matters: a stopped epoch still ends, and its end would save the broken
    weights as the resume state and hand NaN predictions to the evaluation callbacks. It must come first in the
    callback list, so validation losses are checked before anything else sees the epoch's end.
    """

    def __init__(self):
        super().__init__()
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._check(logs, f"epoch {self.epoch + 1}, batch {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, f"the validation of epoch {epoch + 1}")

    def _check(self, logs: dict | None, where: str) -> None:
        for name, value in (logs or {}).items():
            if name.endswith("loss") and not math.isfinite(float(value)):
                raise TrainingDiverged(name, float(value), where)


class TimeLimit(keras.callbacks.Callback):
    """Stops training after the batch that uses up ``minutes`` of wall-clock time (the epoch then ends as usual)."""

    def __init__(self, minutes: float):
        super().__init__()
        self.seconds = minutes * 60

    def on_train_begin(self, logs=None):
        self.started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if time.perf_counter() - self.started >= self.seconds:
            self.model.stop_training = True


def standard_callbacks(run, train_config, mode: str) -> list[keras.callbacks.Callback]:
    """TensorBoard scalars, resume state, best model, and early stopping when asked; ``mode``: whether
    ``train_config.monitor`` is minimised ("min") or maximised ("max")."""
    monitor = train_config.monitor
    callbacks = [
        EpochSeeds(),
        keras.callbacks.TensorBoard(log_dir=str(run.logs), write_graph=False, update_freq="epoch", profile_batch=0),
        # A resumed run keeps the best model so far unless a later epoch beats it.
        BestModel(run.best_model, monitor, mode, best=run.info().get(f"best_{monitor}")),
        RunProgress(run, monitor, mode),
        # Saved every epoch, after the best model and run.json: an interrupted run resumes after its last saved
        # epoch, and what was recorded of an epoch after it (a kill between the two) is recorded again.
        ResumeState(run.backup),
    ]
    if train_config.max_minutes > 0:
        callbacks.append(TimeLimit(train_config.max_minutes))
    if train_config.early_stopping_patience > 0:
        callbacks.append(
            ResumableEarlyStopping(
                run,
                monitor=monitor,
                mode=mode,
                patience=train_config.early_stopping_patience,
                restore_best_weights=True,
                only_when_stopped=train_config.restore_best_weights == "when_stopped",
            )
        )
    return callbacks


def png_batch(png: bytes) -> tf.Tensor:
    """PNG bytes as the one-image batch tf.summary.image takes."""
    return tf.expand_dims(tf.image.decode_png(png, channels=4), 0)


def _hparam_value(value):
    if value is None or isinstance(value, (list, tuple, dict)):
        return str(value)
    return value
