"""Typed configs: dataclasses with defaults, loaded from YAML and ``key=value`` overrides.

Defaults live on the dataclasses and nowhere else. A domain's config is a dataclass whose
fields are sections (``data``, ``model``, ``train``, ``eval``); every leaf is typed, so a
wrong type or an unknown key is a :class:`UserError` naming the key, never a silent default.

>>> cfg = apply_overrides(TrainConfig(), ["epochs=3", "learning_rate=1e-3"])
>>> cfg.epochs, cfg.learning_rate
(3, 0.001)
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from pipelines.core.errors import UserError


@dataclasses.dataclass
class TrainConfig:
    """How to fit: the same knobs for every domain."""

    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adamw"  # adam | adamw | sgd
    learning_rate: float = 3e-3
    beta_1: float = 0.9  # adam/adamw: decay of the gradient's running mean (GANs train with 0.5)
    weight_decay: float = 1e-4
    schedule: str = "cosine"  # constant | cosine (with linear warm-up)
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    early_stopping_patience: int = 0  # 0 = off; else epochs without improvement of `monitor`
    # What "best" means for early stopping and checkpoints/best.keras: a logged validation value; losses
    # are minimised, anything else (val_accuracy, val_pr_auc) maximised.
    monitor: str = "val_loss"
    mixed_precision: bool = False
    strategy: str = "default"  # default | mirrored (all visible GPUs)
    seed: int = 0
    deterministic: bool = True  # op determinism: same config + seed -> same weights
    steps_per_epoch: int | None = None  # None = one pass over the training split
    max_minutes: float = (
        0.0  # a wall-clock budget for fit, counted from each start (0 = none): stops after the batch that crosses it
    )


@dataclasses.dataclass
class EvalConfig:
    """What the evaluation callback and ``evaluate`` write."""

    top_k: int = 3
    every_epochs: int = 1  # validation summaries every N epochs (0 = never; the test split is always evaluated)
    sample_images: int = 16
    # argmax | f1 | cost: for two classes, the threshold on the positive (rarer) class's probability that
    # maximises its F1, or minimises cost_fp * false positives + cost_fn * false negatives, on the
    # validation split; metrics, predict and the exported model use it (run.json keeps it).
    decision: str = "argmax"
    cost_fp: float = 1.0
    cost_fn: float = 1.0


def from_dict(cls: type, values: dict | None, where: str = "") -> Any:
    """Build dataclass ``cls`` from a nested dict, checking every key and type."""
    values = values or {}
    if not isinstance(values, dict):
        raise UserError(f"config section '{where or cls.__name__}' must be a mapping, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
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


def load_yaml(path: str | Path, cls: type) -> Any:
    """Read a config file written by a run (or by hand) into dataclass ``cls``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise UserError(f"config file {path} is not valid YAML: {str(err).splitlines()[0]}") from None
    return from_dict(cls, values)


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
    for name, hint in typing.get_type_hints(cls).items():
        if dataclasses.is_dataclass(hint):
            hints.update(_leaf_hints(hint, f"{prefix}{name}."))
        else:
            hints[f"{prefix}{name}"] = hint
    return hints


def _parse_value(raw: str, hint: Any) -> Any:
    """A --set value: text as typed for string settings (paths like '010' or '~/data'), YAML otherwise."""
    if hint is str or hint == (str | None):
        return None if hint is not str and raw.strip() in ("null", "None", "") else raw
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def _coerce(hint: Any, value: Any, path: str) -> Any:
    """Check ``value`` against type ``hint``; allow the lossless conversions YAML needs."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, path)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
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
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:
            return float(value)  # YAML 1.1 reads '1e-3' (no dot) as a string
        except ValueError:
            pass
    if hint is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # names like 'speaker:7' or a numeric run name
    if hint in (int, float, bool, str) and (type(value) is hint):
        return value
    raise _type_error(path, hint, value)


def _type_error(path: str, hint: Any, value: Any) -> UserError:
    name = getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
    return UserError(f"config key '{path}' expects {name}, got {value!r} ({type(value).__name__})")
