"""A search space: config keys and the values a search may give them, checked against the config's own types.

One dimension per key, written as ``--space KEY=SPEC`` or as ``KEY: SPEC`` in a YAML space file:

- ``16,32,64`` (or a YAML list): a choice among these values;
- ``lo..hi``: any number between the two (whole numbers where the setting is an int);
- ``log:lo..hi``: the same, drawn evenly in log scale (learning rates, weight decay).

Every value a dimension can take is checked as ``--set KEY=VALUE`` would be, bounds included, so an unknown
key, a wrong type or a value outside the setting's range is one line naming the key before any training.

>>> from pipelines.core.config import TrainConfig
>>> [str(d) for d in parse_space(["epochs=2,4", "learning_rate=log:1e-4..1e-2"], TrainConfig())]
['epochs=2,4', 'learning_rate=log:0.0001..0.01']
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipelines.core import config as cfg
from pipelines.core.errors import UserError


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One searched setting: ``choices``, or a range from ``low`` to ``high`` of ``kind`` int or float."""

    key: str
    kind: str  # "choice", "int" or "float"
    choices: tuple = ()
    low: float = 0
    high: float = 0
    log: bool = False

    def __str__(self) -> str:
        if self.kind == "choice":
            return f"{self.key}={','.join(map(str, self.choices))}"
        return f"{self.key}={'log:' if self.log else ''}{self.low:g}..{self.high:g}"

    def value_of(self, drawn: Any) -> Any:
        """A value the oracle drew, as the setting takes it: KerasTuner keeps a true/false choice as 1/0."""
        if self.kind == "choice":
            return next((choice for choice in self.choices if choice == drawn), drawn)
        return int(drawn) if self.kind == "int" else float(drawn)

    @property
    def finite(self) -> bool:
        """Whether a grid can list every value."""
        return self.kind != "float"

    def to_json(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_json(cls, values: dict) -> Dimension:
        return cls(**{**values, "choices": tuple(values.get("choices", ()))})


def parse_space(items: list[str], config: Any) -> list[Dimension]:
    """``KEY=SPEC`` items as dimensions of ``config``'s settings."""
    specs = {}
    for item in items:
        key, sep, spec = item.partition("=")
        if not sep or not key.strip() or not spec.strip():
            raise UserError(f"--space expects KEY=VALUES, got {item!r} (e.g. --space model.width=16,32,64)")
        add_spec(specs, key.strip(), spec.strip(), "--space")
    return dimensions(specs, config)


def read_space_file(path: Path, config: Any) -> list[Dimension]:
    """A YAML mapping of ``KEY: SPEC`` (a list of values, or the ``--space`` text) as dimensions."""
    document = cfg.read_config_file(path)
    if not isinstance(document, dict) or not document:
        raise UserError(f"space file {path} must map config keys to values, e.g. 'model.width: [16, 32, 64]'")
    specs = {}
    for key, spec in document.items():
        if isinstance(spec, dict):
            raise UserError(f"space file {path}: '{key}' holds a section; write the full key, e.g. '{key}.KEY: ...'")
        add_spec(specs, str(key), spec if isinstance(spec, list) else str(spec), f"space file {path}")
    return dimensions(specs, config)


def add_spec(specs: dict, key: str, spec: str | list, where: str) -> None:
    if key in specs:
        raise UserError(f"{where}: '{key}' is given twice; give each key once")
    specs[key] = spec


def dimensions(specs: dict[str, str | list], config: Any) -> list[Dimension]:
    hints = cfg._leaf_hints(type(config))
    found = []
    for key, spec in specs.items():
        if key not in hints:
            near = [known for known in hints if known.split(".")[-1] == key.split(".")[-1]]
            raise UserError(
                f"unknown config key '{key}' in the search space"
                + (f"; did you mean {' or '.join(near)}?" if near else "; see config.yaml of a run")
            )
        found.append(dimension(key, spec, cfg._without_constraints(hints[key]), config))
    return found


def dimension(key: str, spec: str | list, base: Any, config: Any) -> Dimension:
    """The dimension ``spec`` describes for setting ``key`` of type ``base``, each of its values checked."""
    numeric = base in (int, float) or base in (int | None, float | None)
    if isinstance(spec, str) and ".." in spec:
        if not numeric:
            raise UserError(f"search space: '{key}' is not a number setting; give its values as a list: {key}=A,B")
        return number_range(key, spec, int if int in typing.get_args(base) or base is int else float, config)
    values = spec if isinstance(spec, list) else spec.split(",")
    choices = tuple(checked_value(key, value, config) for value in values)
    if any(value is None or isinstance(value, (list, dict)) for value in choices):
        raise UserError(f"search space: '{key}' needs numbers, words or true/false to choose from, got {spec}")
    if len(set(map(repr, choices))) != len(choices):
        raise UserError(f"search space: '{key}' lists a value twice: {spec}")
    if len({type(value) for value in choices}) > 1:
        raise UserError(f"search space: '{key}' mixes kinds of values ({spec}); give values of one kind")
    return Dimension(key, "choice", choices=choices)


def number_range(key: str, spec: str, kind: type, config: Any) -> Dimension:
    log = spec.startswith("log:")
    low_text, _, high_text = spec.removeprefix("log:").partition("..")
    low, high = (checked_value(key, text.strip(), config) for text in (low_text, high_text))
    if not isinstance(low, (int, float)) or not isinstance(high, (int, float)) or isinstance(low, bool):
        raise UserError(f"search space: '{key}={spec}' needs two numbers, as in {key}=LOW..HIGH")
    if kind is int and not (float(low).is_integer() and float(high).is_integer()):
        raise UserError(f"search space: '{key}' is a whole-number setting; give whole bounds, got {spec}")
    if not low < high:
        raise UserError(f"search space: '{key}={spec}' is empty; the first bound must be below the second")
    if log and low <= 0:
        raise UserError(f"search space: '{key}={spec}': a log range needs bounds above 0")
    return Dimension(key, kind.__name__, low=kind(low), high=kind(high), log=log)


def checked_value(key: str, value: Any, config: Any) -> Any:
    """``value`` for ``key`` as the config would hold it: ``--set key=value``'s parsing and checks."""
    text = value if isinstance(value, str) else yaml_text(value)
    try:
        resolved = cfg.apply_overrides(config, [f"{key}={text.strip()}"])
    except UserError as err:
        raise UserError(f"search space: {err}") from None
    return cfg.flatten(cfg.to_dict(resolved))[key]


def yaml_text(value: Any) -> str:
    import yaml

    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def variants(space: list[Dimension], config: Any) -> Iterator[Any]:
    """``config`` with each dimension at each of its choices (or at both bounds), one dimension at a time: for the
    checks a config passes only once its data are known (a model name the domain registered)."""
    for dim in space:
        for value in dim.choices if dim.kind == "choice" else (dim.low, dim.high):
            yield cfg.apply_overrides(config, overrides({dim.key: value}))


def overrides(values: dict[str, Any]) -> list[str]:
    """A trial's values as ``--set`` items."""
    return [f"{key}={value if isinstance(value, str) else yaml_text(value)}" for key, value in values.items()]
