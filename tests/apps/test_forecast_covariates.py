"""Covariates through the CLI: a known-in-advance column (a promotion flag) and a past-only one (volume) feed
the model in training, in predict (the known one from rows after the last target value) and in the SavedModel."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from pipelines.forecast.pipeline import PIPELINE
from tests.apps.test_forecast_cli import write_csv
from tests.helpers import assert_one_line_error, dlapps

SETS = [x for item in PIPELINE.example_settings for x in ("--set", item)]
COVARIATES = ["--set", "data.known=[promo]", "--set", "data.past=[volume]"]
HEADER = ["date", "sales", "promo", "volume"]


def rows(days=300, future=0, seed=2):
    """Daily sales lifted by 8 on promotion days (known in advance); volume follows the sales a day late.
    The last ``future`` rows are the days to forecast: promotion planned, sales and volume not yet known."""
    rng = np.random.default_rng(seed)
    promo = rng.random(days + future) < 0.3
    sales = 20 + 8 * promo + rng.normal(0, 0.5, days + future)
    dates = (np.datetime64("2024-01-01") + np.arange(days + future)).astype(str)
    found = []
    for i, day in enumerate(dates):
        known_yet = i < days
        volume = round(float(sales[i - 1]) * 3, 2) if i and known_yet else ""
        found.append([day, round(float(sales[i]), 3) if known_yet else "", int(promo[i]), volume])
    return found


@pytest.fixture(scope="module")
def covariate_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("forecast-covariates")
    data = write_csv(folder / "sales.csv", HEADER, rows())
    result = dlapps(
        "forecast", "train", "--data", data, "--runs-dir", folder / "runs", "--name", "r", *SETS, *COVARIATES
    )
    assert result.exit_code == 0, result.output + result.stderr
    return folder, folder / "runs" / "forecast" / "r"


def test_the_run_names_its_covariates_and_keeps_their_scaling(covariate_run):
    _, run = covariate_run
    info = json.loads((run / "run.json").read_text())
    assert "covariates promo, volume" in info["data"]
    stored = info["forecast"]
    assert stored["known"] == ["promo"] and stored["past"] == ["volume"]
    assert stored["scaling"]["covariate_shift"][0] == pytest.approx(0.3, abs=0.1)  # the share of promotion days


def test_predict_reads_the_planned_promotions_from_the_rows_after_the_last_value(covariate_run):
    folder, run = covariate_run
    recent = write_csv(folder / "recent.csv", HEADER, rows(days=60, future=6)[1:])
    out = dlapps("forecast", "predict", run, recent)
    assert out.exit_code == 0, out.output + out.stderr
    lines = out.output.strip().splitlines()
    assert lines[0] == "timestamp,median,p10,p90" and len(lines) == 7
    assert lines[1].startswith("2024-03-01,")  # the day after the last sales value (day 60), a planned row


def test_predict_without_the_planned_rows_says_what_to_add(covariate_run):
    folder, run = covariate_run
    recent = write_csv(folder / "history-only.csv", HEADER, rows(days=60)[1:])
    assert_one_line_error(
        dlapps("forecast", "predict", run, recent),
        "0 rows after the last sales value",
        "known covariates (promo) of the 6 steps to forecast",
    )


def test_the_saved_model_takes_the_covariates_and_the_known_future_moves_the_forecast(covariate_run):
    _, run = covariate_run
    assert dlapps("forecast", "export", run, "--format", "saved_model").exit_code == 0
    client = textwrap.dedent(f"""
        import json, numpy as np, tensorflow as tf
        serve = tf.saved_model.load({str(run / "export" / "saved_model")!r}).signatures["serving_default"]
        shapes = {{k: v.shape.as_list() for k, v in serve.structured_input_signature[1].items()}}
        values = tf.constant(np.full((1, 24), 22.0, "float32"))
        past = tf.constant(np.full((1, 24, 1), 66.0, "float32"))
        out = [serve(values=values, past=past, known=tf.fill([1, 30, 1], flag))["forecast"].numpy().tolist()
               for flag in (0.0, 1.0)]
        print("ANSWER", json.dumps({{"shapes": shapes, "forecasts": out}}))
    """)
    out = subprocess.run([sys.executable, "-c", client], capture_output=True, text=True, cwd="/", timeout=300)
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout.split("ANSWER ", 1)[1])
    assert answer["shapes"] == {"values": [None, 24], "known": [None, 30, 1], "past": [None, 24, 1]}
    without, with_promo = (np.array(f) for f in answer["forecasts"])
    assert without.shape == (1, 6) and not np.allclose(without, with_promo)


@pytest.mark.parametrize(
    "settings, replace, fragment",
    [
        (["--set", "data.known=[price]"], None, "no covariate column 'price'"),
        (
            ["--set", "data.target=sales", "--set", "data.past=[sales]"],
            None,
            "column 'sales' is the time, series id or target",
        ),
        (["--set", "data.known=[promo]", "--set", "data.past=[promo]"], None, "column 'promo' is named twice"),
        (COVARIATES, (4, 3, "lots"), "line 6: covariate 'volume' is 'lots', not a number"),
        (
            ["--set", "data.target=sales", "--set", "data.known=[promo]", "--set", "data.fill=error"],
            (4, 2, ""),
            "line 6: no value for covariate 'promo'",
        ),
    ],
    ids=["missing", "the target", "twice", "text", "empty with fill=error"],
)
def test_bad_covariates_are_one_line_and_leave_no_run(settings, replace, fragment, tmp_path):
    table = rows()
    if replace:
        row, column, value = replace
        table[row][column] = value
    data = write_csv(tmp_path / "d.csv", HEADER, table)
    result = dlapps("forecast", "train", "--data", data, "--runs-dir", tmp_path / "runs", *settings)
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "runs").exists()
