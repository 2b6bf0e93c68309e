"""Every setting of every registered task, fed boundary and junk values through ``--set`` and ``--config``:
``train --check`` (settings checked, data read, nothing trained) answers exit 0, or exit 2 with one line,
never a traceback.

The values come from each key's declared type and range (pipelines/core/config.py), so a new key or a new
task is fuzzed without a line here. A value the config refuses costs milliseconds, so every such case goes
through the CLI by both routes. A value the config accepts makes the CLI read the task's example data
(``Pipeline.example_data``), which costs up to seconds: a seeded sample of them, every key in turn, goes
through the CLI (``DLAPPS_FUZZ_READS``: how many per task, ``all`` for every one; ``DLAPPS_FUZZ_SEED``).
Values that would send a source to tfds are left out: tfds downloads (its loading code is tested on
datasets built locally, in tests/*/test_data.py).
"""

from __future__ import annotations

import math
import os
import random
import types
import typing
from pathlib import Path
from typing import Annotated, Any

import pytest
import yaml
from click.testing import CliRunner

from apps.cli import main
from pipelines.core import config as cfg
from pipelines.core.errors import UserError
from pipelines.domains import DOMAINS, tasks

TASKS = tasks()
IDS = [f"{domain}-{task}" for domain, task in TASKS]
READS = os.environ.get("DLAPPS_FUZZ_READS", "40")
SEED = int(os.environ.get("DLAPPS_FUZZ_SEED", "0"))
TEXTS = ["", "é漢字🙂", "../../etc/passwd", "/dev/zero", "x" * 300, "{a: 1}", "--help", "null"]
OTHER_TYPES = [None, True, [], {"a": 1}, [[1]], "1e999"]


def pipeline_of(domain: str, task: str):
    import importlib

    return importlib.import_module(DOMAINS[domain].tasks[task]).PIPELINE


def values_for(hint: Any) -> list:
    """Boundary and junk values for a setting of type ``hint``: the edges of its range (and just beyond),
    every choice, values of other types, and texts a person might paste."""
    found = [*OTHER_TYPES, *TEXTS]
    for arg in _alternatives(hint):
        base, constraints = _constraints(arg)
        found += {int: [0, -1, 10**12, 2.5], float: [0.0, -1.0, 1e300, math.nan, math.inf, -math.inf]}.get(base, [])
        if typing.get_origin(base) is list:
            (item,) = typing.get_args(base)
            found += [[v] for v in values_for(item) if not isinstance(v, (list, dict))] + [[1, 2, 3]]
        for constraint in constraints:
            if isinstance(constraint, cfg.OneOf):
                found += list(constraint.choices)
            elif isinstance(constraint, cfg.Range):
                found += _edges(constraint, base)
    return _distinct(found)


def _alternatives(hint):
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(hint) if a is not type(None)]
    return [hint]


def _constraints(hint):
    if typing.get_origin(hint) is Annotated:
        base, *constraints = typing.get_args(hint)
        return base, constraints
    return hint, []


def _edges(r: cfg.Range, base: type) -> list:
    """Each bound, and the numbers either side of it, except the upper bound itself: a valid maximum (a million
    simulated customers) is real work, not a check."""
    step = (lambda x, way: int(x) + way) if base is int else (lambda x, way: math.nextafter(x, way * math.inf))
    found = []
    for bound in (r.low, r.above):
        if bound is not None:
            found += [step(bound, -1), base(bound), step(bound, +1)]
    for bound in (r.high, r.below):
        if bound is not None:
            found += [step(bound, +1)] if bound == r.high else [base(bound), step(bound, +1)]
    return found


def _distinct(values: list) -> list:
    seen, kept = set(), []
    for value in values:
        key = (type(value).__name__, repr(value))
        if key not in seen:
            seen.add(key)
            kept.append(value)
    return kept


def cases(config_class: type) -> list[tuple[str, Any]]:
    found = []
    for key, hint in cfg._leaf_hints(config_class).items():
        for value in values_for(hint):
            if (key == "data.source" and value == "tfds") or (key == "data.path" and value in (None, "", "null")):
                continue  # tfds downloads
            found.append((key, value))
    return found


def as_text(value: Any) -> str:
    """A value as a person types it after ``--set key=``."""
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True, allow_unicode=True).strip().removesuffix("...").strip()


def as_document(key: str, value: Any) -> dict:
    document = node = {}
    *parents, leaf = key.split(".")
    for name in parents:
        node = node.setdefault(name, {})
    node[leaf] = value
    return document


class Task:
    """One task's CLI call: its example data and settings as ``--set`` items, and how a case is run."""

    def __init__(self, domain: str, task: str, folder: Path):
        self.domain, self.pipeline, self.folder = domain, pipeline_of(domain, task), folder
        self.task_args = ["--task", task] if len(DOMAINS[domain].tasks) > 1 else []
        data = self.pipeline.example_data(folder)
        overrides = self.pipeline.data_overrides(data[1]) if data else []
        self.settings = [*overrides, *self.pipeline.example_settings]
        self.base = cfg.apply_overrides(self.pipeline.config_class(), self.settings)

    def parsed(self, key: str, value: Any, route: str):
        """The config a case gives (parsed here, as the CLI would), or None where the config refuses it."""
        try:
            if route == "set":
                return cfg.apply_overrides(self.base, [f"{key}={as_text(value)}"])
            document = cfg.to_dict(self.base)
            section = document
            *parents, leaf = key.split(".")
            for name in parents:
                section = section[name]
            section[leaf] = value
            return cfg.from_dict(self.pipeline.config_class, document)
        except UserError:
            return None

    def run(self, key: str, value: Any, route: str):
        others = [s for s in self.settings if s.partition("=")[0] != key]
        args = [x for item in others for x in ("--set", item)]
        if route == "set":
            args += ["--set", f"{key}={as_text(value)}"]
        else:
            path = self.folder / "fuzz.yaml"
            path.write_text(yaml.safe_dump(as_document(key, value), allow_unicode=True), encoding="utf-8")
            args = ["--config", str(path), *args]
        train = [self.domain, "train", *self.task_args, "--runs-dir", str(self.folder / "runs"), *args, "--check"]
        return CliRunner().invoke(main, train)


def problem(result) -> str | None:
    """None for exit 0 (checked) or exit 2 with one line; else what went wrong."""
    if result.exit_code not in (0, 2):
        return f"exit {result.exit_code}: {result.exception!r}"[:300]
    if "Traceback" in result.output + result.stderr:
        return "a traceback"
    lines = result.stderr.strip().splitlines()
    if result.exit_code == 2 and not (len(lines) == 1 and lines[0].startswith("error: ")):
        return f"not one line: {result.stderr[-300:]!r}"
    if result.exit_code == 0 and "settings, data and model OK" not in result.output:
        return f"exit 0 without the check's line: {result.output[-300:]!r}"
    return None


def sample_reads(accepted: list[tuple[str, Any, str]]) -> list[tuple[str, Any, str]]:
    """A seeded sample of the accepted cases, taking every key in turn so each key reads data at least once."""
    if READS == "all":
        return accepted
    rng = random.Random(SEED)
    by_key: dict[str, list] = {}
    for case in rng.sample(accepted, len(accepted)):
        by_key.setdefault(case[0], []).append(case)
    chosen = []
    while len(chosen) < int(READS) and any(by_key.values()):
        for key in sorted(by_key):
            if by_key[key] and len(chosen) < int(READS):
                chosen.append(by_key[key].pop())
    return chosen


@pytest.mark.parametrize("domain, task", TASKS, ids=IDS)
def test_every_setting_takes_junk_with_exit_0_or_one_line(domain, task, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative junk paths resolve inside the test's folder
    (tmp_path / "data").mkdir()
    runner = Task(domain, task, tmp_path / "data")
    refused, accepted = [], []
    for key, value in cases(runner.pipeline.config_class):
        for route in ("set", "config"):
            (accepted if runner.parsed(key, value, route) else refused).append((key, value, route))
    reads = sample_reads(accepted)
    failures = []
    for key, value, route in refused + reads:
        found = problem(runner.run(key, value, route))
        if found:
            failures.append(f"--{route} {key}={as_text(value)[:40]}: {found}")
    print(
        f"{domain}-{task}: {len(refused)} refused by the config, {len(accepted)} accepted, {len(reads)} read the data"
    )
    assert not failures, f"{len(failures)} cases:\n" + "\n".join(failures)
    assert not (tmp_path / "data" / "runs").exists()  # --check writes no run directory
