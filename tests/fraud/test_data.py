"""Roles of the columns and the splits: identifiers and leakage never features, the handbook's time split."""

import dataclasses

import numpy as np
import pytest

from pipelines.core.errors import UserError
from pipelines.fraud import data as fraud_data
from pipelines.fraud import table
from pipelines.fraud.pipeline import FraudDataConfig, input_name, wants_log1p
from tests.fraud.helpers import simulated_table, ulb_columns


def test_simulator_table_has_the_handbook_columns():
    t = simulated_table()
    assert list(t.columns)[:9] == [
        "TRANSACTION_ID",
        "TX_DATETIME",
        "TX_TIME_SECONDS",
        "TX_TIME_DAYS",
        "CUSTOMER_ID",
        "TERMINAL_ID",
        "TX_AMOUNT",
        "TX_FRAUD",
        "TX_FRAUD_SCENARIO",
    ]
    assert len(t.columns) == 23 and t.kinds["TX_DATETIME"] == "datetime"
    assert t.columns["TX_DATETIME"][0].startswith("2018-04-01 ")  # the handbook's first day
    assert simulated_table().columns["TX_AMOUNT"].tolist() == t.columns["TX_AMOUNT"].tolist()  # seeded


def test_roles_leave_out_the_label_identifiers_and_leakage():
    roles = fraud_data.roles(simulated_table(), FraudDataConfig())
    assert (roles.label, roles.time, roles.customer) == ("TX_FRAUD", "TX_DATETIME", "CUSTOMER_ID")
    assert roles.excluded == {
        "TX_FRAUD": "label",
        "TRANSACTION_ID": "identifier",
        "TX_TIME_SECONDS": "data.exclude_columns",
        "TX_TIME_DAYS": "data.exclude_columns",
        "CUSTOMER_ID": "customer/card",
        "TERMINAL_ID": "identifier",
        "TX_FRAUD_SCENARIO": "data.exclude_columns",
    }
    assert len(roles.features) == 16 and "TX_DATETIME" in roles.features
    chosen = fraud_data.roles(simulated_table(), FraudDataConfig(features=["TX_AMOUNT", "TERMINAL_ID"]))
    assert chosen.features == ["TERMINAL_ID", "TX_AMOUNT"]  # named ones, even an identifier


def test_ulb_layout_roles():
    columns = ulb_columns()
    t = table.Table("ulb", {k: np.asarray(v, float) for k, v in columns.items()}, {k: "numeric" for k in columns})
    roles = fraud_data.roles(t, FraudDataConfig())
    assert roles.label == "Class" and roles.time is None and roles.customer is None
    assert roles.features == ["Time", "V1", "V2", "V3", "V4", "Amount"] and roles.excluded[""] == "identifier"


@pytest.mark.parametrize(
    "settings, fragment",
    [
        ({"label_column": "nope"}, "no label column 'nope'"),
        ({"features": ["TX_FRAUD"]}, "cannot be a feature"),
        ({"features": ["TX_AMOUNT", "typo"]}, "'typo'"),
        ({"time_column": "TX_AMOUNT"}, "does not hold dates"),
    ],
)
def test_role_settings_are_checked(settings, fragment):
    with pytest.raises(UserError, match=fragment):
        fraud_data.roles(simulated_table(), FraudDataConfig(**settings))


def test_time_split_is_the_handbooks_protocol_at_the_end_of_the_data():
    t = simulated_table(days=24)
    d = FraudDataConfig()
    roles = fraud_data.roles(t, d)
    labels = table.labels(t, roles.label)
    split = fraud_data.time_split(t, roles, labels, d)
    days = t.columns["TX_TIME_DAYS"]
    assert set(days[split.rows["train"]]) == set(range(3, 9)) and set(days[split.rows["validation"]]) == {9}
    assert set(days[split.rows["test"]]) == set(range(17, 24))
    customers = t.columns["CUSTOMER_ID"]
    known = set(
        customers[np.concatenate([split.rows["train"], split.rows["validation"]])][
            labels[np.concatenate([split.rows["train"], split.rows["validation"]])] == 1
        ]
    )
    assert known and not known & set(customers[split.rows["test"]])  # compromised cards leave the test days
    assert "2018-04-04..2018-04-09" in split.description
    with pytest.raises(UserError, match="covers 24 days.*= 25"):
        fraud_data.time_split(t, roles, labels, dataclasses.replace(d, train_days=11))


def test_stratified_split_and_single_class():
    labels = np.array([0] * 90 + [1] * 10)
    split = fraud_data.stratified(labels, FraudDataConfig())
    assert [labels[split.rows[s]].sum() for s in ("train", "validation", "test")] == [7, 1, 2]
    with pytest.raises(UserError, match="every transaction is labelled legitimate"):
        fraud_data.check_classes(np.zeros(100, int), split)
    with pytest.raises(UserError, match="the validation split has no fraud.*more data"):
        fraud_data.check_classes(labels, fraud_data.Split({**split.rows, "validation": np.array([0])}, "stratified"))


def test_a_card_column_is_followed_not_learned():
    columns = {
        "cc_num": np.array(["4111", "4222"] * 5, dtype=object),
        "amt": np.arange(10.0),
        "is_fraud": np.arange(10.0) % 2,
    }
    t = table.Table("cards", columns, {"cc_num": "categorical", "amt": "numeric", "is_fraud": "numeric"})
    roles = fraud_data.roles(t, FraudDataConfig())
    assert (roles.customer, roles.features, roles.excluded["cc_num"]) == ("cc_num", ["amt"], "customer/card")
    assert fraud_data.roles(t, FraudDataConfig(features=["amt"], exclude_columns=[])).features == ["amt"]


def test_log1p_goes_to_long_tailed_magnitudes_only():
    rng = np.random.default_rng(0)
    assert wants_log1p(rng.exponential(50, 1000), "auto")  # amounts
    assert not wants_log1p(rng.integers(0, 2, 1000).astype(float), "auto")  # flags
    assert not wants_log1p(rng.exponential(0.05, 1000).clip(0, 1), "auto")  # rates
    assert not wants_log1p(rng.normal(size=1000), "auto")  # signed (PCA components)
    assert not wants_log1p(rng.exponential(50, 1000), "none")


def test_input_names_are_signature_safe():
    assert [input_name(c) for c in ["TX_AMOUNT", "", "Amount ($)", "1st"]] == [
        "TX_AMOUNT",
        "column_",
        "Amount____",
        "column_1st",
    ]


def test_history_rows_follow_each_customer_in_time():
    customers = np.array([7, 8, 7, 7, 8, 7])
    times = np.array([5, 1, 2, 9, 3, 9])  # rows 3 and 5: the same second, in file order
    history = fraud_data.history_rows(customers, times, 3)
    assert history.tolist() == [[2, 2, 0], [1, 1, 1], [2, 2, 2], [2, 0, 3], [1, 1, 4], [0, 3, 5]]
