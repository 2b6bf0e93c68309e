"""The fraud domain: card transactions -> fraud probability, on imbalanced data split in time.

The model takes raw columns (its preprocessing is adapted on the training split and saved in
it); the threshold behind ``is_fraud`` is tuned on the validation split; the test split is
scored with the field's metrics (ROC-AUC, average precision, card precision@100).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import keras
import numpy as np
import tensorflow as tf
from sklearn import metrics as skm

from pipelines.core import figures
from pipelines.core.classification import ClassificationPipeline
from pipelines.core.config import (
    Count,
    Dropout,
    EvalConfig,
    Fraction,
    NonNegative,
    OneOf,
    Range,
    Seed,
    Small,
    TrainConfig,
    Width,
)
from pipelines.core.errors import UserError
from pipelines.core.files import checked_file
from pipelines.core.pipeline import Endpoints, LabelledData, csv_line
from pipelines.core.rundir import RunDir
from pipelines.core.stages import batched
from pipelines.core.tracking import TrackConfig
from pipelines.fraud import data as fraud_data
from pipelines.fraud import models as fraud_models
from pipelines.fraud import protocol, table
from pipelines.fraud.models import Feature
from pipelines.fraud.table import Table

log = logging.getLogger(__name__)
CLASS_NAMES = ["legitimate", "fraud"]
IMBALANCE = ("class_weight", "oversample", "none")
MISSING = ("error", "median", "zero")
LOSSES = ("crossentropy", "focal")
Days = Annotated[int, Range(1, 3_650)]
Population = Annotated[int, Range(10, 1_000_000)]


@dataclasses.dataclass
class FraudDataConfig:
    source: str = "auto"  # auto: csv with --data, the simulator without | csv | simulator
    path: str | None = None
    label_column: str = "auto"  # auto: TX_FRAUD, Class, is_fraud, isFraud, fraud or label
    time_column: str = "auto"  # auto: the first datetime column (time split) | NAME | none (stratified split)
    customer_column: str = "auto"  # auto: CUSTOMER_ID, customer_id, card_id, cc_num... | NAME | none
    features: list[str] = dataclasses.field(default_factory=list)  # empty: every column not excluded below
    # Leakage and absolute time are never features (identifiers such as *_ID are left out on their own).
    exclude_columns: list[str] = dataclasses.field(
        default_factory=lambda: ["TX_FRAUD_SCENARIO", "TX_TIME_SECONDS", "TX_TIME_DAYS"]
    )
    categorical_columns: list[str] = dataclasses.field(default_factory=list)  # read as text whatever they hold
    # empty/NaN feature values: error | median (training split) | zero
    missing: Annotated[str, OneOf(*MISSING)] = "error"
    # Time split (the handbook's protocol), anchored at the last day of the data:
    train_days: Days = 7
    validation_days: Days = 1  # the last training days, held out to stop training and tune the threshold
    delay_days: Annotated[int, Range(0, 3_650)] = 7  # labels of these days are not known yet when the model goes live
    test_days: Days = 7
    # Stratified split (no datetime column):
    test_fraction: Fraction = 0.2
    validation_fraction: Fraction = 0.1
    split_seed: Seed = 0
    # none | class_weight (balanced) | oversample (half of each training batch fraud). none by default: on the
    # handbook data's validation day it gave the best average precision (benchmarks/README.md); the tuned
    # threshold, not the loss, decides how many transactions are flagged.
    imbalance: Annotated[str, OneOf(*IMBALANCE)] = "none"
    # The simulator (no --data):
    # At least 10 of each: the simulator compromises 3 customers and 2 terminals a day.
    customers: Population = 5000
    terminals: Population = 10_000
    days: Days = 60
    simulation_seed: Seed = 0


@dataclasses.dataclass
class FraudModelConfig:
    name: str = "mlp"
    width: Width = 64
    depth: Small = 2
    dropout: Dropout = 0.3
    l2: NonNegative = 1e-4
    log1p: Annotated[str, OneOf("auto", "none")] = "auto"  # auto: non-negative, long-tailed numbers (amounts)
    categories: Count = 100  # categorical columns: the most frequent training values kept (others: one bucket)
    loss: Annotated[str, OneOf(*LOSSES)] = "crossentropy"
    focal_gamma: Annotated[float, Range(0, 100)] = 2.0
    # sequence model: the customer's last N transactions, the scored one last
    sequence_length: Annotated[int, Range(2, 1_000)] = 5


@dataclasses.dataclass
class FraudConfig:
    data: FraudDataConfig = dataclasses.field(default_factory=FraudDataConfig)
    model: FraudModelConfig = dataclasses.field(default_factory=FraudModelConfig)
    train: TrainConfig = dataclasses.field(
        default_factory=lambda: TrainConfig(
            epochs=30,
            batch_size=512,
            optimizer="adam",
            learning_rate=3e-3,
            schedule="constant",
            early_stopping_patience=5,
            monitor="val_pr_auc",
        )
    )
    eval: EvalConfig = dataclasses.field(default_factory=lambda: EvalConfig(decision="f1", sample_images=0))
    track: TrackConfig = dataclasses.field(default_factory=TrackConfig)


@dataclasses.dataclass
class FraudData(LabelledData):
    features: list = dataclasses.field(default_factory=list)  # [Feature]
    train_columns: dict = dataclasses.field(default_factory=dict)  # column -> training values (adapting)
    cards: dict = dataclasses.field(default_factory=dict)  # split -> (day, customer) per row, for card precision@k

    def input_summary(self) -> str:
        return f"{len(self.features)} raw columns"


def input_name(column: str) -> str:
    """A column name as a Keras input / signature name: letters, digits and underscores, starting with a letter."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", column.strip())
    return name if re.match(r"[A-Za-z]", name) else f"column_{name}"


def wants_log1p(values: np.ndarray, setting: str) -> bool:
    """Magnitudes -- non-negative, beyond 1, more than two values: amounts and counts, not flags, rates or signed
    scores. On a log scale a dense layer compares them by ratio (an amount five times the customer's average)."""
    values = values[~np.isnan(values)]
    return bool(
        setting == "auto"
        and len(values) > 2
        and values.min() >= 0
        and values.max() > 1
        and len(np.unique(values[:10_000])) > 2
    )


def describe_features(t: Table, train_rows: np.ndarray, r: fraud_data.Roles, config: FraudConfig) -> list[Feature]:
    """Each feature column as the model will see it, decided on the training rows only."""
    described, names = [], {}
    for column in r.features:
        name = input_name(column)
        if name in names:
            raise UserError(f"columns '{names[name]}' and '{column}' both become input '{name}'; rename one")
        names[name] = column
        feature = Feature(column, name, t.kinds[column])
        if feature.kind == "numeric":
            values = t.numbers(column)[train_rows]
            feature.log1p = wants_log1p(values, config.model.log1p)
            if config.data.missing != "error":
                median = np.nanmedian(values) if not np.isnan(values).all() else 0.0
                feature.fill = float(median) if config.data.missing == "median" else 0.0
        elif feature.kind == "categorical":
            found, counts = np.unique(t.columns[column][train_rows].astype(str), return_counts=True)
            feature.vocabulary = found[np.argsort(-counts, kind="stable")][: config.model.categories].tolist()
        described.append(feature)
    return described


def check_values(t: Table, features: list[Feature], missing: str) -> None:
    """Every value the model will read: dates that parse, and numbers present unless an imputation was asked for."""
    for feature in features:
        if feature.kind == "datetime":
            table.datetimes(t, feature.column)
        elif feature.kind == "numeric" and missing == "error" and np.isnan(t.numbers(feature.column)).any():
            row = int(np.flatnonzero(np.isnan(t.numbers(feature.column)))[0])
            raise UserError(
                f"{t.name}, line {t.line(row)}, column '{feature.column}': no value; fill it in, or train "
                "with --set data.missing=median (or zero) to impute"
            )


def model_inputs(
    t: Table, features: list[Feature], rows: np.ndarray, history: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """The model's inputs for some rows: [n, 1] float32 numbers or strings per feature, or with ``history``
    ([table rows, N], sequence models) each row's customer's last N transactions, [n, N]."""
    take = rows[:, None] if history is None else history[rows]
    return {
        f.input_name: t.numbers(f.column)[take].astype(np.float32)
        if f.kind == "numeric"
        else t.columns[f.column][take].astype(str)
        for f in features
    }


def histories(t: Table, r: fraud_data.Roles, config: FraudConfig) -> np.ndarray | None:
    """Sequence models: each transaction's customer history (by the time column, else by position)."""
    if config.model.name not in fraud_models.SEQUENCES:
        return None
    if r.customer is None:
        raise UserError(
            f"{t.name}: the {config.model.name} model needs a customer or card column to follow; "
            "name it with --set data.customer_column=NAME"
        )
    order = table.datetimes(t, r.time).astype(np.int64) if r.time else np.arange(len(t))
    return fraud_data.history_rows(fraud_data.customer_codes(t, r), order, config.model.sequence_length)


def fingerprint(t: Table, features: list[Feature], labels: np.ndarray, rows: dict[str, np.ndarray]) -> str:
    """A digest of every split's rows: feature values and labels, in order."""
    digest = hashlib.sha256()
    for split in fraud_data.SPLITS:
        digest.update(labels[rows[split]].tobytes())
        for f in features:
            if f.kind == "numeric":
                digest.update(t.numbers(f.column)[rows[split]].tobytes())
            else:
                digest.update("\0".join(map(str, t.columns[f.column][rows[split]])).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def class_weight(labels: np.ndarray, setting: str) -> dict[int, float] | None:
    """Balanced weights n / (2 * count) when data.imbalance=class_weight."""
    if setting != "class_weight":
        return None
    counts = np.bincount(labels, minlength=2)
    return {c: float(len(labels) / (2 * counts[c])) for c in (0, 1)}


class FraudPipeline(ClassificationPipeline[FraudConfig, FraudData]):
    domain = "fraud"
    task = "detect"
    config_class = FraudConfig
    sources = fraud_data.SOURCES
    models = fraud_models.MODELS
    predict_usage = "transactions.csv"
    run_files = (*ClassificationPipeline.run_files, "samples/roc_curve.png", "samples/score_histogram.png")
    # The simulator at a size that trains in seconds: 21 days for the time split, ~600 transactions a day.
    example_settings = (
        "data.customers=300",
        "data.terminals=600",
        "data.days=24",
        "train.epochs=2",
        "train.batch_size=256",
        "model.width=8",
        "model.depth=1",
    )

    def data_overrides(self, data_arg: str) -> list[str]:
        path = Path(data_arg).expanduser()
        return ["data.source=csv", f"data.path={path.resolve() if path.exists() else path}"]

    def check_settings(self, config: FraudConfig) -> None:
        """Settings that are wrong whatever the data: reported before the data is read."""
        super().check_settings(config)
        if config.model.name in fraud_models.UNSUPERVISED and config.data.imbalance != "none":
            raise UserError(
                f"the {config.model.name} model trains on legitimate transactions only; "
                f"data.imbalance={config.data.imbalance} does not apply (set it to none)"
            )

    def load_data(self, config: FraudConfig) -> FraudData:
        d = config.data
        t = self.sources.get(d.source if d.source != "auto" else ("csv" if d.path else "simulator"))(d)
        r = fraud_data.roles(t, d)
        labels = table.labels(t, r.label)
        split = fraud_data.time_split(t, r, labels, d) if r.time else fraud_data.stratified(labels, d)
        fraud_data.check_classes(labels, split)
        rows = split.rows
        described = describe_features(t, rows["train"], r, config)
        check_values(t, described, d.missing)
        log.info(
            "columns: label %s; features %s; not features: %s",
            r.label,
            ", ".join(f.describe() for f in described),
            ", ".join(f"{c or '(unnamed)'} ({why})" for c, why in r.excluded.items() if why != "label") or "none",
        )
        log.info("%s", split.description)
        frauds = "/".join(str(labels[rows[s]].sum()) for s in fraud_data.SPLITS)
        if config.model.name in fraud_models.UNSUPERVISED:
            rows = {**rows, "train": rows["train"][labels[rows["train"]] == 0]}  # learns what legitimate looks like
        history = histories(t, r, config)
        datasets = {
            s: self.dataset(
                model_inputs(t, described, rows[s], history), labels[rows[s]], config, training=s == "train"
            )
            for s in fraud_data.SPLITS
        }
        sizes = {s: len(rows[s]) for s in fraud_data.SPLITS}
        if d.imbalance == "oversample":  # an epoch: every legitimate row once, as many fraud draws
            sizes["train"] = 2 * int((labels[rows["train"]] == 0).sum())
        weights = (
            None if config.model.name in fraud_models.UNSUPERVISED else class_weight(labels[rows["train"]], d.imbalance)
        )
        cards = {}
        if r.customer and split.days is not None:
            codes = fraud_data.customer_codes(t, r)
            cards = {s: (split.days[rows[s]], codes[rows[s]]) for s in fraud_data.SPLITS}
        return FraudData(
            train=datasets["train"],
            validation=datasets["validation"],
            test=datasets["test"],
            input_shape=(len(described),),
            sizes=sizes,
            source=f"{t.name}, {split.description.split(':')[0]}, frauds {frauds}",
            fingerprint=fingerprint(t, described, labels, rows),
            class_names=CLASS_NAMES,
            class_weight=weights,
            features=described,
            train_columns={f.column: model_inputs(t, [f], rows["train"])[f.input_name][:, 0] for f in described},
            cards=cards,
        )

    def dataset(self, inputs: dict, labels: np.ndarray, config: FraudConfig, training: bool) -> tf.data.Dataset:
        settings = dict(batch_size=config.train.batch_size, seed=config.train.seed, shuffle_buffer=len(labels))
        if not (training and config.data.imbalance == "oversample"):
            return batched(tf.data.Dataset.from_tensor_slices((inputs, labels)), training=training, **settings)
        # Half of every batch drawn from the frauds (repeated), until each legitimate row was seen once.
        parts = [
            tf.data.Dataset.from_tensor_slices(({k: v[labels == c] for k, v in inputs.items()}, labels[labels == c]))
            .cache()
            .shuffle(int((labels == c).sum()), seed=config.train.seed, reshuffle_each_iteration=True)
            for c in (0, 1)
        ]
        mixed = tf.data.Dataset.sample_from_datasets(
            [parts[0], parts[1].repeat()], weights=[0.5, 0.5], seed=config.train.seed, stop_on_empty_dataset=True
        )
        return batched(mixed, training=False, cache=False, **settings)

    def build_model(self, config: FraudConfig, data: FraudData) -> keras.Model:
        steps = config.model.sequence_length if config.model.name in fraud_models.SEQUENCES else 0
        try:
            inputs, encoded = fraud_models.feature_inputs(data.features, data.train_columns, steps)
            return self.models.get(config.model.name)(config.model, inputs, encoded)
        except ValueError as err:  # Keras: 'The name "code" is used 2 times in the model'
            if "is used" not in str(err):
                raise
            raise UserError(
                f"a column name clashes with a layer of the {config.model.name} model ({err}); rename the column"
            ) from None

    def metric_directions(self, config: FraudConfig) -> dict[str, str]:
        return {**super().metric_directions(config), "pr_auc": "max"}

    def compile_args(self, config: FraudConfig, data: FraudData) -> dict:
        args = super().compile_args(config, data)
        if config.model.loss == "focal":
            args["loss"] = fraud_models.SparseFocalCrossentropy(config.model.focal_gamma)
        args["metrics"] = [*args["metrics"], fraud_models.FraudPRAUC()]
        return args

    def positive_class(self, counts: np.ndarray) -> int:
        return 1  # the threshold is on p(fraud), even where a sample holds more frauds than legitimate rows

    def extra_summaries(self, writer, step, scored, *, data: FraudData, split: str) -> None:
        """The field's metrics (average precision, card precision@100) and ROC / score-histogram figures."""
        y, fraud_score = scored.answers.y_true, scored.answers.probabilities[:, 1]
        found = {}
        if 0 < y.sum() < len(y):
            found["roc_auc"] = float(skm.roc_auc_score(y, fraud_score))
            found["average_precision"] = float(skm.average_precision_score(y, fraud_score))
            scored.figures["roc_curve"] = figures.roc_curve_png(y, fraud_score)
        if split in data.cards:
            days, customers = data.cards[split]
            found["card_precision_at_100"], per_day = protocol.card_precision_at_k(days, customers, y, fraud_score, 100)
            found["card_precision_at_100_per_day"] = per_day
        threshold = (scored.metrics.get("decision") or {}).get("threshold")
        scored.figures["score_histogram"] = figures.score_histogram_png(y, fraud_score, CLASS_NAMES, threshold)
        scored.metrics.update(found)
        with writer.as_default(step=step):
            for key in ("average_precision", "card_precision_at_100"):
                if key in found:
                    tf.summary.scalar(f"evaluation/{key}", found[key])
        writer.flush()

    def headline(self, metrics: dict) -> str:
        parts = [
            f"{key} {metrics[key]:.4f}"
            for key in ("roc_auc", "average_precision", "card_precision_at_100")
            if key in metrics
        ]
        fraud = metrics["per_class"]["fraud"]
        decision = metrics.get("decision")
        at = f" at threshold {decision['threshold']:.3f}" if decision else ""
        parts.append(
            f"fraud precision {fraud['precision']:.3f} / recall {fraud['recall']:.3f} / F1 {fraud['f1']:.3f}{at}"
        )
        return ", ".join(parts) + f" on {metrics['examples']:,} transactions ({fraud['support']} frauds)"

    def serving_endpoints(self, model: keras.Model, info: dict, config: FraudConfig) -> Endpoints:
        steps = model.inputs[0].shape[1]  # 1, or a sequence model's transactions per customer
        shape = [None] if steps == 1 else [None, steps]
        specs = {
            i.name: tf.TensorSpec(shape, tf.string if i.dtype == "string" else tf.float32, name=i.name)
            for i in model.inputs
        }

        def score(columns):
            if steps == 1:
                columns = {k: tf.expand_dims(v, -1) for k, v in columns.items()}
            outputs = self.classify_outputs(model(columns, training=False), info)
            return {"fraud_probability": outputs["probabilities"][:, 1], "is_fraud": tf.equal(outputs["class_id"], 1)}

        return {"serving_default": (score, [specs])}

    def example_inputs(self, folder: Path) -> list[str]:
        """A CSV file of two days of simulated transactions, every column the simulator makes."""
        settings = FraudDataConfig(customers=30, terminals=60, days=2, simulation_seed=1)
        columns = fraud_data.simulated(settings).columns
        path = folder / "transactions.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            writer.writerows(zip(*columns.values()))
        return [str(path)]

    def serving_example(self, info: dict, config: FraudConfig) -> dict[str, np.ndarray]:
        """Two transactions: every column the model reads, with a value of its kind (a sequence model: each
        customer's last transactions, the same one repeated)."""
        values = {"numeric": [12.5, 830.0], "categorical": ["a", "b"], "datetime": ["2018-08-01 09:15:00"] * 2}
        example = {
            c["input"]: np.array(values[c["kind"]], np.float32 if c["kind"] == "numeric" else object)
            for c in info["columns"]
        }
        if config.model.name in fraud_models.SEQUENCES:
            example = {k: np.repeat(v[:, None], config.model.sequence_length, axis=1) for k, v in example.items()}
        return example

    def evaluate(self, model: keras.Model, data: FraudData, config: FraudConfig, run: RunDir, step: int) -> dict:
        metrics = super().evaluate(model, data, config, run, step)
        # What predict must read from a new file: each input's column and kind, as training read them.
        run.write_info(columns=[{"column": f.column, "input": f.input_name, "kind": f.kind} for f in data.features])
        return metrics

    def predict_lines(self, inputs: list[str], model: keras.Model, info: dict, config: FraudConfig) -> Iterator[str]:
        """CSV on stdout: file, line, fraud_probability, is_fraud for every transaction of every file."""
        threshold = np.float32((info.get("decision") or {}).get("threshold", 0.5))
        for path in inputs:  # every file, before the first line of output
            checked_file(path, "data file", "; give CSV files of transactions (plain or .gz)")
        yield csv_line(["file", "line", "fraud_probability", "is_fraud"])
        for path in inputs:
            t = self.read_for_prediction(path, info, config)
            features = [Feature(c["column"], c["input"], c["kind"]) for c in info["columns"]]
            check_values(t, features, config.data.missing)
            history = None
            if config.model.name in fraud_models.SEQUENCES:  # the customers' histories, from the file itself
                history = histories(t, fraud_data.roles(t, config.data, labelled=False), config)
            columns = tf.data.Dataset.from_tensor_slices(model_inputs(t, features, np.arange(len(t)), history))
            fraud = model.predict(columns.batch(1024), verbose=0)[:, 1]
            for row, p in enumerate(fraud):
                yield csv_line([path, t.line(row), f"{p:.6f}", int(np.float32(p) >= threshold)])

    def read_for_prediction(self, path: str, info: dict, config: FraudConfig) -> Table:
        """A file to score, its model columns read with the kinds training gave them."""
        if "columns" not in info:
            raise UserError("the run has not been evaluated yet; finish it with dlapps fraud train --resume RUN")
        kinds = {c["column"]: c["kind"] for c in info["columns"]}
        t = table.read_table(path, kinds)
        absent = [column for column in kinds if column not in t.columns]
        if absent:
            raise UserError(
                f"{path}: the model needs column(s) {', '.join(map(repr, absent))}; the file has: "
                f"{', '.join(map(repr, t.columns))}"
            )
        return t


PIPELINE = FraudPipeline()
