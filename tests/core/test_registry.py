import pytest

from pipelines.core.errors import UserError
from pipelines.core.registry import Registry


def test_register_get_describe():
    registry = Registry("widget")

    @registry.register("round")
    def build_round():
        """A round widget.

        More text that is not shown."""

    assert registry.get("round") is build_round
    assert registry.describe() == {"round": "A round widget."}


def test_unknown_name_lists_known_ones():
    registry = Registry("widget")
    registry.register("b")(lambda: None)
    registry.register("a")(lambda: None)
    with pytest.raises(UserError, match="unknown widget 'c'; choose one of: a, b"):
        registry.get("c")


def test_duplicate_registration_is_a_bug():
    registry = Registry("widget")
    registry.register("a")(lambda: None)
    with pytest.raises(ValueError):
        registry.register("a")(lambda: None)
