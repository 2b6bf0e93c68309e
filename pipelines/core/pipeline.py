"""What a domain provides: the checklist the training driver, evaluation, export and CLI use.

A domain's task subclasses :class:`Pipeline` (or, for single-label classification,
:class:`pipelines.core.classification.ClassificationPipeline`), typed by its config dataclass,
fills its registries, and exposes one instance as ``PIPELINE`` in the module that
``pipelines/domains.py`` names. Every hook a verb calls is declared here; nothing in core
knows what a domain's metrics, classes or inputs are called.

Each verb, and the hooks it calls in order:

- ``train``: ``data_overrides`` (for ``--data``), ``check_settings``, ``load_data``,
  ``build_model``, ``compile_args``, ``metric_directions`` (for ``train.monitor``),
  ``extra_callbacks``, then ``evaluate`` and ``headline``.
- ``evaluate``: ``check_settings``, ``load_data`` (its :meth:`Data.identity` must match the
  run's), ``evaluate``, ``headline``.
- ``predict``: ``predict_lines``; ``sample`` (domains registered with ``verb="sample"``):
  ``sample`` and ``write_samples``; ``example_inputs`` are arguments either answers.
- ``export``: ``serving_endpoints``, ``tflite_signature``; ``serving_example`` is an input that
  ``serving_default`` answers (for tests, clients and demo pages).

``example_data`` and ``example_settings`` give the smallest real run of the task, offline:
the contract tests in ``tests/contract/`` train every registered task with them.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import keras
import numpy as np
import tensorflow as tf

from pipelines.core.errors import UserError
from pipelines.core.names import shown
from pipelines.core.registry import Registry
from pipelines.core.rundir import RunDir

# name -> (tf function, input signature) of one SavedModel serving endpoint
Endpoints = dict[str, tuple[Callable, list[tf.TensorSpec]]]

C = TypeVar("C")  # a domain's config dataclass
D = TypeVar("D", bound="Data")  # the data its loader returns

DIRECTIONS = ("min", "max")
# Where most tasks' example_settings start: a few steps of small batches, enough to exercise every part.
A_FEW_STEPS = ("train.epochs=2", "train.steps_per_epoch=3", "train.batch_size=16")


@dataclasses.dataclass
class Data:
    """The splits a domain's loader hands the training driver, batched as ``(inputs, target)``."""

    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    input_shape: tuple  # one example as the model sees it (() for raw strings)
    sizes: dict[str, int]  # examples per split
    source: str  # where the data came from, for the console and run.json
    fingerprint: str  # identifies every split's examples: evaluate and --resume refuse other data

    def describe(self) -> str:
        counts = " / ".join(f"{self.sizes[s]:,} {s}" for s in ("train", "validation", "test"))
        return f"{self.source}: {counts}, {self.input_summary()}"

    def input_summary(self) -> str:
        return f"input {self.input_shape}"

    def identity(self) -> dict[str, Any]:
        """What run.json records of this data and what evaluate and --resume require unchanged."""
        return {"data_fingerprint": self.fingerprint}

    def fit_args(self) -> dict[str, Any]:
        """Keyword arguments for ``model.fit`` that come from the data (class weights)."""
        return {}


@dataclasses.dataclass
class LabelledData(Data):
    """Data whose examples carry one of ``class_names`` (classifiers, class-conditional generators)."""

    class_names: list[str] = dataclasses.field(default_factory=list)
    class_weight: dict[int, float] | None = None  # passed to fit: imbalanced classes weighted up

    def describe(self) -> str:
        counts = " / ".join(f"{self.sizes[s]:,} {s}" for s in ("train", "validation", "test"))
        return f"{self.source}: {counts}, {len(self.class_names)} classes, {self.input_summary()}"

    def identity(self) -> dict[str, Any]:
        return {"class_names": self.class_names, **super().identity()}  # the plainer message first

    def fit_args(self) -> dict[str, Any]:
        return {"class_weight": self.class_weight}


def one_line(text: str) -> str:
    """An input as one printable, tab-free line of predict's output: tabs and newlines (texts hold them) escaped,
    and a file name's bytes that are not UTF-8 :func:`~pipelines.core.names.shown` (after the backslashes are
    doubled, so a ``\\xNN`` it writes is never a name's own)."""
    return shown(text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r"))


def csv_line(fields: list) -> str:
    """One row of CSV output (predict's tables), quoted where a field needs it."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(fields)
    return buffer.getvalue()


def path_or_tfds_overrides(data_arg: str, path_source: str | None = None) -> list[str]:
    """``--data tfds:NAME`` or ``--data PATH`` as config overrides (``path_source``: the source a path means).

    Paths are stored absolute, so evaluate/--resume/--config work from any directory.
    """
    if data_arg.startswith("tfds:"):
        return ["data.source=tfds", f"data.path={data_arg[5:]}"]
    path = Path(data_arg).expanduser()
    source = [f"data.source={path_source}"] if path_source else []
    return [*source, f"data.path={path.resolve() if path.exists() else path}"]


class Pipeline(Generic[C, D]):
    """One task of a domain: config, data, model, metrics and serving. Subclasses fill the class attributes."""

    domain: ClassVar[str]
    task: ClassVar[str]  # the --task name (pipelines/domains.py lists a domain's tasks)
    config_class: ClassVar[type]
    sources: ClassVar[Registry]
    models: ClassVar[Registry]
    predict_usage: ClassVar[str] = "FILE..."  # what `predict` (or `sample`) takes, for the hints the CLI prints
    # Run-directory files beyond the ones every run has (pipelines/core/rundir.py): the contract tests check them.
    run_files: ClassVar[tuple[str, ...]] = ()
    # The smallest config that still exercises every part (a few steps of a narrow model): `--set` items.
    example_settings: ClassVar[tuple[str, ...]] = ()

    # --- settings and data ------------------------------------------------------------------------

    def data_overrides(self, data_arg: str) -> list[str]:
        """``--data X`` as config overrides (the domain decides what a path means)."""
        return [f"data.path={data_arg}"]

    def check_settings(self, config: C) -> None:
        """Settings that are wrong whatever the data: a :class:`UserError` before any data is read."""

    def load_data(self, config: C) -> D:
        raise NotImplementedError

    def example_data(self, folder: Path) -> list[str]:
        """``train`` arguments for a small real data set, offline: written into ``folder`` (``["--data", path]``),
        or ``[]`` where the embedded default is small and needs no network."""
        return []

    def example_inputs(self, folder: Path) -> list[str]:
        """Arguments for ``predict`` (files written into ``folder``, or texts) or ``sample`` (its options) that a
        model trained on :meth:`example_data` answers."""
        raise NotImplementedError

    # --- model and training -------------------------------------------------------------------------

    def build_model(self, config: C, data: D) -> keras.Model:
        return self.models.get(config.model.name)(config.model, data)

    def compile_args(self, config: C, data: D) -> dict:
        """Keyword arguments for ``model.compile`` beside the optimizer (loss, metrics, ...)."""
        raise NotImplementedError

    def metric_directions(self, config: C) -> dict[str, str]:
        """Each metric the model logs -> "min" or "max", by its log name without ``val_`` (losses need no entry:
        a name ending in ``loss`` is minimised)."""
        return {}

    def monitor_mode(self, config: C) -> str:
        """Whether ``train.monitor`` is minimised or maximised; a monitor nothing logs is a :class:`UserError`."""
        monitor = config.train.monitor
        name = monitor.removeprefix("val_")
        directions = self.metric_directions(config)
        if name in directions:
            if directions[name] not in DIRECTIONS:
                raise ValueError(f"{self.domain}: metric '{name}' has direction {directions[name]!r}")
            return directions[name]
        if name.endswith("loss"):
            return "min"
        known = ", ".join(f"val_{n}" for n in ["loss", *directions])
        raise UserError(f"train.monitor '{monitor}' is not a value {self.domain} training logs; choose one of: {known}")

    def extra_callbacks(self, config: C, data: D, run: RunDir) -> list[keras.callbacks.Callback]:
        """Domain callbacks beside the shared ones (e.g. evaluation summaries each epoch)."""
        return []

    # --- evaluation ---------------------------------------------------------------------------------

    def evaluate(self, model: keras.Model, data: D, config: C, run: RunDir, step: int) -> dict:
        """Test-split metrics, written to metrics.json, samples/ and ``logs/eval``; returned too."""
        raise NotImplementedError

    def headline(self, metrics: dict) -> str:
        """The key figures as one line, for the console."""
        raise NotImplementedError

    # --- using a trained model ----------------------------------------------------------------------

    def predict_lines(self, inputs: list[str], model: keras.Model, info: dict, config: C) -> Iterator[str]:
        """``predict``'s output: one tab-separated line per input (``info``: the run's run.json)."""
        raise NotImplementedError

    def sample(self, model: keras.Model, info: dict, count: int, seed: int, label: int | None) -> np.ndarray:
        """``sample``'s examples (domains registered with ``verb="sample"``): ``count`` of them from seed, seed + 1,
        ..., of class ``label`` where the model is conditional."""
        raise NotImplementedError

    def write_samples(self, examples: np.ndarray, out: Path, out_dir: Path | None, seed: int) -> list[Path]:
        """``sample``'s files: an overview at ``out`` and, with ``out_dir``, one file per example."""
        raise NotImplementedError

    # --- serving ------------------------------------------------------------------------------------

    def serving_endpoints(self, model: keras.Model, info: dict, config: C) -> Endpoints:
        """The SavedModel signatures; ``info`` is the run's run.json (class names, decision rule)."""
        raise NotImplementedError

    def serving_example(self, info: dict, config: C) -> dict[str, np.ndarray]:
        """An input ``serving_default`` answers, by input name (batches of two where the input is batched)."""
        raise NotImplementedError

    def tflite_signature(self) -> str | None:
        """The SavedModel signature TFLite converts (one without string ops), or None."""
        return None
