import dataclasses

import pytest

from pipelines.core.config import TrainConfig, apply_overrides, dump_yaml, flatten, from_dict, load_yaml
from pipelines.core.errors import UserError


@dataclasses.dataclass
class Section:
    size: list[int] | None = None
    names: list[str] = dataclasses.field(default_factory=lambda: ["a"])


@dataclasses.dataclass
class Config:
    section: Section = dataclasses.field(default_factory=Section)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)


def test_overrides_are_typed():
    config = apply_overrides(
        Config(), ["train.epochs=3", "train.learning_rate=1", "section.size=[16, 16]", "train.mixed_precision=true"]
    )
    assert config.train.epochs == 3
    assert config.train.learning_rate == 1.0 and isinstance(config.train.learning_rate, float)
    assert config.section.size == [16, 16]
    assert config.train.mixed_precision is True


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.epochs=three", "train.epochs' expects int"),
        ("train.epochs=2.5", "train.epochs' expects int"),
        ("train.mixed_precision=3", "expects bool"),
        ("train.epoch=3", "unknown config key 'train.epoch'"),
        ("nosuch.key=1", "unknown config key 'nosuch.key'"),
        ("section.size=[a, b]", "section.size"),
        ("epochs", "--set expects key=value"),
    ],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace(".", r"\.")):
        apply_overrides(Config(), [override])


def test_exponent_floats_and_path_like_strings():
    config = apply_overrides(Config(), ["train.learning_rate=1e-3", "train.weight_decay=5e-05"])
    assert config.train.learning_rate == 0.001 and config.train.weight_decay == 5e-05
    assert from_dict(Config, {"train": {"learning_rate": "3e-4"}}).train.learning_rate == 3e-4


@dataclasses.dataclass
class Paths:
    path: str | None = "x"
    name: str = "n"


def test_string_settings_keep_the_text_as_typed():
    for text in ("010", "1.10", "2024-01-05", "~/data", "#imgs", "yes"):
        assert apply_overrides(Paths(), [f"path={text}", f"name={text}"]) == Paths(text, text)
    assert apply_overrides(Paths(), ["path=null"]).path is None


def test_yaml_round_trip(tmp_path):
    config = apply_overrides(Config(), ["train.seed=7", "section.names=[x, y]"])
    dump_yaml(config, tmp_path / "config.yaml")
    assert load_yaml(tmp_path / "config.yaml", Config) == config


def test_yaml_with_unknown_key_is_an_error(tmp_path):
    (tmp_path / "c.yaml").write_text("train:\n  epochz: 3\n")
    with pytest.raises(UserError, match="train.epochz"):
        load_yaml(tmp_path / "c.yaml", Config)


def test_missing_and_invalid_yaml(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_yaml(tmp_path / "nope.yaml", Config)
    (tmp_path / "bad.yaml").write_text("train: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_yaml(tmp_path / "bad.yaml", Config)


def test_partial_yaml_keeps_defaults():
    config = from_dict(Config, {"train": {"epochs": 4}})
    assert config.train.epochs == 4 and config.train.batch_size == TrainConfig().batch_size


def test_flatten():
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}
