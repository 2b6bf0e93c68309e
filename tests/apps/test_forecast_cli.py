"""The forecast verbs through the CLI: many series in long format, the embedded default, transforms, bad input.

(tests/contract/ already trains, evaluates, predicts and exports the one-series example.)
"""

import gzip
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from pipelines.forecast.pipeline import PIPELINE
from tests.helpers import assert_one_line_error, dlapps, event_tags

SETS = [x for item in PIPELINE.example_settings for x in ("--set", item)]


def write_csv(path, header, rows, zipped=False):
    text = "\n".join([",".join(header), *(",".join(map(str, r)) for r in rows)]) + "\n"
    if zipped:
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def long_rows(steps=300, ids=("north", "south")):
    """Hourly series in long format (unique_id, ds, y), rows shuffled: one per id, at different levels."""
    rng = np.random.default_rng(1)
    hours = np.datetime64("2024-03-01T00:00") + np.arange(steps).astype("timedelta64[h]")
    rows = [
        (name, str(t).replace("T", " "), round(level + 3 * np.sin(2 * np.pi * i / 24) + rng.normal(0, 0.3), 3))
        for name, level in zip(ids, (20.0, 500.0))
        for i, t in enumerate(hours)
    ]
    return [rows[i] for i in rng.permutation(len(rows))]


@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("forecast-long")
    data = write_csv(folder / "load.csv.gz", ["unique_id", "ds", "y"], long_rows(), zipped=True)
    result = dlapps("forecast", "train", "--data", data, "--runs-dir", folder / "runs", "--name", "r", *SETS)
    assert result.exit_code == 0, result.output + result.stderr
    return folder, folder / "runs" / "forecast" / "r", result


def test_one_model_forecasts_every_series_of_a_long_table(long_run):
    folder, run, result = long_run
    assert "(2 series, target y, every 1 hour)" in json.loads((run / "run.json").read_text())["data"]
    recent = write_csv(folder / "recent.csv", ["unique_id", "ds", "y"], long_rows(steps=40))
    out = dlapps("forecast", "predict", run, recent)
    assert out.exit_code == 0, out.output + out.stderr
    lines = out.output.strip().splitlines()
    assert lines[0] == "series,timestamp,median,p10,p90" and len(lines) == 1 + 2 * 6
    first = lines[1].split(",")
    assert first[:2] == ["north", "2024-03-02 16:00:00"]  # the hour after the last of 40
    south = [float(line.split(",")[2]) for line in lines[1:] if line.startswith("south")]
    assert min(south) > 100  # in south's own units (level 500), not north's (20)
    for line in lines[1:]:
        median, low, high = map(float, line.split(",")[2:])
        assert low <= median <= high


def test_the_metrics_hold_every_baseline_on_the_same_windows(long_run):
    _, run, result = long_run
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["baselines"]) == {"naive", "seasonal_naive", "drift"} and metrics["season"] == 24
    for found in [metrics["model"], *metrics["baselines"].values()]:
        assert {"mae", "rmse", "mase", "smape"} <= set(found) and len(found["per_step"]["mase"]) == 6
    assert (
        0 <= metrics["model"]["interval"]["coverage"] <= 1 and metrics["model"]["interval"]["nominal_coverage"] == 0.8
    )
    best = metrics["best_baseline"]
    assert metrics["beats_best_baseline"] == (metrics["model"]["mase"] < metrics["baselines"][best]["mase"])
    verdict = "beats the best baseline" if metrics["beats_best_baseline"] else "does not beat the best baseline"
    assert verdict in result.output
    tags = event_tags(run / "logs" / "eval")
    assert {"evaluation/backtest", "evaluation/error_by_step"} <= tags["images"]


def test_the_saved_model_scales_each_series_by_its_id_in_a_fresh_process(long_run):
    _, run, _ = long_run
    assert dlapps("forecast", "export", run, "--format", "saved_model").exit_code == 0
    client = textwrap.dedent(f"""
        import json, numpy as np, tensorflow as tf
        serve = tf.saved_model.load({str(run / "export" / "saved_model")!r}).signatures["serving_default"]
        values = tf.constant(np.stack([np.full(24, 20.0), np.full(24, 500.0)]).astype("float32"))
        out = serve(values=values, series=tf.constant(["north", "south"]))
        print("ANSWER", json.dumps({{k: v.numpy().tolist() for k, v in out.items()}}))
    """)
    out = subprocess.run([sys.executable, "-c", client], capture_output=True, text=True, cwd="/", timeout=300)
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout.split("ANSWER ", 1)[1])
    assert np.array(answer["quantiles"]).shape == (2, 6, 3) and np.array(answer["forecast"]).shape == (2, 6)
    assert np.mean(answer["forecast"][1]) > 10 * np.mean(answer["forecast"][0])


def test_the_embedded_default_is_a_statsmodels_series_offline(tmp_path):
    fast = ["--set", "train.epochs=1", "--set", "train.steps_per_epoch=2", "--set", "model.width=8"]
    result = dlapps("forecast", "train", "--runs-dir", tmp_path, "--name", "co2", *fast)
    assert result.exit_code == 0, result.output + result.stderr
    described = json.loads((tmp_path / "forecast" / "co2" / "run.json").read_text())["data"]
    assert "statsmodels co2 (1 series, target co2, every 1 week)" in described and "season 52" in described


@pytest.mark.parametrize("transform", ["log", "log_diff", "diff"])
def test_transformed_models_forecast_in_the_original_units(transform, tmp_path):
    data = PIPELINE.example_data(tmp_path)
    result = dlapps(
        "forecast", "train", *data, "--runs-dir", tmp_path, "--name", "t", *SETS, "--set", f"data.transform={transform}"
    )
    assert result.exit_code == 0, result.output + result.stderr
    out = dlapps("forecast", "predict", tmp_path / "forecast" / "t", *PIPELINE.example_inputs(tmp_path))
    medians = [float(line.split(",")[1]) for line in out.output.strip().splitlines()[1:]]
    assert len(medians) == 6 and all(20 < m < 150 for m in medians), medians  # the series lives around 50-75


def daily(values, start="2024-01-01"):
    dates = np.datetime64(start) + np.arange(len(values))
    return list(zip(dates.astype(str), values))


BAD = {
    "a missing time column": ([], ["--set", "data.time_column=when"], ["no time column 'when'"]),
    "a missing target column": ([], ["--set", "data.target=Close"], ["no target column 'Close'"]),
    "a non-numeric target": ([(5, "n/a")], [], ["line 7: target 'value' is 'n/a', not a number"]),
    "an infinite value": ([(3, "inf")], [], ["line 5: target 'value' is infinite"]),
    "a short series": (
        [],
        ["--set", "data.context=340"],
        ["400 steps long; it must be at least 441: context 340 + horizon 7"],
    ),
    "a zero horizon": ([], ["--set", "data.horizon=0"], ["'data.horizon' must be >= 1"]),
    "log of negative values": ([(0, "-1")], ["--set", "data.transform=log"], ["needs positive values"]),
    "bad quantiles": ([], ["--set", "model.quantiles=[0.9,0.1]"], ["model.quantiles must rise"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_leaves_no_run(case, tmp_path):
    replace, args, fragments = BAD[case]
    rows = daily(np.round(50 + np.sin(np.arange(400)), 3).tolist())
    for index, value in replace:
        rows[index] = (rows[index][0], value)
    data = write_csv(tmp_path / "d.csv", ["date", "value"], rows)
    result = dlapps("forecast", "train", "--data", data, "--runs-dir", tmp_path / "runs", *args)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "rows, fragment",
    [
        (daily([7.0] * 400), "the target is constant (7 at every step)"),
        ([(t, t) for t in [0, 1, 5, 9, 30, 31, 70, 71, 72]], "fit no regular frequency"),
    ],
)
def test_constant_or_irregular_series_are_refused(rows, fragment, tmp_path):
    data = write_csv(tmp_path / "d.csv", ["t", "y"], rows)
    assert_one_line_error(dlapps("forecast", "train", "--data", data, "--runs-dir", tmp_path / "runs"), fragment)
    assert not (tmp_path / "runs").exists()
