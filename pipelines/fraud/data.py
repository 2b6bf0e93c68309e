"""Fraud data: the embedded simulator or a CSV file -> typed columns, their roles, and the split.

Roles: the label (fraud 0/1), a datetime column (time-based split, the handbook's protocol), a
customer/card column (card precision@k; known-compromised cards leave the test window), and
the features. Identifiers and leakage columns are never features unless named in data.features.
"""

from __future__ import annotations

import dataclasses
import logging
import re

import numpy as np

from pipelines.core.errors import UserError
from pipelines.core.registry import Registry
from pipelines.core.stages import stratified_split
from pipelines.fraud import features as handbook_features
from pipelines.fraud import protocol, simulator, table
from pipelines.fraud.table import Table

log = logging.getLogger(__name__)
SOURCES = Registry("fraud data source")
SPLITS = ("train", "validation", "test")
LABEL_NAMES = ("TX_FRAUD", "Class", "is_fraud", "isFraud", "fraud", "label")
CUSTOMER_NAMES = ("CUSTOMER_ID", "customer_id", "customer", "card_id", "card", "cc_num")
SIMULATION_START = np.datetime64("2018-04-01T00:00:00")  # the handbook's first day, a Sunday


@dataclasses.dataclass
class Roles:
    label: str
    time: str | None
    customer: str | None
    features: list[str]
    excluded: dict[str, str]  # column -> why it is not a feature


@dataclasses.dataclass
class Split:
    """Row positions of each split, and how they were chosen (for the console and run.json)."""

    rows: dict[str, np.ndarray]
    description: str
    days: np.ndarray | None = None  # day number per row of the table (time split only)


@SOURCES.register("simulator")
def simulated(d) -> Table:
    """The Fraud Detection Handbook's transaction simulator and feature transformation (offline; the default)."""
    sim = simulator.Simulation(customers=d.customers, terminals=d.terminals, days=d.days, seed=d.simulation_seed)
    tx = simulator.simulate(sim)
    seconds = tx["TX_TIME_SECONDS"]
    stamps = np.datetime_as_string(SIMULATION_START + seconds.astype("timedelta64[s]"), unit="s")
    columns = {
        "TRANSACTION_ID": tx["TRANSACTION_ID"],
        "TX_DATETIME": np.char.replace(stamps, "T", " ").astype(object),
        **{name: tx[name] for name in simulator.COLUMNS if name != "TRANSACTION_ID"},
        **handbook_features.calendar_flags(seconds),
        **handbook_features.customer_spending(tx["CUSTOMER_ID"], seconds, tx["TX_AMOUNT"]),
        **handbook_features.terminal_risk(tx["TERMINAL_ID"], seconds, tx["TX_FRAUD"]),
    }
    columns = {
        name: values if name == "TX_DATETIME" else np.asarray(values, np.float64) for name, values in columns.items()
    }
    kinds = {name: "datetime" if name == "TX_DATETIME" else "numeric" for name in columns}
    return Table(
        f"simulator ({d.customers} customers, {d.terminals} terminals, {d.days} days, seed {d.simulation_seed})",
        columns,
        kinds,
    )


@SOURCES.register("csv")
def csv_file(d) -> Table:
    """A CSV file (gzip or plain) with a header row: e.g. the handbook's columns or Kaggle's creditcard.csv."""
    if not d.path:
        raise UserError("data.source=csv needs a file: --data transactions.csv")
    t = table.read_table(d.path, {c: "categorical" for c in d.categorical_columns})
    unknown = [c for c in d.categorical_columns if c not in t.columns]
    if unknown:
        raise UserError(
            f"{d.path}: no column(s) {', '.join(map(repr, unknown))} (named in data.categorical_columns); "
            f"the columns are: {', '.join(t.columns)}"
        )
    return t


def is_identifier(name: str) -> bool:
    """Row numbers and ids (TRANSACTION_ID, customer_id, userId, an unnamed index column): never features by
    default, because their values name things instead of measuring them."""
    return name == "" or bool(re.search(r"(^|[_\s.-])id$", name, re.IGNORECASE) or re.search(r"[a-z]Id$", name))


def find_role(t: Table, setting: str, candidates: tuple, what: str) -> str | None:
    if setting == "none":
        return None
    if setting != "auto":
        if setting not in t.columns:
            raise UserError(f"{t.name}: no {what} column '{setting}'; the columns are: {', '.join(t.columns)}")
        return setting
    lowered = {name.lower(): name for name in t.columns}
    return next((lowered[c.lower()] for c in candidates if c.lower() in lowered), None)


def roles(t: Table, d, labelled: bool = True) -> Roles:
    """Which column is what (``labelled``=False: a file to score, whose label column may be absent)."""
    label = find_role(t, d.label_column if labelled else "auto", LABEL_NAMES, "label")
    if label is None and labelled:
        raise UserError(
            f"{t.name}: no label column found (looked for {', '.join(LABEL_NAMES)}); name it with "
            f"--set data.label_column=NAME (the columns are: {', '.join(t.columns)})"
        )
    if d.time_column == "auto":
        time = next((name for name, kind in t.kinds.items() if kind == "datetime"), None)
    else:
        time = find_role(t, d.time_column, (), "time")
        if time is not None and t.kinds[time] != "datetime":
            raise UserError(f"{t.name}: data.time_column '{time}' does not hold dates like 2018-07-25 13:05:00")
    customer = find_role(t, d.customer_column, CUSTOMER_NAMES, "customer")
    missing = [c for c in d.features if c not in t.columns]  # exclusions absent from a file are nothing to exclude
    if missing:
        raise UserError(
            f"{t.name}: no column(s) {', '.join(map(repr, missing))}; the columns are: {', '.join(t.columns)}"
        )
    if label in d.features:
        raise UserError(f"the label column '{label}' cannot be a feature; take it out of data.features")
    excluded = {label: "label"} if label else {}
    for name in t.columns:
        if name in excluded:
            continue
        if d.features:
            if name not in d.features:
                excluded[name] = "not in data.features"
        elif name in d.exclude_columns:
            excluded[name] = "data.exclude_columns"
        elif name == customer:
            excluded[name] = "customer/card"
        elif is_identifier(name):
            excluded[name] = "identifier"
    features = [name for name in t.columns if name not in excluded]
    if not features:
        raise UserError(f"{t.name}: no feature columns left (excluded: {', '.join(excluded)}); set data.features")
    return Roles(label, time, customer, features, excluded)


def time_split(t: Table, r: Roles, labels: np.ndarray, d) -> Split:
    """The handbook's protocol at the end of the data: train days (the last ``validation_days`` of them held out
    for validation), a delay, then the test days without the cards known to be compromised."""
    days = table.datetimes(t, r.time).astype("datetime64[D]").astype(np.int64)
    span = d.train_days + d.delay_days + d.test_days
    first, last = int(days.min()), int(days.max())
    if d.validation_days >= d.train_days:  # each day count's own range is declared in FraudDataConfig
        raise UserError(
            f"data.validation_days ({d.validation_days}) must be less than data.train_days ({d.train_days})"
        )
    if last - first + 1 < span:
        raise UserError(
            f"{t.name} covers {last - first + 1} days; the time split needs train_days + delay_days + "
            f"test_days = {span}: set smaller ones, or data.time_column=none for a stratified split"
        )
    start = last - span + 1
    customers = customer_codes(t, r) if r.customer else np.arange(len(labels))  # no cards: nobody is removed
    train, test = protocol.train_delay_test(days, customers, labels, start, d.train_days, d.delay_days, d.test_days)
    validating = days[train] >= start + d.train_days - d.validation_days
    iso = lambda day: str(np.datetime64(day, "D"))  # noqa: E731
    description = (
        f"time split: train {iso(start)}..{iso(start + d.train_days - d.validation_days - 1)}, validation "
        f"{d.validation_days} day(s), {d.delay_days}-day delay, test {iso(start + d.train_days + d.delay_days)}"
        f"..{iso(last)}" + (f" without cards known to be compromised ({r.customer})" if r.customer else "")
    )
    return Split({"train": train[~validating], "validation": train[validating], "test": test}, description, days)


def stratified(labels: np.ndarray, d) -> Split:
    rows = stratified_split(
        labels, {"test": d.test_fraction, "validation": d.validation_fraction * (1 - d.test_fraction)}, d.split_seed
    )
    return Split(rows, f"stratified random split (seed {d.split_seed})")


def check_classes(labels: np.ndarray, split: Split) -> None:
    if labels.min() == labels.max():
        raise UserError(
            f"every transaction is labelled {'fraud' if labels[0] else 'legitimate'}; training needs both classes"
        )
    advice = "longer data.train_days or validation_days" if split.days is not None else "more data"
    for name in ("train", "validation"):
        if len(split.rows[name]) == 0 or labels[split.rows[name]].max() == 0:
            raise UserError(f"the {name} split has no fraud ({split.description}); it needs {advice}")


def customer_codes(t: Table, r: Roles) -> np.ndarray:
    """The customer/card column as integer codes (ids may be numbers or text)."""
    return np.unique(t.columns[r.customer].astype(str), return_inverse=True)[1].ravel()


def history_rows(customers: np.ndarray, order: np.ndarray, length: int) -> np.ndarray:
    """[rows, length]: each row's customer's ``length`` latest transactions up to and including itself, oldest
    first, in ``order`` (times; ties by position). A customer with fewer repeats their oldest one."""
    n = len(customers)
    by_customer = np.lexsort((np.arange(n), order, customers))
    sorted_customers = customers[by_customer]
    first = np.r_[True, sorted_customers[1:] != sorted_customers[:-1]]
    group_start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    history = np.empty((n, length), dtype=np.int64)
    for step in range(length):
        back = length - 1 - step
        history[by_customer, step] = by_customer[np.maximum(np.arange(n) - back, group_start)]
    return history
