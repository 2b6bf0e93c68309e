"""Reading transaction CSV files: kinds inferred, gzip by content, and one clear error for each kind of bad file."""

import gzip

import numpy as np
import pytest

from pipelines.core.errors import UserError
from pipelines.fraud import table


def write(path, text, zipped=False):
    path.write_bytes(gzip.compress(text.encode()) if zipped else text.encode())
    return path


@pytest.mark.parametrize("zipped", [False, True])
def test_kinds_are_inferred_and_gzip_is_read_by_content(tmp_path, zipped):
    path = write(
        tmp_path / "tx.csv",
        "id,when,shop,amount,fraud\n1,2018-07-25 10:00:00,a,1.5,0\n2,2018-07-26 11:30:00,b,,1\n3,2018-07-27,a,NaN,0\n",
        zipped,
    )
    t = table.read_table(path, {})
    assert t.kinds == {
        "id": "numeric",
        "when": "datetime",
        "shop": "categorical",
        "amount": "numeric",
        "fraud": "numeric",
    }
    assert np.isnan(t.numbers("amount")[1:]).all() and t.numbers("amount")[0] == 1.5
    assert table.labels(t, "fraud").tolist() == [0, 1, 0]
    assert table.datetimes(t, "when")[2] == np.datetime64("2018-07-27T00:00:00")
    forced = table.read_table(path, {"id": "categorical"})
    assert forced.kinds["id"] == "categorical" and forced.columns["id"].tolist() == ["1", "2", "3"]


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("", ["is empty"]),
        ("a,b,fraud\n", ["no transactions"]),
        ("a,b,fraud\n1,2,0\n3,0\n", ["line 3", "2 fields", "3"]),
        ("a,a,fraud\n1,2,0\n", ["'a'", "twice"]),
        ('a,b\n"1,2\n', ["cannot read"]),
        (None, ["cannot read"]),  # a damaged gzip file
    ],
)
def test_unreadable_files_name_the_problem(tmp_path, text, fragments):
    if text is None:
        zipped = bytearray(gzip.compress(("a,b,fraud\n" + "1,2,0\n" * 500).encode()))
        zipped[30:40] = b"\xff" * 10
        path = tmp_path / "bad.csv.gz"
        path.write_bytes(bytes(zipped))
    else:
        path = write(tmp_path / "bad.csv", text)
    with pytest.raises(UserError) as err:
        table.read_csv(path)
    assert all(f in str(err.value) for f in fragments), str(err.value)


def test_junk_in_a_numeric_column_names_its_line_and_column(tmp_path):
    rows = "".join(f"{i},{i * 1.5},0\n" for i in range(30))
    path = write(tmp_path / "tx.csv", "n,amount,fraud\n" + rows + "\n30,twelve,1\n31,inf,0\n")  # a blank line too
    t = table.read_table(path, {})
    assert t.kinds["amount"] == "numeric" and len(t) == 32
    with pytest.raises(UserError, match=r"line 33, column 'amount': 'twelve' is not a number.*categorical_columns"):
        t.numbers("amount")
    t.columns["amount"][30] = "12"
    with pytest.raises(UserError, match=r"line 34, column 'amount': 'inf' is not a number"):
        t.numbers("amount")


def test_time_zones_are_read_as_written(tmp_path):
    path = write(tmp_path / "tx.csv", "when,fraud\n2018-07-25T13:05:00Z,0\n2018-07-25T23:30:00+02:00,1\n")
    t = table.read_table(path, {})
    assert t.kinds["when"] == "datetime"
    assert table.datetimes(t, "when").astype(str).tolist() == ["2018-07-25T13:05:00", "2018-07-25T23:30:00"]


@pytest.mark.parametrize("value, shown", [("2", "'2'"), ("", "an empty value"), ("maybe", "'maybe'")])
def test_labels_must_be_zero_or_one(tmp_path, value, shown):
    path = write(tmp_path / "tx.csv", f"amount,fraud\n1,0\n2,{value}\n")
    t = table.read_table(path, {})
    with pytest.raises(UserError, match=f"line 3, label column 'fraud': {shown}"):
        table.labels(t, "fraud")


def test_text_labels_are_read(tmp_path):
    path = write(tmp_path / "tx.csv", "amount,fraud\n1,True\n2,false\n3,YES\n")
    t = table.read_table(path, {})
    assert table.labels(t, "fraud").tolist() == [1, 0, 1]
