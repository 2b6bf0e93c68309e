"""Small transaction files for the fraud tests: the handbook's columns from the simulator, or the ULB layout."""

import csv
import gzip
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from pipelines.fraud import data as fraud_data
from pipelines.fraud.pipeline import PIPELINE as FRAUD

# The fraud task's smallest config: the simulator at a size that trains in seconds (21 days for the time split,
# ~600 transactions a day) and a few epochs of a narrow model.
SMALL_SIMULATION = [s for s in FRAUD.example_settings if s.startswith("data.")]
FRAUD_FAST = [s for s in FRAUD.example_settings if not s.startswith("data.")]


def simulated_table(customers=300, terminals=600, days=24, seed=0):
    settings = SimpleNamespace(customers=customers, terminals=terminals, days=days, simulation_seed=seed)
    return fraud_data.simulated(settings)


def write_table(path: Path, columns: dict[str, np.ndarray], zipped: bool = False) -> Path:
    """Columns as a CSV file with a header row (gzip when asked)."""
    opener = gzip.open if zipped else open
    with opener(path, "wt", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in zip(*columns.values()):
            writer.writerow([f"{v:g}" if isinstance(v, float) and float(v).is_integer() else v for v in row])
    return path


def ulb_columns(rows: int = 400, seed: int = 0) -> dict[str, np.ndarray]:
    """Kaggle/ULB creditcard.csv layout: an unnamed row index, Time, V1..V4, Amount, Class (frauds shifted in V1/V2)."""
    rng = np.random.default_rng(seed)
    fraud = (rng.random(rows) < 0.2).astype(int)
    columns = {"": np.arange(rows), "Time": np.sort(rng.uniform(0, 172_000, rows)).round(1)}
    for i in range(1, 5):
        columns[f"V{i}"] = rng.normal(size=rows) + (2.0 * fraud if i <= 2 else 0)
    columns["Amount"] = rng.exponential(80, rows).round(2)
    columns["Class"] = fraud
    return columns
