"""The Fraud Detection Handbook's transaction simulator (Le Borgne et al., chapter 3, "Simulated
dataset"), vectorised with NumPy and seeded: customers and terminals on a 100 x 100 grid, each
customer paying at terminals within ``radius``, a Poisson number of transactions a day around
noon, and the handbook's three fraud scenarios.

It follows the published algorithm, not its random streams: a seed gives the same data every
time, but not the handbook's own files (those came from NumPy's legacy global seed and pandas'
sampling).
"""

from __future__ import annotations

import dataclasses

import numpy as np

DAY = 86_400
COLUMNS = (
    "TRANSACTION_ID",
    "TX_TIME_SECONDS",
    "TX_TIME_DAYS",
    "CUSTOMER_ID",
    "TERMINAL_ID",
    "TX_AMOUNT",
    "TX_FRAUD",
    "TX_FRAUD_SCENARIO",
)


@dataclasses.dataclass(frozen=True)
class Simulation:
    """Sizes of the handbook's published dataset by default (1.75 million transactions in 183 days)."""

    customers: int = 5000
    terminals: int = 10_000
    days: int = 183
    radius: float = 5.0  # a customer uses the terminals this close on the grid
    seed: int = 0
    amount_fraud_threshold: float = 220.0  # scenario 1: every larger amount is fraud
    compromised_terminals_per_day: int = 2  # scenario 2: all their transactions for the next 28 days
    compromised_customers_per_day: int = 3  # scenario 3: a third of their transactions for 14 days, amount x5


def transactions(sim: Simulation) -> dict[str, np.ndarray]:
    """Legitimate transactions of every customer, in time order (handbook: generate_transactions_table)."""
    rng = np.random.default_rng(sim.seed)
    customer_xy = rng.uniform(0, 100, size=(sim.customers, 2))
    mean_amount = rng.uniform(5, 100, size=sim.customers)
    per_day = rng.uniform(0, 4, size=sim.customers)
    terminal_xy = rng.uniform(0, 100, size=(sim.terminals, 2))

    counts = rng.poisson(np.repeat(per_day, sim.days))  # [customer, day] flattened
    customer = np.repeat(np.repeat(np.arange(sim.customers), sim.days), counts)
    day = np.repeat(np.tile(np.arange(sim.days), sim.customers), counts)
    second = rng.normal(DAY / 2, 20_000, size=len(customer)).astype(np.int64)
    keep = (second > 0) & (second < DAY)  # the handbook drops draws outside the day
    customer, day, second = customer[keep], day[keep], second[keep]
    amount = rng.normal(mean_amount[customer], mean_amount[customer] / 2)
    negative = amount < 0
    amount[negative] = rng.uniform(0, 2 * mean_amount[customer[negative]])
    terminal = nearby_terminal(customer_xy, terminal_xy, customer, sim.radius, rng)
    has_terminal = terminal >= 0  # customers with no terminal in reach make no transactions
    columns = {
        "TX_TIME_SECONDS": second[has_terminal] + day[has_terminal] * DAY,
        "TX_TIME_DAYS": day[has_terminal],
        "CUSTOMER_ID": customer[has_terminal],
        "TERMINAL_ID": terminal[has_terminal],
        "TX_AMOUNT": np.round(amount[has_terminal], 2),
    }
    order = np.argsort(columns["TX_TIME_SECONDS"], kind="stable")
    columns = {name: values[order] for name, values in columns.items()}
    return {"TRANSACTION_ID": np.arange(len(order)), **columns}


def nearby_terminal(customer_xy, terminal_xy, customer, radius, rng) -> np.ndarray:
    """For each transaction, a terminal drawn uniformly among its customer's terminals within ``radius`` (-1: none)."""
    chosen = np.full(len(customer), -1, dtype=np.int64)
    by_customer = np.argsort(customer, kind="stable")
    starts = np.searchsorted(customer[by_customer], np.arange(len(customer_xy) + 1))
    for c in range(len(customer_xy)):
        rows = by_customer[starts[c] : starts[c + 1]]
        if len(rows) == 0:
            continue
        near = np.flatnonzero(np.hypot(*(terminal_xy - customer_xy[c]).T) < radius)
        if len(near):
            chosen[rows] = near[rng.integers(0, len(near), size=len(rows))]
    return chosen


def add_frauds(tx: dict[str, np.ndarray], sim: Simulation) -> dict[str, np.ndarray]:
    """The handbook's three scenarios (add_frauds), applied in its order; scenario 3 multiplies amounts by 5."""
    rng = np.random.default_rng([sim.seed, 1])
    fraud = np.zeros(len(tx["TX_AMOUNT"]), dtype=np.int64)
    scenario = np.zeros_like(fraud)
    amount = tx["TX_AMOUNT"].copy()
    days = tx["TX_TIME_DAYS"]
    over = amount > sim.amount_fraud_threshold
    fraud[over], scenario[over] = 1, 1
    last_day = int(days.max()) if len(days) else 0
    for day in range(last_day):
        terminals = rng.choice(sim.terminals, size=sim.compromised_terminals_per_day, replace=False)
        hit = (days >= day) & (days < day + 28) & np.isin(tx["TERMINAL_ID"], terminals)
        fraud[hit], scenario[hit] = 1, 2
    for day in range(last_day):
        customers = rng.choice(sim.customers, size=sim.compromised_customers_per_day, replace=False)
        window = np.flatnonzero((days >= day) & (days < day + 14) & np.isin(tx["CUSTOMER_ID"], customers))
        stolen = rng.choice(window, size=len(window) // 3, replace=False)
        amount[stolen] = np.round(amount[stolen] * 5, 2)
        fraud[stolen], scenario[stolen] = 1, 3
    return {**tx, "TX_AMOUNT": amount, "TX_FRAUD": fraud, "TX_FRAUD_SCENARIO": scenario}


def simulate(sim: Simulation = Simulation()) -> dict[str, np.ndarray]:
    """Transactions with their fraud labels: the columns of the handbook's raw dataset (``COLUMNS``)."""
    return add_frauds(transactions(sim), sim)
