"""The forecast domain: a time series (or many, in long format) -> the next ``horizon`` steps, with intervals.

Splits are by time only: per series, the last steps are the test part, those before it the validation part.
Training windows (``context`` values -> ``horizon`` values) end inside the training part; the test part is a
rolling-origin backtest, a forecast from every ``eval.stride``-th origin, scored against naive, seasonal-naive
and drift forecasts of the same windows. The model works on transformed, per-series scaled values
(``scaling.py``); evaluation, predict and the SavedModel turn its quantiles back into the original units with
the same TensorFlow ops.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import keras
import numpy as np
import tensorflow as tf

from pipelines.core.callbacks import png_batch
from pipelines.core.config import Fraction, OneOf, Range, TrainConfig
from pipelines.core.errors import UserError
from pipelines.core.files import checked_file
from pipelines.core.fingerprint import digest
from pipelines.core.layers import Whitening
from pipelines.core.pipeline import A_FEW_STEPS, Data, Endpoints, Pipeline, csv_line
from pipelines.core.registry import Registry
from pipelines.core.rundir import RunDir
from pipelines.core.stages import batched
from pipelines.core.tracking import TrackConfig
from pipelines.forecast import backtest, plots, scaling, series
from pipelines.forecast.models import MODELS, ForecastModelConfig, Layout, PinballLoss, combined

log = logging.getLogger(__name__)
SOURCES = Registry("forecast data source")
FILLS = ("interpolate", "error")
Steps = Annotated[int, Range(1, 1_000_000)]


@dataclasses.dataclass
class ForecastDataConfig:
    source: str = "auto"  # auto: csv with --data, else statsmodels | csv | statsmodels
    path: str | None = None  # a CSV file (plain or .gz), or a statsmodels data set: co2 (default), nile, sunspots
    time_column: str = "auto"  # auto: ds, date, datetime, timestamp, time, ... else the first column
    target: str = "auto"  # auto: y, target, value or close (any case), else the only numeric column
    series_column: str = "auto"  # long format, one model for all series: auto: unique_id, series_id, ... | none
    horizon: Steps | None = None  # steps to forecast (None: one season)
    # steps the model sees (None: the larger of two seasons and four horizons)
    context: Annotated[int, Range(2, 1_000_000)] | None = None
    season: Steps | None = None  # steps per cycle, for seasonal naive and MASE (None: from the frequency)
    # log_diff: returns; forecasts are shown in the original units
    transform: Annotated[str, OneOf(*scaling.TRANSFORMS)] = "none"
    # missing steps and empty values: interpolate (linearly in time) | error
    fill: Annotated[str, OneOf(*FILLS)] = "interpolate"
    # Covariate columns: known in advance (calendar parts, planned prices: predict needs them for the steps
    # to forecast, in rows after the last target value) or observed only up to each origin (volume).
    known: list[str] = dataclasses.field(default_factory=list)
    past: list[str] = dataclasses.field(default_factory=list)
    test_fraction: Fraction = 0.2  # of each series, its last steps (at least one horizon)
    test_steps: Steps | None = None  # instead of the fraction
    # the steps before the test part (at least two horizons); small, because the last steps before the test are
    # the ones that teach a forecaster most (shared electricity, mean of 3 seeds: 0.1 of the series held out for
    # validation, MASE 0.67; 0.02, 0.54; benchmarks/README.md)
    validation_fraction: Fraction = 0.02
    validation_steps: Steps | None = None


@dataclasses.dataclass
class ForecastEvalConfig:
    stride: Steps = 1  # steps between backtest origins
    plots: Annotated[int, Range(0, 100)] = 4  # backtest windows drawn (origins spread over the test part)


@dataclasses.dataclass
class ForecastConfig:
    data: ForecastDataConfig = dataclasses.field(default_factory=ForecastDataConfig)
    model: ForecastModelConfig = dataclasses.field(default_factory=ForecastModelConfig)
    train: TrainConfig = dataclasses.field(
        default_factory=lambda: TrainConfig(
            # The linear default's pinball loss settles only as the cosine schedule decays: on the shared
            # electricity (mean of 3 seeds) all 30 epochs at 3e-3 score MASE 0.553, 100 at 1e-2 0.539. The
            # validation part is small, so the best epoch it picks is partly noise (0.548 restored): the weights
            # of the last epoch stand unless patience runs out, as it does on the CO2 default, which overfits
            # after some 20 epochs (benchmarks/README.md)
            epochs=100,
            batch_size=64,
            optimizer="adam",
            learning_rate=1e-2,
            early_stopping_patience=20,
            restore_best_weights="when_stopped",
        )
    )
    eval: ForecastEvalConfig = dataclasses.field(default_factory=ForecastEvalConfig)
    track: TrackConfig = dataclasses.field(default_factory=TrackConfig)


@dataclasses.dataclass
class ForecastData(Data):
    collection: series.Collection | None = None
    context: int = 0
    horizon: int = 0
    season: int = 1
    ends: list = dataclasses.field(default_factory=list)  # per series: (end of train part, end of validation part)
    scaling: scaling.Scaling | None = None
    layout: Layout | None = None
    train_origins: tuple = ()  # (global origins, series indices) of the training windows

    def input_summary(self) -> str:
        covariates = self.collection.covariates if self.collection else ()
        given = f", covariates {', '.join(covariates)}" if covariates else ""
        return f"{self.context} steps -> {self.horizon}, season {self.season}{given}"


@SOURCES.register("csv")
def csv_source(d: ForecastDataConfig) -> series.Collection:
    """A CSV file: a time column, a target, optionally a series id."""
    if not d.path:
        raise UserError("data.source=csv needs a file: --data FILE.csv")
    return series.read_series(d.path, d)


STATSMODELS = {"co2": "co2", "nile": "volume", "sunspots": "SUNACTIVITY"}  # data set -> its target column


@SOURCES.register("statsmodels")
def statsmodels_source(d: ForecastDataConfig) -> series.Collection:
    """A series statsmodels ships (offline): co2 (weekly Mauna Loa CO2, 1958-2001), nile, sunspots."""
    import importlib

    import pandas as pd

    name = d.path or "co2"
    if name not in STATSMODELS:
        raise UserError(f"unknown statsmodels data set '{name}'; choose one of: {', '.join(STATSMODELS)}")
    frame = importlib.import_module(f"statsmodels.datasets.{name}").load_pandas().data
    if isinstance(frame.index, pd.DatetimeIndex):
        frame = frame.rename_axis("date").reset_index()
    frame = frame.rename(columns={"year": "YEAR"})
    text = pd.DataFrame({c: [_cell(v, whole=c == "YEAR") for v in frame[c]] for c in frame})
    settings = dataclasses.replace(d, time_column=text.columns[0], target=STATSMODELS[name], series_column="none")
    return series.series_from_frame(text, settings, f"statsmodels {name}")


def _cell(value, whole: bool) -> str:
    """A statsmodels value as a CSV cell would hold it (years as integers, NaN as empty)."""
    if value != value:  # NaN
        return ""
    return str(int(value)) if whole else str(value)


def resolve_shape(d: ForecastDataConfig, frequency: series.Frequency) -> tuple[int, int, int]:
    """(season, horizon, context), the unset ones from the frequency."""
    season = d.season or frequency.season()
    horizon = d.horizon or max(1, season)
    context = d.context or max(2 * season, 4 * horizon)
    return season, horizon, context


def split_ends(length: int, d: ForecastDataConfig, context: int, horizon: int, where: str) -> tuple[int, int]:
    """(end of the training part, end of the validation part) of a series; too short a series is refused."""
    test = d.test_steps or max(horizon, round(d.test_fraction * length))
    # at least two horizons: a validation part of one horizon holds a single window, too few to stop on
    validation = d.validation_steps or max(2 * horizon, round(d.validation_fraction * length))
    needed = context + horizon + validation + test
    if length < needed:
        raise UserError(
            f"{where} is {length:,} steps long; it must be at least {needed:,}: context {context} + horizon "
            f"{horizon} (one training window) + validation {validation} + test {test}; give a longer series or "
            "set a shorter data.context, data.horizon or test/validation part"
        )
    return length - test - validation, length - test


def split_part_origins(split: str, length: int, ends: tuple, context: int, horizon: int, stride: int) -> np.ndarray:
    """Origins of one series' windows whose forecasts lie in ``split``: every step in training and validation,
    every ``stride``-th in the test part (the backtest)."""
    train_end, validation_end = ends
    start, stop, step = {
        "train": (0, train_end, 1),
        "validation": (train_end, validation_end, 1),
        "test": (validation_end, length, stride),
    }[split]
    return backtest.origins(start, stop, horizon, step, context)


class ForecastPipeline(Pipeline[ForecastConfig, ForecastData]):
    domain = "forecast"
    task = "forecast"
    config_class = ForecastConfig
    sources = SOURCES
    models = MODELS
    predict_usage = "recent.csv"
    run_files = ("samples/backtest.png", "samples/error_by_step.png")
    example_settings = (
        "data.horizon=6",
        "data.context=24",
        "model.width=16",
        "model.depth=1",
        *A_FEW_STEPS,
    )

    def data_overrides(self, data_arg: str) -> list[str]:
        if data_arg.startswith("statsmodels:"):
            return ["data.source=statsmodels", f"data.path={data_arg.split(':', 1)[1]}"]
        path = Path(data_arg).expanduser()
        return ["data.source=csv", f"data.path={path.resolve() if path.exists() else path}"]

    def check_settings(self, config: ForecastConfig) -> None:
        q = config.model.quantiles
        if sorted(set(q)) != q or 0.5 not in q:
            raise UserError(f"model.quantiles must rise strictly and hold 0.5, got {q}")

    def load_data(self, config: ForecastConfig) -> ForecastData:
        d = config.data
        found = self.sources.get(d.source if d.source != "auto" else ("csv" if d.path else "statsmodels"))(d)
        season, horizon, context = resolve_shape(d, found.frequency)
        where = [f"{found.source}, series '{s.name}'" if s.name else found.source for s in found.series]
        for s, w in zip(found.series, where):
            scaling.check_positive(s.values, d.transform, w)
        ends = [split_ends(len(s.values), d, context, horizon, w) for s, w in zip(found.series, where)]
        fitted = [scaling.fit_scaling(s.values[:end], d.transform) for s, (end, _) in zip(found.series, ends)]
        filled = sum(s.filled for s in found.series)
        if filled:
            log.info("%s: %s missing steps filled by linear interpolation", found.source, f"{filled:,}")
        scaled = scaling.Scaling(
            d.transform,
            np.array([f[0] for f in fitted], np.float32),
            np.array([f[1] for f in fitted], np.float32),
            *scaling.fit_covariates([s.covariates[:end] for s, (end, _) in zip(found.series, ends)]),
            known=len(d.known),
        )
        layout = Layout(context, horizon, known=len(d.known), past=len(d.past))
        make = self.window_dataset(found, scaled, layout)
        offsets = np.cumsum([0, *(len(s.values) for s in found.series)])[:-1]
        windows = {
            split: self.split_origins(found, ends, offsets, context, horizon, config.eval.stride, split)
            for split in ("train", "validation", "test")
        }
        return ForecastData(
            train=make(*windows["train"], config, training=True),
            validation=make(*windows["validation"], config, training=False),
            test=make(*windows["test"], config, training=False),
            input_shape=(context,),
            sizes={split: len(at) for split, (at, _) in windows.items()},
            source=self.describe_source(found),
            fingerprint=digest(
                {
                    "values": [s.values for s in found.series],
                    "times": [s.times.view(np.int64) for s in found.series],
                    "names": [s.name for s in found.series],
                    "covariates": [list(found.covariates), *(s.covariates for s in found.series)],
                    "ends": [list(e) for e in ends],
                    "shape": [season, horizon, context, d.transform, len(d.known)],
                }
            ),
            collection=found,
            context=context,
            horizon=horizon,
            season=season,
            ends=ends,
            scaling=scaled,
            layout=layout,
            train_origins=windows["train"],
        )

    @staticmethod
    def describe_source(found: series.Collection) -> str:
        count = f"{len(found.series)} series" if found.series_column else "1 series"
        return f"{found.source} ({count}, target {found.target}, every {found.frequency.describe()})"

    @staticmethod
    def split_origins(found, ends, offsets, context, horizon, stride, split):
        """Global origins (positions in the concatenated series) and series indices of one split's windows."""
        at, index = [], []
        for i, (s, e) in enumerate(zip(found.series, ends)):
            local = split_part_origins(split, len(s.values), e, context, horizon, stride)
            at.append(local + offsets[i])
            index.append(np.full(len(local), i, np.int64))
        return np.concatenate(at), np.concatenate(index)

    @staticmethod
    def window_dataset(found: series.Collection, scaled: scaling.Scaling, layout: Layout):
        """(origins, series) -> batches of (inputs, targets) in model space, sliced from the series in the graph
        (all series end to end: an origin is a position in the concatenation)."""
        values = tf.constant(np.concatenate([s.values for s in found.series]).astype(np.float32))
        covariates = tf.constant(np.concatenate([s.covariates for s in found.series]).astype(np.float32))
        ahead = tf.range(1, layout.horizon + 1, dtype=tf.int64)

        def to_model_space(at, index):
            raw = raw_windows(values, covariates, at, layout)
            future = tf.gather(values, at[:, None] + ahead)
            return scaled.inputs(raw, index), scaled.targets(raw["values"], future, index)

        def make(at, index, config, training):
            return batched(
                tf.data.Dataset.from_tensor_slices((at, index)),
                batch_size=config.train.batch_size,
                training=training,
                seed=config.train.seed,
                shuffle_buffer=max(1, len(at)),
                per_batch=to_model_space,
            )

        return make

    def build_model(self, config: ForecastConfig, data: ForecastData) -> keras.Model:
        model = self.models.get(config.model.name)(config.model, data.layout)
        whitening = [layer for layer in model.layers if isinstance(layer, Whitening)]
        if whitening:
            contexts = self.training_contexts(data, config)
            for layer in whitening:  # each on the context steps it reads: a member's lookback is the last part
                layer.adapt(contexts[:, -layer.mean.shape[0] :])
        return model

    def training_contexts(self, data: ForecastData, config: ForecastConfig, most: int = 20_000) -> np.ndarray:
        """The training windows' contexts in model space [windows, context], in order (the training stream's
        shuffling untouched); at most ``most`` of them, evenly spread."""
        at, index = data.train_origins
        keep = np.unique(np.linspace(0, len(at) - 1, min(most, len(at))).astype(np.int64))
        make = self.window_dataset(data.collection, data.scaling, data.layout)
        windows = make(at[keep], index[keep], config, training=False)
        return np.concatenate([inputs["values"].numpy() for inputs, _ in windows])

    def compile_args(self, config: ForecastConfig, data: ForecastData) -> dict:
        return {"loss": PinballLoss(config.model.quantiles)}

    # --- evaluation -------------------------------------------------------------------------------

    @staticmethod
    def forecaster(model: keras.Model, scaled: scaling.Scaling):
        """(raw inputs, series index [batch]) -> quantiles [batch, horizon, q] in the original units."""

        def forecast(raw: dict, index):
            quantiles = combined(model(scaled.inputs(raw, index), training=False))
            return scaled.original_units(quantiles, raw["values"], index)

        return forecast

    def backtest(self, model: keras.Model, data: ForecastData, config: ForecastConfig) -> dict:
        """Every test origin of every series: contexts, actuals, the model's quantiles and the baselines."""
        forecast = tf.function(self.forecaster(model, data.scaling))
        parts = []
        for i, (s, ends) in enumerate(zip(data.collection.series, data.ends)):
            at = split_part_origins("test", len(s.values), ends, data.context, data.horizon, config.eval.stride)
            contexts, actual = backtest.windows(s.values, at, data.context, data.horizon)
            values, covariates = (tf.constant(a, tf.float32) for a in (s.values, s.covariates))
            chunks = [at[k : k + 1024] for k in range(0, len(at), 1024)]
            quantiles = np.concatenate(
                [
                    forecast(raw_windows(values, covariates, c, data.layout), tf.fill([len(c)], i)).numpy()
                    for c in chunks
                ]
            ).astype(np.float64)
            parts.append(
                {
                    "series": i,
                    "at": at,
                    "contexts": contexts,
                    "actual": actual,
                    "quantiles": quantiles,
                    "baselines": backtest.baseline_forecasts(s.values, at, data.horizon, data.season),
                    # In sample: every value before the test part (the validation part too), as the M4 protocol
                    # scales MASE by the history a forecaster is given.
                    "scale": np.full(len(at), backtest.mase_scale(s.values[: ends[1]], data.season)),
                }
            )
        return {key: _join(parts, key) for key in ("at", "contexts", "actual", "quantiles", "scale", "series")} | {
            "baselines": {b: np.concatenate([p["baselines"][b] for p in parts]) for b in backtest.BASELINES}
        }

    def evaluate(self, model: keras.Model, data: ForecastData, config: ForecastConfig, run: RunDir, step: int) -> dict:
        found = self.backtest(model, data, config)
        levels = config.model.quantiles
        median = found["quantiles"][..., levels.index(0.5)]
        last = found["contexts"][:, -1]
        scored = {
            **backtest.point_metrics(found["actual"], median, found["scale"]),
            **backtest.interval_metrics(found["actual"], found["quantiles"], levels),
            "directional_accuracy": backtest.directional_accuracy(found["actual"], median, last),
        }
        baselines = {
            name: {
                **backtest.point_metrics(found["actual"], f, found["scale"]),
                "directional_accuracy": backtest.directional_accuracy(found["actual"], f, last),
            }
            for name, f in found["baselines"].items()
        }
        metrics = {
            "forecasts": int(len(found["at"])),
            "series": len(data.collection.series),
            "horizon": data.horizon,
            "context": data.context,
            "season": data.season,
            "stride": config.eval.stride,
            "model": scored,
            "baselines": baselines,
            **backtest.comparison(scored, baselines),
        }
        pngs = self.figures(found, metrics, data, config)
        run.write_metrics(metrics)
        for name, png in pngs.items():
            (run.samples / f"{name}.png").write_bytes(png)
        self.write_summaries(run, step, metrics, pngs)
        run.write_info(forecast=self.serving_info(data, config))
        return metrics

    def figures(self, found: dict, metrics: dict, data: ForecastData, config: ForecastConfig) -> dict[str, bytes]:
        count = min(config.eval.plots, len(found["at"]))
        chosen = np.linspace(0, len(found["at"]) - 1, max(count, 1)).round().astype(int)[:count]
        names = [s.name for s in data.collection.series]
        panels = [
            {
                "history": found["contexts"][k],
                "actual": found["actual"][k],
                "quantiles": found["quantiles"][k],
                "title": self.origin_title(data, int(found["series"][k]), int(found["at"][k]), names),
            }
            for k in chosen
        ]
        per_step = {"model": metrics["model"]["per_step"]["mase"]}
        per_step |= {name: b["per_step"]["mase"] for name, b in metrics["baselines"].items()}
        return {
            "backtest": plots.backtest_png(panels, config.model.quantiles),
            "error_by_step": plots.error_by_step_png(per_step, "MASE"),
        }

    @staticmethod
    def origin_title(data: ForecastData, index: int, at: int, names: list[str]) -> str:
        when = format_times(data.collection.series[index].times[at : at + 1], data.collection.datetimes)[0]
        return f"{names[index] + ': ' if names[index] else ''}forecast from {when}"

    @staticmethod
    def write_summaries(run: RunDir, step: int, metrics: dict, pngs: dict[str, bytes]) -> None:
        writer = tf.summary.create_file_writer(str(run.logs / "eval"))
        model = metrics["model"]
        with writer.as_default(step=step):
            for key in ("mase", "mae", "rmse", "smape", "pinball_loss", "directional_accuracy"):
                if model.get(key) is not None:
                    tf.summary.scalar(f"evaluation/{key}", model[key])
            if "interval" in model:
                tf.summary.scalar("evaluation/interval_coverage", model["interval"]["coverage"])
            for name, found in metrics["baselines"].items():
                tf.summary.scalar(f"evaluation/{name}_mase", found["mase"])
            for name, png in pngs.items():
                tf.summary.image(f"evaluation/{name}", png_batch(png))
        writer.close()

    def headline(self, metrics: dict) -> str:
        model, best = metrics["model"], metrics["best_baseline"]
        best_mase = metrics["baselines"][best]["mase"]
        if metrics["beats_best_baseline"]:
            verdict = (
                f"beats the best baseline, {best} (MASE {best_mase:.3f}), by {1 - metrics['mase_vs_best_baseline']:.1%}"
            )
        else:
            verdict = f"does not beat the best baseline, {best} (MASE {best_mase:.3f})"
        parts = [f"MASE {model['mase']:.3f}: {verdict}", f"MAE {model['mae']:.4g}", f"sMAPE {model['smape']:.2f}%"]
        if "interval" in model:
            i = model["interval"]
            parts.append(f"{i['nominal_coverage']:.0%} interval covers {i['coverage']:.1%}")
        return "; ".join(parts) + f"; {metrics['forecasts']:,} forecasts of {metrics['horizon']} steps"

    # --- using a trained model ----------------------------------------------------------------------

    @staticmethod
    def serving_info(data: ForecastData, config: ForecastConfig) -> dict:
        """What predict and export need of the data: its series and their scaling, the frequency, the shape."""
        found = data.collection
        return {
            "series": [s.name for s in found.series],
            "scaling": data.scaling.to_json(),
            "known": list(data.collection.covariates[: data.layout.known]),
            "past": list(data.collection.covariates[data.layout.known :]),
            "frequency": found.frequency.to_json(),
            "datetimes": found.datetimes,
            "time_column": found.time_column,
            "target": found.target,
            "series_column": found.series_column,
            "context": data.context,
            "horizon": data.horizon,
        }

    @staticmethod
    def stored(info: dict) -> dict:
        if "forecast" not in info:
            raise UserError("the run has not been evaluated yet; finish it with dlapps forecast train --resume RUN")
        return info["forecast"]

    def serving_endpoints(self, model: keras.Model, info: dict, config: ForecastConfig) -> Endpoints:
        f = self.stored(info)
        names = f["series"]
        # An id the model never saw is scaled by the average of the known series (the last row).
        forecast = self.forecaster(model, scaling.Scaling.from_json(f["scaling"]).with_unknown_series())
        median = config.model.quantiles.index(0.5)
        specs = {name: tf.TensorSpec(shape, tf.float32, name=name) for name, shape in self.input_shapes(f).items()}
        if len(names) > 1:
            specs["series"] = tf.TensorSpec([None], tf.string, name="series")
        known = tf.constant(names)

        def serve(inputs):
            values = inputs["values"]
            if "series" in inputs:
                match = tf.equal(inputs["series"][:, None], known[None, :])
                index = tf.where(tf.reduce_any(match, axis=1), tf.argmax(tf.cast(match, tf.int32), axis=1), len(names))
            else:
                index = tf.zeros(tf.shape(values)[:1], tf.int64)
            quantiles = forecast({k: v for k, v in inputs.items() if k != "series"}, index)
            return {"forecast": quantiles[..., median], "quantiles": quantiles}

        return {"serving_default": (serve, [specs])}

    @staticmethod
    def input_shapes(f: dict) -> dict[str, list]:
        """The raw inputs a forecast needs: ``values``, and ``known``/``past`` where the model reads covariates."""
        shapes = {"values": [None, f["context"]]}
        if f.get("known"):
            shapes["known"] = [None, f["context"] + f["horizon"], len(f["known"])]
        if f.get("past"):
            shapes["past"] = [None, f["context"], len(f["past"])]
        return shapes

    def serving_example(self, info: dict, config: ForecastConfig) -> dict[str, np.ndarray]:
        """Two windows of raw recent values: the first series' training level (diff models keep none: 100) with a
        wave of 1% and 2% around it (positive wherever the level is, as log transforms need), covariates at
        their training means, and the series ids."""
        f, transform = self.stored(info), config.data.transform
        scaled = scaling.Scaling.from_json(f["scaling"])
        level = 100.0 if scaling.is_diff(transform) else float(scaled.shift[0])
        level = np.exp(level) if transform == "log" else level  # the mean of the logs: a geometric mean
        wave = np.sin(np.arange(f["context"]) / 3.0)
        example = {"values": (level * (1 + np.stack([0.01 * wave, 0.02 * wave]))).astype(np.float32)}
        means = {"known": scaled.covariate_shift[: scaled.known], "past": scaled.covariate_shift[scaled.known :]}
        for name, shape in self.input_shapes(f).items():
            if name != "values":
                example[name] = np.broadcast_to(means[name], [2, *shape[1:]]).astype(np.float32)
        if len(f["series"]) > 1:
            example["series"] = np.array([f["series"][0]] * 2, object)
        return example

    def tflite_signature(self) -> str | None:
        return "serving_default"

    def predict_lines(self, inputs: list[str], model: keras.Model, info: dict, config: ForecastConfig) -> Iterator[str]:
        """CSV: per series and future step, its time, the median and the outer quantiles."""
        f = self.stored(info)
        levels = config.model.quantiles
        serve = self.serving_endpoints(model, info, config)["serving_default"][0]
        multi = len(f["series"]) > 1
        header = ["series"] * multi + ["timestamp", "median", f"p{_percent(levels[0])}", f"p{_percent(levels[-1])}"]
        for path in inputs:  # every file, before the first line of output
            checked_file(path, "data file", "; give CSV files of recent values")
        yield csv_line(header)
        for path in inputs:
            for found in self.recent_series(path, f, config):
                raw = self.recent_inputs(found, f)
                request = {k: tf.constant(v[None]) for k, v in raw.items()}
                out = serve(request | ({"series": tf.constant([found.name])} if multi else {}))["quantiles"].numpy()[0]
                times = series.Frequency(**f["frequency"]).after(found.times[-1], f["horizon"])
                for when, q in zip(format_times(times, f["datetimes"]), out):
                    median = q[levels.index(0.5)]
                    yield csv_line([found.name] * multi + [when, f"{median:.6g}", f"{q[0]:.6g}", f"{q[-1]:.6g}"])

    @staticmethod
    def recent_inputs(found: series.Series, f: dict) -> dict[str, np.ndarray]:
        """One series' last ``context`` steps as raw model inputs; the known covariates run on into its future."""
        context, known = f["context"], len(f.get("known", []))
        raw = {"values": found.values[-context:].astype(np.float32)}
        if known:
            ahead = found.future[: f["horizon"], :known]
            raw["known"] = np.concatenate([found.covariates[-context:, :known], ahead]).astype(np.float32)
        if f.get("past"):
            raw["past"] = found.covariates[-context:, known:].astype(np.float32)
        return raw

    def recent_series(self, path: str, f: dict, config: ForecastConfig) -> list[series.Series]:
        """The file's series, read with the training file's columns and frequency, each at least one context long
        (and, for known covariates, with a row for each step to forecast after its last value)."""
        columns = dataclasses.replace(
            config.data,
            time_column=f["time_column"],
            target=f["target"],
            series_column=f["series_column"] or "none",
        )
        frequency = series.Frequency(**f["frequency"])
        found = series.series_from_frame(series.read_table(path), columns, path, frequency)
        for s in found.series:
            named = f" series '{s.name}':" if s.name else ""
            if len(s.values) < f["context"]:
                raise UserError(
                    f"{path}:{named} {len(s.values)} steps; the model forecasts from the last {f['context']}"
                )
            if f.get("known") and len(s.future) < f["horizon"]:
                raise UserError(
                    f"{path}:{named} {len(s.future)} rows after the last {f['target']} value; the model needs the "
                    f"known covariates ({', '.join(f['known'])}) of the {f['horizon']} steps to forecast: add a row "
                    f"for each, with {f['target']} left empty"
                )
        return found.series

    def example_data(self, folder: Path) -> list[str]:
        """400 days of a weekly cycle on a trend, with noise."""
        return ["--data", str(write_example(folder / "daily.csv", 400))]

    def example_inputs(self, folder: Path) -> list[str]:
        """The last 60 days of the example series."""
        return [str(write_example(folder / "recent.csv", 400, keep=60))]


def raw_windows(values, covariates, at, layout: Layout) -> dict:
    """The raw inputs of the windows whose last observed step is at positions ``at``: ``values`` [b, context],
    ``known`` [b, context + horizon, k] (the steps to forecast too) and ``past`` [b, context, p]."""
    at = tf.cast(at, tf.int64)[:, None]
    observed = tf.range(-layout.context + 1, 1, dtype=tf.int64)
    raw = {"values": tf.gather(values, at + observed)}
    if layout.known:
        around = tf.range(-layout.context + 1, layout.horizon + 1, dtype=tf.int64)
        raw["known"] = tf.gather(covariates[:, : layout.known], at + around)
    if layout.past:
        raw["past"] = tf.gather(covariates[:, layout.known :], at + observed)
    return raw


def write_example(path: Path, days: int, keep: int | None = None) -> Path:
    rng = np.random.default_rng(0)
    steps = np.arange(days)
    values = 50 + 0.05 * steps + 5 * np.sin(2 * np.pi * steps / 7) + rng.normal(0, 0.5, days)
    dates = np.datetime64("2024-01-01") + steps
    rows = list(zip(dates.astype(str), np.round(values, 3)))[-(keep or days) :]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["date", "value"])
        writer.writerows(rows)
    return path


def format_times(times: np.ndarray, datetimes: bool) -> list[str]:
    if not datetimes:
        return [str(int(t)) for t in times]
    whole_days = bool((times == times.astype("datetime64[D]")).all())
    unit = "D" if whole_days else "s"
    return [str(t).replace("T", " ") for t in times.astype(f"datetime64[{unit}]")]


def _percent(level: float) -> str:
    return f"{100 * level:g}"


def _join(parts: list[dict], key: str) -> np.ndarray:
    if key == "series":
        return np.concatenate([np.full(len(p["at"]), p["series"]) for p in parts])
    return np.concatenate([p[key] for p in parts])


PIPELINE = ForecastPipeline()
