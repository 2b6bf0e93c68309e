"""What a domain provides: the checklist the training driver, evaluation, export and CLI use.

A domain subclasses :class:`Pipeline` (or :class:`ClassificationPipeline`), fills its
registries, and exposes one instance as ``PIPELINE`` in its ``pipeline`` module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from pipelines.core.registry import Registry
from pipelines.core.rundir import RunDir

# name -> (tf function, input signature) of one SavedModel serving endpoint
Endpoints = dict[str, tuple[Callable, list[tf.TensorSpec]]]


@dataclasses.dataclass
class Data:
    """The splits a domain's loader hands the training driver, batched as ``(inputs, label)``."""

    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    class_names: list[str]
    input_shape: tuple  # one example as the model sees it
    sizes: dict[str, int]  # examples per split
    source: str  # where the data came from, for the console and run.json
    class_weight: dict[int, float] | None = None  # passed to fit: imbalanced classes weighted up
    fingerprint: str | None = None  # identifies every split's examples: evaluate and --resume refuse other data

    def describe(self) -> str:
        counts = " / ".join(f"{self.sizes[s]:,} {s}" for s in ("train", "validation", "test"))
        return f"{self.source}: {counts}, {len(self.class_names)} classes, {self.input_summary()}"

    def input_summary(self) -> str:
        return f"input {self.input_shape}"


def one_line(text: str) -> str:
    """An input as one tab-free line of predict's output (texts may hold tabs and newlines)."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def path_or_tfds_overrides(data_arg: str, path_source: str | None = None) -> list[str]:
    """``--data tfds:NAME`` or ``--data PATH`` as config overrides (``path_source``: the source a path means).

    Paths are stored absolute, so evaluate/--resume/--config work from any directory.
    """
    if data_arg.startswith("tfds:"):
        return ["data.source=tfds", f"data.path={data_arg[5:]}"]
    path = Path(data_arg).expanduser()
    source = [f"data.source={path_source}"] if path_source else []
    return [*source, f"data.path={path.resolve() if path.exists() else path}"]


class Pipeline:
    """A domain: config, data, model, metrics and serving. Subclasses fill the class attributes."""

    domain: str
    task: str | None = None  # in a domain of several tasks (pipelines/domains.py TASKS): which one this is
    config_class: type
    sources: Registry
    models: Registry
    predict_usage = "FILE..."  # what `predict` takes, for the hints the CLI prints

    def data_overrides(self, data_arg: str) -> list[str]:
        """``--data X`` as config overrides (the domain decides what a path means)."""
        return [f"data.path={data_arg}"]

    def load_data(self, config: Any) -> Data:
        raise NotImplementedError

    def build_model(self, config: Any, data: Data) -> keras.Model:
        return self.models.get(config.model.name)(config.model, data)

    def compile_args(self, config: Any, data: Data) -> dict:
        raise NotImplementedError

    def extra_callbacks(self, config: Any, data: Data, run: RunDir) -> list[keras.callbacks.Callback]:
        """Domain callbacks beside the shared ones (e.g. evaluation summaries each epoch)."""
        return []

    def evaluate(self, model: keras.Model, data: Data, config: Any, run: RunDir, step: int) -> dict:
        """Test-split metrics, written to metrics.json, samples/ and ``logs/eval``; returned too."""
        raise NotImplementedError

    def headline(self, metrics: dict) -> str:
        """The key figures as one line, for the console."""
        raise NotImplementedError

    def serving_endpoints(self, model: keras.Model, info: dict, config: Any) -> Endpoints:
        """The SavedModel signatures; ``info`` is the run's run.json (class names, decision rule)."""
        raise NotImplementedError

    def tflite_signature(self) -> str | None:
        """The SavedModel signature TFLite converts (one without string ops), or None."""
        return None

    def read_inputs(self, inputs: list[str], model: keras.Model, config: Any) -> np.ndarray:
        """What the predict command line names (files; texts for NLP) -> one model input batch."""
        raise NotImplementedError

    def predict_lines(self, inputs: list[str], model: keras.Model, info: dict, config: Any) -> Iterator[str]:
        """``predict``'s output: one tab-separated line per input (the input, its class, that class's
        probability), classes decided as evaluation decided them (``info``: the run's run.json)."""
        from pipelines.core.evaluation import decide

        probabilities = model.predict(self.read_inputs(inputs, model, config), verbose=0)
        for given, row, chosen in zip(inputs, probabilities, decide(probabilities, info.get("decision"))):
            yield f"{one_line(given)}\t{info['class_names'][chosen]}\t{row[chosen]:.4f}"

    def render_samples(
        self, inputs: np.ndarray, y_true: np.ndarray, probabilities: np.ndarray, class_names: list[str]
    ) -> bytes | None:
        """PNG of a few examples with their predictions (TensorBoard and samples/); None = none."""
        return None
