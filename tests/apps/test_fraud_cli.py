"""Every fraud verb end to end through the CLI on small simulated transaction files, a few epochs each."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.fraud.helpers import FRAUD_FAST, SMALL_SIMULATION, simulated_table, ulb_columns, write_table
from tests.helpers import assert_one_line_error, dlapps, event_tags

SETS = [x for item in FRAUD_FAST for x in ("--set", item)]


@pytest.fixture(scope="session")
def handbook_csv(tmp_path_factory):
    """The handbook's 23 columns for 24 simulated days of 300 customers, gzipped."""
    return write_table(tmp_path_factory.mktemp("fraud") / "transactions.csv.gz", simulated_table().columns, zipped=True)


@pytest.fixture(scope="session")
def fraud_run(handbook_csv, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    result = dlapps("fraud", "train", "--data", handbook_csv, "--runs-dir", runs, "--name", "r", *SETS)
    assert result.exit_code == 0, result.output + result.stderr
    return runs / "fraud" / "r", result


def test_train_fills_the_run_directory(fraud_run):
    run, result = fraud_run
    for name in (
        "config.yaml",
        "model.keras",
        "metrics.json",
        "samples/confusion_matrix.png",
        "samples/pr_curves.png",
        "samples/roc_curve.png",
        "samples/score_histogram.png",
    ):
        assert (run / name).is_file(), name
    info = json.loads((run / "run.json").read_text())
    assert info["class_names"] == ["legitimate", "fraud"] and info["decision"]["positive"] == 1
    assert "best_val_pr_auc" in info  # checkpoints/best.keras follows validation average precision
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"roc_auc", "average_precision", "card_precision_at_100", "confusion_matrix", "per_class"} <= set(metrics)
    assert len(metrics["card_precision_at_100_per_day"]) == 7 and metrics["decision"]["positive"] == "fraud"
    assert metrics["average_precision"] == pytest.approx(metrics["pr_auc"])
    assert "card_precision_at_100" in result.output
    for split in ("eval", "validation"):
        tags = event_tags(run / "logs" / split)
        assert {"evaluation/roc_curve", "evaluation/score_histogram", "evaluation/confusion_matrix"} <= tags["images"]
        assert {"evaluation/average_precision", "evaluation/card_precision_at_100"} <= tags["scalars"] | tags.get(
            "", set()
        )


def test_predict_and_the_exported_model_agree_in_a_fresh_process(fraud_run, tmp_path):
    run, _ = fraud_run
    columns = {
        k: v[-50:] for k, v in simulated_table(seed=1).columns.items() if k not in ("TX_FRAUD", "TX_FRAUD_SCENARIO")
    }
    new = write_table(tmp_path / "new.csv", columns)
    result = dlapps("fraud", "predict", run, new)
    assert result.exit_code == 0, result.stderr
    lines = result.output.strip().splitlines()
    assert lines[0] == "file,line,fraud_probability,is_fraud" and len(lines) == 51
    predicted = [(float(line.split(",")[2]), int(line.split(",")[3])) for line in lines[1:]]
    assert dlapps("fraud", "export", run, "--format", "saved_model").exit_code == 0
    inputs = {
        k: (v.tolist() if v.dtype == object else v.astype(float).tolist())
        for k, v in columns.items()
        if k not in ("TRANSACTION_ID", "CUSTOMER_ID", "TERMINAL_ID", "TX_TIME_SECONDS", "TX_TIME_DAYS")
    }
    client = textwrap.dedent(f"""
        import sys, json, tensorflow as tf
        serve = tf.saved_model.load({str(run / "export" / "saved_model")!r}).signatures["serving_default"]
        kind = lambda v: tf.string if isinstance(v[0], str) else tf.float32
        inputs = {{k: tf.constant(v, kind(v)) for k, v in {inputs!r}.items()}}
        out = serve(**inputs)
        print(json.dumps([out["fraud_probability"].numpy().tolist(), out["is_fraud"].numpy().astype(int).tolist()]))
        print(sorted(serve.structured_input_signature[1]), file=sys.stderr)
        print(any(m.split(".")[0] in ("pipelines", "apps") for m in sys.modules), file=sys.stderr)
    """)
    out = subprocess.run([sys.executable, "-c", client], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0, out.stderr
    probabilities, flags = json.loads(out.stdout)
    assert np.allclose(probabilities, [p for p, _ in predicted], atol=1e-6)
    assert flags == [f for _, f in predicted]  # the tuned threshold, in the graph as in predict
    assert out.stderr.strip().splitlines()[-1] == "False"  # nothing of ours was imported
    assert "'TX_DATETIME'" in out.stderr.splitlines()[-2] and "'TX_AMOUNT'" in out.stderr.splitlines()[-2]


def test_evaluate_rewrites_the_same_metrics(fraud_run):
    run, _ = fraud_run
    before = json.loads((run / "metrics.json").read_text())
    result = dlapps("fraud", "evaluate", run)
    assert result.exit_code == 0, result.stderr
    after = json.loads((run / "metrics.json").read_text())
    assert after["average_precision"] == before["average_precision"] and after["decision"] == before["decision"]


def test_default_trains_on_the_simulator(tmp_path, caplog):
    sets = [x for item in [*FRAUD_FAST, *SMALL_SIMULATION] for x in ("--set", item)]
    result = dlapps("fraud", "train", "--runs-dir", tmp_path, "--name", "sim", *sets)
    assert result.exit_code == 0, result.stderr
    assert "simulator (300 customers, 600 terminals, 24 days, seed 0)" in caplog.text
    assert "TX_AMOUNT (numeric, log1p)" in caplog.text and "TX_FRAUD_SCENARIO (data.exclude_columns)" in caplog.text
    assert "time split: train 2018-04-04..2018-04-09, validation 1 day(s), 7-day delay, test 2018-04-18" in caplog.text
    assert json.loads((tmp_path / "fraud" / "sim" / "metrics.json").read_text())["examples"] > 1000


@pytest.mark.parametrize("model", ["logistic", "autoencoder", "mlp"])
def test_ulb_layout_trains_with_a_stratified_split(model, tmp_path, caplog):
    data = write_table(tmp_path / "creditcard.csv", ulb_columns())
    args = ["--runs-dir", tmp_path, "--name", "u", *SETS, "--set", f"model.name={model}"]
    extra = (
        [
            "--set",
            "data.imbalance=oversample",
            "--set",
            "model.loss=focal",
            "--set",
            "eval.decision=cost",
            "--set",
            "eval.cost_fn=10",
        ]
        if model == "mlp"
        else []
    )
    result = dlapps("fraud", "train", "--data", data, *args, *extra)
    assert result.exit_code == 0, result.stderr
    assert "stratified" in caplog.text and "(unnamed) (identifier)" in caplog.text
    metrics = json.loads((tmp_path / "fraud" / "u" / "metrics.json").read_text())
    assert "card_precision_at_100" not in metrics and metrics["examples"] == 80
    assert dlapps("fraud", "export", tmp_path / "fraud" / "u").exit_code == 0


def corrupt(path, lines):
    path.write_text("".join(lines))
    return path


def with_field(lines, index, field, value):
    """The lines with field ``field`` of line ``index`` (0: the header) replaced by ``value``."""
    fields = lines[index].rstrip("\n").split(",")
    fields[field] = value
    return lines[:index] + [",".join(fields) + "\n"] + lines[index + 1 :]


@pytest.mark.parametrize(
    "change, fragments",
    [
        (lambda lines: lines[:1], ["no transactions"]),
        (lambda lines: [], ["is empty"]),
        (lambda lines: [lines[0].replace("Class", "Target")] + lines[1:], ["no label column", "data.label_column"]),
        (lambda lines: with_field(lines, 5, 1, "abc"), ["line 6", "'Time'", "'abc' is not a number"]),
        (
            lambda lines: [lines[0]] + [line.rsplit(",", 1)[0] + ",0\n" for line in lines[1:]],
            ["every transaction is labelled legitimate"],
        ),
        (lambda lines: with_field(lines, 3, 2, ""), ["line 4", "'V1'", "no value", "data.missing=median"]),
        (lambda lines: with_field(lines, 7, 7, "2"), ["line 8", "label column 'Class'", "'2'"]),
    ],
)
def test_bad_files_get_one_line_and_no_run(change, fragments, tmp_path):
    lines = write_table(tmp_path / "ok.csv", ulb_columns()).read_text().splitlines(keepends=True)
    data = corrupt(tmp_path / "bad.csv", change(lines))
    assert_one_line_error(dlapps("fraud", "train", "--data", data, "--runs-dir", tmp_path / "runs", *SETS), *fragments)
    assert not (tmp_path / "runs").exists()


def test_missing_values_train_when_imputation_is_asked_for(tmp_path, caplog):
    lines = write_table(tmp_path / "ok.csv", ulb_columns()).read_text().splitlines(keepends=True)
    data = corrupt(tmp_path / "gaps.csv", with_field(lines, 3, 2, "NaN"))
    result = dlapps("fraud", "train", "--data", data, "--runs-dir", tmp_path, *SETS, "--set", "data.missing=median")
    assert result.exit_code == 0, result.stderr
    assert "V1 (numeric, missing -> " in caplog.text


def test_predict_needs_the_models_columns(fraud_run, tmp_path):
    data = write_table(tmp_path / "few.csv", {"TX_AMOUNT": np.array([1.0, 2.0])})
    assert_one_line_error(dlapps("fraud", "predict", fraud_run[0], data), "needs column(s)", "TX_DATETIME")


@pytest.mark.parametrize(
    "setting, fragment",
    [
        ("model.name=forest", "unknown fraud model 'forest'"),
        ("data.imbalance=smote", "'data.imbalance' must be one of: class_weight, oversample, none"),
        ("eval.decision=cost", None),
    ],
)
def test_bad_settings_are_refused(setting, fragment, tmp_path):
    if fragment is None:
        setting, fragment = "eval.cost_fp=0", "must be > 0"
        sets = ["--set", "eval.decision=cost", "--set", setting]
    else:
        sets = ["--set", setting]
    assert_one_line_error(dlapps("fraud", "train", "--runs-dir", tmp_path, *sets), fragment)


def test_sequence_model_scores_each_customers_history(handbook_csv, tmp_path):
    """Trained on [batch, 3] histories; predict builds them from the file; the SavedModel takes them as given."""
    result = dlapps(
        "fraud",
        "train",
        "--data",
        handbook_csv,
        "--runs-dir",
        tmp_path,
        "--name",
        "s",
        *SETS,
        "--set",
        "model.name=sequence",
        "--set",
        "model.sequence_length=3",
    )
    assert result.exit_code == 0, result.stderr
    run = tmp_path / "fraud" / "s"
    table = simulated_table(seed=2)
    columns = {k: v[:40] for k, v in table.columns.items()}
    predicted = dlapps("fraud", "predict", run, write_table(tmp_path / "new.csv", columns))
    assert predicted.exit_code == 0, predicted.stderr
    probabilities = [float(line.split(",")[2]) for line in predicted.output.strip().splitlines()[1:]]
    assert dlapps("fraud", "export", run).exit_code == 0
    import tensorflow as tf

    from pipelines.fraud.data import history_rows

    serve = tf.saved_model.load(str(run / "export" / "saved_model")).signatures["serving_default"]
    order = np.array(columns["TX_DATETIME"], dtype="datetime64[s]").astype(np.int64)
    history = history_rows(columns["CUSTOMER_ID"], order, 3)
    names = [n for n in serve.structured_input_signature[1]]
    out = serve(
        **{n: tf.constant(columns[n][history].astype(str if n == "TX_DATETIME" else np.float32)) for n in names}
    )
    assert np.allclose(out["fraud_probability"].numpy(), probabilities, atol=1e-5)


def test_sequence_model_needs_a_customer_column(tmp_path):
    data = write_table(tmp_path / "creditcard.csv", ulb_columns())
    assert_one_line_error(
        dlapps("fraud", "train", "--data", data, "--runs-dir", tmp_path, "--set", "model.name=sequence"),
        "needs a customer or card column",
        "data.customer_column",
    )


ULB_SAMPLE = (
    Path(__file__).resolve().parents[3] / "shared" / "datasets" / "creditcard_ulb_sample" / "creditcard_sample.csv"
)


@pytest.mark.skipif(not ULB_SAMPLE.exists(), reason="the shared ULB sample is not beside the repository")
def test_the_ulb_sample_trains_and_exports(tmp_path):
    """A format check on Kaggle's creditcard.csv layout (its balance is artificial: no accuracy claim)."""
    result = dlapps(
        "fraud",
        "train",
        "--data",
        ULB_SAMPLE,
        "--runs-dir",
        tmp_path,
        "--name",
        "u",
        *SETS,
        "--set",
        "data.label_column=Class",
    )
    assert result.exit_code == 0, result.stderr
    assert dlapps("fraud", "export", tmp_path / "fraud" / "u").exit_code == 0
    predicted = dlapps("fraud", "predict", tmp_path / "fraud" / "u", ULB_SAMPLE)
    assert predicted.exit_code == 0 and len(predicted.output.strip().splitlines()) == 1 + 1722


def test_a_run_repeats_from_its_config(fraud_run, tmp_path):
    run, _ = fraud_run
    result = dlapps("fraud", "train", "--config", run / "config.yaml", "--runs-dir", tmp_path, "--name", "again")
    assert result.exit_code == 0, result.stderr
    first, again = (json.loads((r / "metrics.json").read_text()) for r in (run, tmp_path / "fraud" / "again"))
    assert again == first  # same data, split, preprocessing, weights and threshold


def shop_columns(rows=800, seed=0):
    """Text and datetime columns beside a number: merchant codes (one of them digits only), times over 25 days."""
    rng = np.random.default_rng(seed)
    fraud = (rng.random(rows) < 0.15).astype(int)
    stamps = np.datetime64("2018-07-01T00:00:00") + np.sort(rng.integers(0, 25 * 86_400, rows)).astype("timedelta64[s]")
    return {
        "when": np.char.replace(np.datetime_as_string(stamps), "T", " ").astype(object),
        "merchant": rng.choice(["M1", "M2", "123"], rows).astype(object),
        "amount": (rng.exponential(40, rows) * (1 + 4 * fraud)).round(2),
        "fraud": fraud,
    }


def test_predict_reads_columns_as_training_did(tmp_path):
    data = write_table(tmp_path / "shops.csv", shop_columns())
    result = dlapps("fraud", "train", "--data", data, "--runs-dir", tmp_path, "--name", "m", *SETS)
    assert result.exit_code == 0, result.stderr
    run = tmp_path / "fraud" / "m"
    one = write_table(
        tmp_path / "one.csv",
        {
            "merchant": np.array(["123"], dtype=object),
            "amount": np.array([99.0]),
            "when": np.array(["2018-08-01 03:00:00"], dtype=object),
        },
    )
    predicted = dlapps("fraud", "predict", run, one)  # one row: '123' still a merchant, not a number
    assert predicted.exit_code == 0, predicted.stderr
    assert len(predicted.output.strip().splitlines()) == 2
    bad = write_table(
        tmp_path / "bad date.csv",
        {
            "merchant": np.array(["M1", "M2"], dtype=object),
            "amount": np.array([1.0, 2.0]),
            "when": np.array(["2018-08-01 03:00:00", "yesterday"], dtype=object),
        },
    )
    assert_one_line_error(dlapps("fraud", "predict", run, bad), "line 3", "'when'", "'yesterday' is not a date")


def test_column_names_that_clash_with_layers_are_refused(tmp_path):
    columns = ulb_columns()
    columns["code"] = columns.pop("V4")
    data = write_table(tmp_path / "clash.csv", columns)
    assert_one_line_error(
        dlapps("fraud", "train", "--data", data, "--runs-dir", tmp_path, *SETS, "--set", "model.name=autoencoder"),
        "clashes with a layer",
        "rename the column",
    )
    assert_one_line_error(
        dlapps(
            "fraud",
            "train",
            "--data",
            data,
            "--runs-dir",
            tmp_path,
            "--set",
            "model.name=autoencoder",
            "--set",
            "data.imbalance=oversample",
        ),
        "legitimate transactions only",
    )
