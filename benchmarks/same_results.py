"""Does a change leave what users see unchanged? Every domain's run, trained by two revisions of the code
with the same config and seed, compared metrics.json by metrics.json.

    python benchmarks/same_results.py BEFORE [AFTER]     # git revisions; AFTER: the working tree
    python benchmarks/same_results.py BEFORE --runs vision nlp

One run per domain and task on the shared data (vision: the default digits run, the others shortened
to a few epochs so that both revisions train in about 20 minutes on 2 cores). Training is
deterministic (train.deterministic, the default), so equal code gives equal metrics.json. Prints one
JSON object: per run, "identical" or the keys that differ with both values.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

from common import REPO, SHARED, dlapps, emit, require
from fraud_handbook import FEATURES as HANDBOOK_FEATURES

RUNS = {  # name -> train arguments
    "vision": ["vision"],
    "speech": [
        "speech",
        "--data",
        SHARED / "fsdd" / "recordings",
        "--set",
        "data.split=index:0-4",
        "--set",
        "train.epochs=4",
    ],
    "nlp": ["nlp", "--data", SHARED / "sms_spam" / "SMSSpamCollection"],
    "fraud": [
        "fraud",
        "--data",
        SHARED / "fraud_handbook" / "transactions_2018-07-25_to_2018-08-14.csv.gz",
        "--set",
        f"data.features=[{','.join(HANDBOOK_FEATURES)}]",
    ],
    "generative": ["generative", "--set", "train.epochs=8"],
    "translate": [
        "nlp",
        "--task",
        "translate",
        "--data",
        SHARED / "anki_hin_eng" / "hin.txt",
        "--set",
        "train.epochs=3",
    ],
}


def train_all(code: Path, runs: Path, names: list[str]) -> dict[str, dict]:
    found = {}
    for name in names:
        domain, *args = RUNS[name]
        dlapps(domain, "train", *args, "--runs-dir", runs, "--name", name, code=code)
        found[name] = json.loads((runs / domain / name / "metrics.json").read_text())
    return found


def checkout(revision: str, folder: Path) -> Path:
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(folder), revision], check=True, capture_output=True
    )
    return folder


def compare(before: dict, after: dict) -> dict:
    differ = {
        key: {"before": before.get(key), "after": after.get(key)}
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    }
    return differ or "identical"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after", nargs="?", help="default: the working tree")
    parser.add_argument("--runs", nargs="+", choices=list(RUNS), default=list(RUNS))
    args = parser.parse_args()
    require(SHARED)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        checkouts = [checkout(args.before, scratch / "before")]
        if args.after:
            checkouts.append(checkout(args.after, scratch / "after"))
        codes = [*checkouts, REPO][:2]
        try:
            before, after = (train_all(code, scratch / f"runs-{i}", args.runs) for i, code in enumerate(codes))
        finally:
            for folder in checkouts:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(folder)], check=False)
    emit(
        "same_results",
        {
            "before": args.before,
            "after": args.after or "working tree",
            "runs": {name: compare(before[name], after[name]) for name in args.runs},
        },
    )


if __name__ == "__main__":
    main()
