"""Registries: plain dicts filled by a decorator; the registered names are the CLI's names.

>>> models = Registry("vision model")
>>> @models.register("mlp")
... def build_mlp(spec, config):
...     "A feed-forward net."
>>> models.get("mlp") is build_mlp, models.describe()
(True, {'mlp': 'A feed-forward net.'})
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pipelines.core.errors import UserError

T = TypeVar("T", bound=Callable)


class Registry(dict):
    """Name -> builder. ``get`` of an unknown name is a :class:`UserError` listing the known ones."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, name: str) -> Callable[[T], T]:
        def add(fn: T) -> T:
            if name in self:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self[name] = fn
            return fn

        return add

    def get(self, name: str) -> Callable:  # type: ignore[override]
        if name not in self:
            raise UserError(f"unknown {self.kind} '{name}'; choose one of: {', '.join(sorted(self))}")
        return self[name]

    def describe(self) -> dict[str, str]:
        """Name -> first line of the builder's docstring (what ``dlapps list`` shows)."""
        return {name: ((fn.__doc__ or "").strip().splitlines() or [""])[0] for name, fn in self.items()}
