"""What `dlapps vision tune` costs beyond its trials: a 4-trial grid search against the same 4 configs trained one
after another with `dlapps vision train`, same machine, same script; and the search process's memory per trial.

    python benchmarks/tune_overhead.py [--set KEY=VALUE ...]
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, dlapps, emit, search_memory

SPACE = ["model.width=16,32", "train.learning_rate=0.001,0.003"]


def search(runs: Path, sets: list[str]) -> tuple[float, list[int], Path]:
    command = [sys.executable, "-m", "apps.cli", "vision", "tune", "--algorithm", "grid", "--trials", "4"]
    command += [x for item in SPACE for x in ("--space", item)] + [x for item in sets for x in ("--set", item)]
    start = time.perf_counter()
    process = subprocess.Popen(
        [*command, "--runs-dir", str(runs), "--name", "grid"], cwd=REPO, stdout=subprocess.DEVNULL
    )
    memory = search_memory(process, runs / "vision" / "grid" / "results.csv")
    if process.wait() != 0:
        sys.exit("the search failed")
    return time.perf_counter() - start, memory, runs / "vision" / "grid"


def one_after_another(tune: Path, runs: Path) -> float:
    """The search's own trial configs, each trained by `dlapps vision train --config` in turn."""
    start = time.perf_counter()
    for i, config in enumerate(sorted((tune / "oracle").glob("trial_*/config.yaml"))):
        dlapps("vision", "train", "--config", config, "--runs-dir", runs, "--name", f"plain_{i}")
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        searched, memory, tune = search(Path(tmp), args.sets)
        plain = one_after_another(tune, Path(tmp))
    emit(
        "tune_overhead",
        {
            "settings": args.sets,
            "space": SPACE,
            "search_seconds": round(searched, 1),
            "four_trains_seconds": round(plain, 1),
            "search_vs_trains": round(searched / plain, 3),
            "search_process_rss_mib_after_each_trial": memory,
        },
    )


if __name__ == "__main__":
    main()
