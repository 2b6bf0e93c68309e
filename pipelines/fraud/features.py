"""The Fraud Detection Handbook's feature transformation (Le Borgne et al., chapter 3, "Baseline
feature transformation"), in NumPy: calendar flags, each customer's spending over the last 1, 7
and 30 days, and each terminal's fraud rate over the same windows, seen through a delay.

The delay is the handbook's: a transaction's fraud label is known only some days later, so a
terminal's risk at time t counts the frauds in (t - delay - window, t - delay], never the most
recent ones. Rows are identified by position; nothing here needs pandas.
"""

from __future__ import annotations

import numpy as np

DAY = 86_400
WINDOWS = (1, 7, 30)  # days
DELAY = 7  # days until a fraud label is known


def calendar_flags(seconds: np.ndarray, start_weekday: int = 6) -> dict[str, np.ndarray]:
    """TX_DURING_WEEKEND (Saturday, Sunday) and TX_DURING_NIGHT (hour <= 6), from seconds since the
    simulation's first midnight (the handbook starts on Sunday 2018-04-01: ``start_weekday`` 6, Monday 0)."""
    seconds = np.asarray(seconds, dtype=np.int64)
    weekday = (seconds // DAY + start_weekday) % 7
    hour = (seconds % DAY) // 3600
    return {"TX_DURING_WEEKEND": (weekday >= 5).astype(np.int64), "TX_DURING_NIGHT": (hour <= 6).astype(np.int64)}


def trailing_window(
    keys: np.ndarray, seconds: np.ndarray, values: np.ndarray, end_offset: int, length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per row i: the number of rows of the same key, and the sum of their ``values``, with times in
    (t_i - end_offset - length, t_i - end_offset] -- for end_offset 0, rows up to and including i itself
    (ties in time: earlier rows only, as a pandas time-based rolling window counts them)."""
    n = len(keys)
    order = np.lexsort((np.arange(n), seconds, keys))
    key, time = np.asarray(keys, np.int64)[order], np.asarray(seconds, np.int64)[order]
    span = int(time.max() - min(time.min(), 0)) + end_offset + length + 1
    position = key * span + time  # sorted, one key's rows contiguous and in time order
    totals = np.concatenate([[0.0], np.cumsum(np.asarray(values, np.float64)[order])])
    first = np.searchsorted(position, key * span + time - end_offset - length, side="right")
    if end_offset:
        last = np.searchsorted(position, key * span + time - end_offset, side="right")
    else:
        last = np.arange(1, n + 1)  # up to and including the row itself
    count, total = np.empty(n), np.empty(n)
    count[order] = last - first
    total[order] = totals[last] - totals[first]
    return count, total


def customer_spending(customers: np.ndarray, seconds: np.ndarray, amounts: np.ndarray) -> dict[str, np.ndarray]:
    """CUSTOMER_ID_NB_TX_{w}DAY_WINDOW and CUSTOMER_ID_AVG_AMOUNT_{w}DAY_WINDOW, the transaction included."""
    features = {}
    for days in WINDOWS:
        count, total = trailing_window(customers, seconds, amounts, 0, days * DAY)
        features[f"CUSTOMER_ID_NB_TX_{days}DAY_WINDOW"] = count
        features[f"CUSTOMER_ID_AVG_AMOUNT_{days}DAY_WINDOW"] = total / count
    return features


def terminal_risk(
    terminals: np.ndarray, seconds: np.ndarray, frauds: np.ndarray, delay: int = DELAY
) -> dict[str, np.ndarray]:
    """TERMINAL_ID_NB_TX_{w}DAY_WINDOW and TERMINAL_ID_RISK_{w}DAY_WINDOW (frauds / transactions, 0 when
    none) over the w days that end ``delay`` days before each transaction."""
    features = {}
    for days in WINDOWS:
        count, total = trailing_window(terminals, seconds, frauds, delay * DAY, days * DAY)
        features[f"TERMINAL_ID_NB_TX_{days}DAY_WINDOW"] = count
        features[f"TERMINAL_ID_RISK_{days}DAY_WINDOW"] = np.divide(
            total, count, out=np.zeros_like(total), where=count > 0
        )
    return features
