"""The Fraud Detection Handbook's evaluation protocol, in NumPy: the train / delay / test split
(get_train_delay_test_set) and card precision@k (card_precision_top_k), as its chapters 3-5 define them.

Rows are positions into the transaction columns; days are the simulation's TX_TIME_DAYS.
"""

from __future__ import annotations

import numpy as np


def train_delay_test(
    days: np.ndarray,
    customers: np.ndarray,
    frauds: np.ndarray,
    train_start: int,
    train_days: int = 7,
    delay_days: int = 7,
    test_days: int = 7,
) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, test rows). Test day i drops the customers already known to be defrauded: those with a
    fraud in the training window, or on the delay days up to day i - 1 of it (a fraud is known one day later
    for each test day that passes), exactly as the handbook does."""
    days, customers, frauds = np.asarray(days), np.asarray(customers), np.asarray(frauds)
    train = np.flatnonzero((days >= train_start) & (days < train_start + train_days))
    known = set(customers[train][frauds[train] == 1].tolist())
    test = []
    for i in range(test_days):
        revealed = (days == train_start + train_days + i - 1) & (frauds == 1)
        known |= set(customers[revealed].tolist())
        on_day = np.flatnonzero(days == train_start + train_days + delay_days + i)
        test.append(on_day[~np.isin(customers[on_day], list(known))])
    return train, np.concatenate(test)


def card_precision_at_k(
    days: np.ndarray, customers: np.ndarray, frauds: np.ndarray, scores: np.ndarray, k: int = 100
) -> tuple[float, list[float]]:
    """Mean over days of the share of truly compromised cards among the day's k highest-scored cards (a card's
    score: its highest transaction score that day). Cards detected on an earlier day are left out of later ones."""
    days, customers, frauds, scores = map(np.asarray, (days, customers, frauds, scores))
    detected: set = set()
    per_day = []
    for day in np.unique(days):
        rows = np.flatnonzero((days == day) & ~np.isin(customers, list(detected)))
        cards, inverse = np.unique(customers[rows], return_inverse=True)
        best = np.full(len(cards), -np.inf)
        np.maximum.at(best, inverse, scores[rows])
        compromised = np.zeros(len(cards), dtype=bool)
        np.logical_or.at(compromised, inverse, frauds[rows] == 1)
        top = np.argsort(-best, kind="stable")[:k]
        hits = cards[top][compromised[top]]
        per_day.append(len(hits) / k)
        detected |= set(hits.tolist())
    return float(np.mean(per_day)), per_day
