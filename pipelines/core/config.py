"""Typed configs: dataclasses with defaults, loaded from YAML and ``key=value`` overrides.

Defaults live on the dataclasses and nowhere else. A domain's config is a dataclass whose
fields are sections (``data``, ``model``, ``train``, ``eval``); every leaf is typed, so a
wrong type or an unknown key is a :class:`UserError` naming the key, never a silent default.
A leaf's valid values are part of its type: ``Annotated[int, Range(1, 1000)]`` or
``Annotated[str, OneOf("adam", "sgd")]``, checked whenever a config is read (``--set``,
``--config``, ``--resume``: :func:`from_dict`), before any data is. Every float must be finite.

>>> cfg = apply_overrides(TrainConfig(), ["epochs=3", "learning_rate=1e-3"])
>>> cfg.epochs, cfg.learning_rate
(3, 0.001)
"""

from __future__ import annotations

import dataclasses
import functools
import math
import operator
import types
import typing
from pathlib import Path
from typing import Annotated, Any

import yaml

from pipelines.core.errors import UserError
from pipelines.core.files import read_bytes


@dataclasses.dataclass(frozen=True)
class Range:
    """The valid numbers of a setting: ``low <= x <= high``; ``above``/``below`` for bounds that are excluded."""

    low: float | None = None
    high: float | None = None
    above: float | None = None
    below: float | None = None

    def check(self, value: float, path: str) -> None:
        if (
            (self.low is not None and value < self.low)
            or (self.high is not None and value > self.high)
            or (self.above is not None and value <= self.above)
            or (self.below is not None and value >= self.below)
        ):
            raise UserError(f"config key '{path}' must be {self}, got {_shown(value)}")

    def __str__(self) -> str:
        bounds = [
            f"{sign} {_number(bound)}"
            for sign, bound in ((">=", self.low), (">", self.above), ("<=", self.high), ("<", self.below))
            if bound is not None
        ]
        return " and ".join(bounds)


@dataclasses.dataclass(frozen=True)
class OneOf:
    """The valid names of a setting (``fold_case``: in any case, as ``true``/``True`` for a text flag)."""

    choices: tuple
    fold_case: bool = False

    def __init__(self, *choices: str | int, fold_case: bool = False):
        object.__setattr__(self, "choices", choices)
        object.__setattr__(self, "fold_case", fold_case)

    def check(self, value: str | int, path: str) -> None:
        if (value.lower() if self.fold_case else value) not in self.choices:
            known = ", ".join(map(str, self.choices))
            raise UserError(f"config key '{path}' must be one of: {known}; got {_shown(value)}")


def _number(bound: float) -> str:
    return f"{int(bound):,}" if float(bound).is_integer() else f"{bound:g}"


@dataclasses.dataclass(frozen=True)
class Length:
    """The valid lengths of a list setting: ``low`` to ``high`` items (``high`` defaults to ``low``)."""

    low: int
    high: int | None = None

    def check(self, value: list, path: str) -> None:
        high = self.high if self.high is not None else self.low
        if not self.low <= len(value) <= high:
            wanted = f"{self.low}" if high == self.low else f"{self.low} to {high}"
            raise UserError(f"config key '{path}' needs {wanted} values, got {len(value)}: {_shown(value)}")


# The common ranges. Upper bounds are far beyond any sensible value; they turn a typo (an extra zero, a
# number pasted into the wrong key) into one line instead of minutes of work before an out-of-memory abort.
Count = Annotated[int, Range(1, 1_000_000)]  # epochs, batch sizes, units, examples
Small = Annotated[int, Range(1, 1_000)]  # layers, heads, kernel sizes
Width = Annotated[int, Range(1, 65_536)]  # units, filters, embedding sizes
Size = Annotated[int, Range(0, 1_000_000)]  # counts where 0 means none (or: off, automatic)
Seed = Annotated[int, Range(0, 2**32 - 1)]  # what NumPy and TensorFlow seeds accept
Fraction = Annotated[float, Range(above=0, below=1)]  # a share of the data, strictly between 0 and 1
Dropout = Annotated[float, Range(0, below=1)]
Positive = Annotated[float, Range(above=0, high=1e12)]
NonNegative = Annotated[float, Range(0, 1e12)]


@dataclasses.dataclass
class TrainConfig:
    """How to fit: the same knobs for every domain."""

    epochs: Count = 10
    batch_size: Count = 64
    optimizer: Annotated[str, OneOf("adam", "adamw", "sgd")] = "adamw"
    learning_rate: Annotated[float, Range(above=0, high=10)] = 3e-3
    beta_1: Annotated[float, Range(0, below=1)] = 0.9  # adam/adamw: decay of the gradient's running mean (GANs: 0.5)
    weight_decay: Annotated[float, Range(0, 1)] = 1e-4
    schedule: Annotated[str, OneOf("constant", "cosine")] = "cosine"  # cosine: with linear warm-up
    warmup_epochs: Annotated[float, Range(0, 1_000_000)] = 0.0
    label_smoothing: Annotated[float, Range(0, below=1)] = 0.0
    early_stopping_patience: Size = 0  # 0 = off; else epochs without improvement of `monitor`
    # At the end of a run with early stopping, the weights of the best epoch come back: always (Keras 3), or only
    # when patience ran out (tf.keras 2); when_stopped keeps the last epoch's weights of a run that finished its
    # schedule still improving, where the decayed learning rate has settled them and a small validation part
    # would pick an epoch by its noise (the forecast domain; benchmarks/README.md)
    restore_best_weights: Annotated[str, OneOf("always", "when_stopped")] = "always"
    # What "best" means for early stopping and checkpoints/best.keras: a logged validation value; losses
    # are minimised, anything else (val_accuracy, val_pr_auc) maximised.
    monitor: str = "val_loss"
    mixed_precision: bool = False
    # mirrored: all visible GPUs of this machine; multi_worker: the processes TF_CONFIG names, or
    # train.workers processes on this machine (pipelines/core/cluster.py)
    strategy: Annotated[str, OneOf("default", "mirrored", "multi_worker")] = "default"
    workers: Annotated[int, Range(0, 64)] = 0  # multi_worker without TF_CONFIG: start this many on 127.0.0.1
    join_seconds: Annotated[float, Range(1, 86_400)] = 300.0  # multi_worker: how long to wait for the others
    seed: Seed = 0
    deterministic: bool = True  # op determinism: same config + seed -> same weights
    steps_per_epoch: Annotated[int, Range(1, 10**9)] | None = None  # None = one pass over the training split
    # A wall-clock budget for fit, counted from each start (0 = none): stops after the batch that crosses it.
    max_minutes: Annotated[float, Range(0, 10**7)] = 0.0

    def check_batch_shared_among(self, count: int, what: str) -> None:
        """``batch_size`` is the global batch: each of ``count`` replicas (or workers) must get an example of it."""
        if self.batch_size < count:
            raise UserError(
                f"train.batch_size {self.batch_size} is the global batch and must be at least the {count} {what} "
                "it is shared among; raise it"
            )


@dataclasses.dataclass
class EvalConfig:
    """What the evaluation callback and ``evaluate`` write."""

    top_k: Small = 3
    every_epochs: Size = 1  # validation summaries every N epochs (0 = never; the test split is always evaluated)
    sample_images: Annotated[int, Range(0, 1_000)] = 16
    # argmax | f1 | cost: for two classes, the threshold on the positive (rarer) class's probability that
    # maximises its F1, or minimises cost_fp * false positives + cost_fn * false negatives, on the
    # validation split; metrics, predict and the exported model use it (run.json keeps it).
    decision: Annotated[str, OneOf("argmax", "f1", "cost")] = "argmax"
    cost_fp: Positive = 1.0
    cost_fn: Positive = 1.0


def from_dict(cls: type, values: dict | None, where: str = "") -> Any:
    """Build dataclass ``cls`` from a nested dict, checking every key, type and range."""
    values = {} if values is None else values
    if not isinstance(values, dict):
        raise UserError(f"config section '{where or cls.__name__}' must be a mapping, got {_shown(values)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls, include_extras=True)
    kwargs = {}
    for key, value in values.items():
        path = f"{where}.{key}" if where else key
        if key not in fields:
            raise UserError(f"unknown config key '{path}'; known keys here: {', '.join(fields)}")
        kwargs[key] = _coerce(hints[key], value, path)
    return cls(**kwargs)


def to_dict(config: Any) -> dict:
    """The config as plain nested dicts/lists, ready for YAML."""
    return dataclasses.asdict(config)


def apply_overrides(config: Any, overrides: list[str]) -> Any:
    """Return a copy of ``config`` with each ``dotted.key=value`` applied (value parsed as YAML)."""
    values = to_dict(config)
    hints = _leaf_hints(type(config))
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set expects key=value, got '{item}' (e.g. --set train.epochs=5)")
        section = values
        *parents, leaf = key.strip().split(".")
        for name in parents:
            if not isinstance(section.get(name), dict):
                raise UserError(f"unknown config key '{key}' in --set {item}; see config.yaml of a run")
            section = section[name]
        if leaf not in section:
            raise UserError(f"unknown config key '{key}' in --set {item}; see config.yaml of a run")
        section[leaf] = _parse_value(raw, hints.get(key.strip()))
    return from_dict(type(config), values)


# A config file is a page of settings: anything larger or deeper is not one (and /dev/zero never ends).
MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_DEPTH = 16
MAX_CONFIG_VALUES = 100_000  # YAML aliases can make a small file a huge document ("billion laughs")


def load_yaml(path: str | Path, cls: type) -> Any:
    """Read a config file written by a run (or by hand) into dataclass ``cls``."""
    return from_dict(cls, read_config_file(path))


def read_config_file(path: str | Path) -> Any:
    """A config file's YAML document: a bounded, regular, UTF-8 file, or a :class:`UserError` saying why not."""
    path = Path(path)
    raw = read_bytes(path, "config file", "; give a YAML file such as a run's config.yaml", MAX_CONFIG_BYTES)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"config file {path} is not UTF-8 text (byte {err.start}); save it as UTF-8") from None
    try:
        values = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError) as err:  # ValueError: an integer of more than 4,300 digits
        raise UserError(f"config file {path} is not valid YAML: {str(err).splitlines()[0]}") from None
    except RecursionError:  # the parser recurses once per level: thousands of levels exhaust Python's stack
        raise UserError(_too_deep(path)) from None
    _check_shape(values, depth=0, path=path)
    return values


def _too_deep(path: Path) -> str:
    return f"config file {path} is nested more than {MAX_CONFIG_DEPTH} levels deep; a config has 2 or 3"


def _check_shape(values: Any, depth: int, path: Path, counted: list | None = None) -> None:
    """Refuse documents nested deeper than :data:`MAX_CONFIG_DEPTH` or holding more than :data:`MAX_CONFIG_VALUES`."""
    counted = counted if counted is not None else [0]
    counted[0] += 1
    if depth >= MAX_CONFIG_DEPTH:
        raise UserError(_too_deep(path))
    if counted[0] > MAX_CONFIG_VALUES:
        raise UserError(f"config file {path} holds more than {MAX_CONFIG_VALUES:,} values (YAML aliases?)")
    children = values.values() if isinstance(values, dict) else values if isinstance(values, list) else ()
    for child in children:
        _check_shape(child, depth + 1, path, counted)


def dump_yaml(config: Any, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False), encoding="utf-8")


def flatten(values: dict, prefix: str = "") -> dict:
    """``{'train': {'epochs': 3}}`` -> ``{'train.epochs': 3}`` (for HParams and tables)."""
    flat = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _leaf_hints(cls: type, prefix: str = "") -> dict[str, Any]:
    """``'data.path' -> Optional[str]`` for every leaf of a config dataclass."""
    hints = {}
    for name, hint in typing.get_type_hints(cls, include_extras=True).items():
        if dataclasses.is_dataclass(hint):
            hints.update(_leaf_hints(hint, f"{prefix}{name}."))
        else:
            hints[f"{prefix}{name}"] = hint
    return hints


def _parse_value(raw: str, hint: Any) -> Any:
    """A --set value: text as typed for string settings (paths like '010' or '~/data'), YAML otherwise."""
    hint = _without_constraints(hint)
    if hint is str or hint == (str | None):
        return None if hint is not str and raw.strip() in ("null", "None", "") else raw
    try:
        return yaml.safe_load(raw)
    except (yaml.YAMLError, ValueError, RecursionError):  # ValueError: an integer of more than 4,300 digits
        return raw


def _coerce(hint: Any, value: Any, path: str) -> Any:
    """Check ``value`` against type ``hint``; allow the lossless conversions YAML needs."""
    origin = typing.get_origin(hint)
    if origin is Annotated:
        base, *constraints = typing.get_args(hint)
        value = _coerce(base, value, path)
        for constraint in constraints:
            constraint.check(value, path)
        return value
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, path)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        others = [a for a in args if a is not type(None)]
        if len(others) == 1:  # X | None: X's own message (a range, say), not "expects X | None"
            return _coerce(others[0], value, path)
        for arg in others:
            try:
                return _coerce(arg, value, path)
            except UserError:
                continue
        raise _type_error(path, hint, value)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _type_error(path, hint, value)
        (item_hint, *_) = typing.get_args(hint) or (Any,)
        items = [_coerce(item_hint, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if hint is Any:
        return value
    if hint is float:
        return _finite(value, path)
    if hint is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # names like 'speaker:7' or a numeric run name
    if hint in (int, float, bool, str) and (type(value) is hint):
        return value
    raise _type_error(path, hint, value)


def _finite(value: Any, path: str) -> float:
    """A float setting: a number (YAML 1.1 reads '1e-3', without a dot, as a string), never nan or inf."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _type_error(path, float, value)
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise _type_error(path, float, value) from None
    if not math.isfinite(number):
        raise UserError(f"config key '{path}' must be a finite number, got {value!r}")
    return number


def _without_constraints(hint: Any) -> Any:
    """``Annotated[int, Range(...)] | None`` -> ``int | None``."""
    if typing.get_origin(hint) is Annotated:
        return typing.get_args(hint)[0]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return functools.reduce(operator.or_, [_without_constraints(arg) for arg in typing.get_args(hint)])
    return hint


def _shown(value: Any, limit: int = 60) -> str:
    """A value as an error message quotes it: its repr, cut short (a pasted page is not one line)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def _type_error(path: str, hint: Any, value: Any) -> UserError:
    hint = _without_constraints(hint)
    name = getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
    return UserError(f"config key '{path}' expects {name}, got {_shown(value)} ({type(value).__name__})")
