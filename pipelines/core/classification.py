"""Single-label classification: the base of every classifying task (vision, speech, nlp, fraud)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from typing import TypeVar

import keras
import numpy as np
import tensorflow as tf

from pipelines.core import callbacks, evaluation, figures
from pipelines.core.errors import UserError
from pipelines.core.pipeline import LabelledData, Pipeline, one_line
from pipelines.core.rundir import RunDir

log = logging.getLogger(__name__)

C = TypeVar("C")  # the domain's config dataclass: sections data, model, train (TrainConfig), eval (EvalConfig)
D = TypeVar("D", bound=LabelledData)


class ClassificationPipeline(Pipeline[C, D]):
    """Softmax output, cross-entropy, the field's classification metrics and serving outputs."""

    run_files = ("samples/confusion_matrix.png", "samples/pr_curves.png")

    def compile_args(self, config: C, data: D) -> dict:
        k = config.eval.top_k
        if config.train.monitor.endswith(f"top_{k}_accuracy") and k >= len(data.class_names):
            raise UserError(
                f"train.monitor={config.train.monitor}: with {len(data.class_names)} classes top-{k} "
                "accuracy is always 1 and is not logged; monitor val_accuracy or val_loss"
            )
        smoothing = config.train.label_smoothing
        top_k = (
            [keras.metrics.SparseTopKCategoricalAccuracy(k=k, name=f"top_{k}_accuracy")]
            if k < len(data.class_names)
            else []
        )
        return {
            "loss": SmoothedSparseCrossentropy(smoothing, len(data.class_names))
            if smoothing > 0
            else keras.losses.SparseCategoricalCrossentropy(),
            "metrics": [
                keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                *top_k,  # only where k < classes: with two classes top-2 is always 1
            ],
        }

    def metric_directions(self, config: C) -> dict[str, str]:
        return {"accuracy": "max", f"top_{config.eval.top_k}_accuracy": "max"}

    def extra_callbacks(self, config: C, data: D, run: RunDir) -> list[keras.callbacks.Callback]:
        return [
            callbacks.EvaluationCallback(
                data.validation,
                data.class_names,
                run.logs / "validation",
                config.eval.every_epochs,
                config.eval.top_k,
                config.eval.sample_images,
                self.render_samples,
                functools.partial(self.extra_summaries, data=data, split="validation"),
            )
        ]

    def tune_decision(self, model: keras.Model, data: D, config: C) -> dict | None:
        """The decision rule ``eval.decision`` asks for, fitted on the validation split (None = argmax)."""
        if config.eval.decision == "argmax":
            return None
        if len(data.class_names) != 2:
            log.info(
                "eval.decision=%s applies to two classes; %d classes are decided by argmax",
                config.eval.decision,
                len(data.class_names),
            )
            return None
        answers = callbacks.collect(model, data.validation, keep=0)
        counts = np.bincount(answers.y_true, minlength=2)
        positive = self.positive_class(counts)
        if counts[positive] == 0:
            return None  # nothing to tune on
        cost = (config.eval.cost_fp, config.eval.cost_fn) if config.eval.decision == "cost" else None
        threshold = evaluation.tune_threshold(answers.y_true == positive, answers.probabilities[:, positive], cost)
        return {"positive": positive, "threshold": threshold}

    def positive_class(self, counts: np.ndarray) -> int:
        """The class a tuned threshold is about, from the validation class counts: the rarer one (spam), class 1
        when even."""
        return 0 if counts[0] < counts[1] else 1

    def evaluate(self, model: keras.Model, data: D, config: C, run: RunDir, step: int) -> dict:
        info = run.info()
        if "decision" in info:  # tuned once, after training: an exported model and predict keep agreeing
            decision = info["decision"]
        else:
            decision = self.tune_decision(model, data, config)
            run.write_info(decision=decision)
        scored = callbacks.score(
            model,
            data.test,
            data.class_names,
            config.eval.top_k,
            config.eval.sample_images,
            self.render_samples,
            decision,
        )
        writer = tf.summary.create_file_writer(str(run.logs / "eval"))
        self.extra_summaries(writer, step, scored, data=data, split="test")  # may add metrics and figures
        callbacks.write_classification_summaries(writer, step, scored, data.class_names)
        writer.close()
        run.samples.mkdir(exist_ok=True)
        for name, png in scored.figures.items():
            (run.samples / f"{name}.png").write_bytes(png)
        answers = scored.answers
        (run.samples / "pr_curves.png").write_bytes(
            figures.pr_curves_png(answers.y_true, answers.probabilities, data.class_names)
        )
        run.write_metrics({"split": "test", **scored.metrics})
        return scored.metrics

    def extra_summaries(
        self, writer: tf.summary.SummaryWriter, step: int, scored: callbacks.Scored, *, data: D, split: str
    ) -> None:
        """A domain's own TensorBoard summaries of a scored split (speech: misclassified clips as audio). It may add
        metrics and figures to ``scored``: they reach the shared images, metrics.json and samples/."""

    def headline(self, metrics: dict) -> str:
        return evaluation.headline(metrics)

    def read_inputs(self, inputs: list[str], model: keras.Model, config: C) -> np.ndarray:
        """What the predict command line names (files; texts for NLP) -> one model input batch."""
        raise NotImplementedError

    def predict_lines(self, inputs: list[str], model: keras.Model, info: dict, config: C) -> Iterator[str]:
        """One line per input: the input, its class, that class's probability; classes decided as evaluation
        decided them (``info``: the run's run.json)."""
        probabilities = model.predict(self.read_inputs(inputs, model, config), verbose=0)
        for given, row, chosen in zip(inputs, probabilities, evaluation.decide(probabilities, info.get("decision"))):
            yield f"{one_line(given)}\t{info['class_names'][chosen]}\t{row[chosen]:.4f}"

    def render_samples(
        self, inputs: np.ndarray, y_true: np.ndarray, probabilities: np.ndarray, class_names: list[str]
    ) -> bytes | None:
        """PNG of a few examples with their predictions (TensorBoard and samples/); None = none."""
        return None

    @staticmethod
    def sample_titles(y_true, probabilities, class_names) -> tuple[list[str], list[str]]:
        """'true -> predicted probability' per example, green when right and red when wrong."""
        predicted = probabilities.argmax(axis=1)
        titles = [
            f"{class_names[t]} -> {class_names[p]} {probabilities[i, p]:.2f}"
            for i, (t, p) in enumerate(zip(y_true, predicted))
        ]
        return titles, ["green" if t == p else "red" for t, p in zip(y_true, predicted)]

    def classify_outputs(self, probabilities: tf.Tensor, info: dict) -> dict[str, tf.Tensor]:
        """The serving contract's outputs for classification domains; ``info`` is the run's run.json
        (class names, and the tuned decision rule when there is one)."""
        class_names, decision = info["class_names"], info.get("decision")
        probabilities = tf.cast(probabilities, tf.float32)  # compared in float32, as evaluation.decide does
        class_id = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
        if decision:
            positive = decision["positive"]
            reached = probabilities[:, positive] >= tf.constant(decision["threshold"], tf.float32)
            class_id = tf.where(reached, tf.constant(positive, tf.int64), tf.constant(1 - positive, tf.int64))
        return {
            "probabilities": probabilities,
            "class_id": class_id,
            "class_name": tf.gather(tf.constant(class_names), class_id),
        }


@keras.saving.register_keras_serializable(package="dlapps")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy on integer labels with label smoothing (Keras' sparse loss has none)."""

    def __init__(self, smoothing: float, n_classes: int, name: str = "smoothed_sparse_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.smoothing = smoothing
        self.n_classes = n_classes
        self._dense = keras.losses.CategoricalCrossentropy(label_smoothing=smoothing, reduction=None)

    def call(self, y_true, y_pred):
        labels = tf.one_hot(tf.cast(tf.reshape(y_true, [-1]), tf.int32), self.n_classes)
        return self._dense(labels, y_pred)

    def get_config(self):
        return {**super().get_config(), "smoothing": self.smoothing, "n_classes": self.n_classes}
