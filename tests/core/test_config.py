import dataclasses

import pytest

from pipelines.core.config import TrainConfig, apply_overrides, dump_yaml, flatten, from_dict, load_yaml, to_dict
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


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.epochs=0", "'train.epochs' must be >= 1 and <= 1,000,000, got 0"),
        ("train.learning_rate=0", "'train.learning_rate' must be > 0 and <= 10, got 0.0"),
        ("train.learning_rate=.nan", "'train.learning_rate' must be a finite number"),
        ("train.learning_rate=-.inf", "'train.learning_rate' must be a finite number"),
        ("train.learning_rate=1e999", "'train.learning_rate' must be a finite number"),
        ("train.beta_1=1", "'train.beta_1' must be >= 0 and < 1, got 1.0"),
        ("train.schedule=linear", "'train.schedule' must be one of: constant, cosine; got 'linear'"),
        ("train.seed=-1", "'train.seed' must be >= 0 and <= 4,294,967,295"),
        ("train.steps_per_epoch=0", "'train.steps_per_epoch' must be >= 1"),
        ("train.epochs=" + "9" * 5000, "'train.epochs' expects int, got '99999"),
        ("train.optimizer=" + "x" * 5000, "... (5,002 characters)"),
    ],
)
def test_ranges_and_choices_name_the_key(override, message):
    with pytest.raises(UserError) as caught:
        apply_overrides(Config(), [override])
    assert message in str(caught.value) and len(str(caught.value)) < 300


def test_in_range_values_and_none_pass():
    config = apply_overrides(Config(), ["train.steps_per_epoch=null", "train.learning_rate=10", "train.beta_1=0"])
    assert config.train.steps_per_epoch is None and config.train.learning_rate == 10.0


def every_config_class():
    import importlib

    from pipelines.domains import DOMAINS

    for entry in DOMAINS.values():
        for module in entry.tasks.values():
            yield importlib.import_module(module).PIPELINE.config_class


def test_every_number_of_every_domain_declares_its_range():
    import types
    import typing

    from pipelines.core.config import OneOf, Range, _leaf_hints

    def undeclared(hint) -> bool:
        if typing.get_origin(hint) is typing.Annotated:
            base, *constraints = typing.get_args(hint)
            return base in (int, float) and not any(isinstance(c, (Range, OneOf)) for c in constraints)
        if typing.get_origin(hint) in (typing.Union, types.UnionType, list):
            return any(undeclared(a) for a in typing.get_args(hint))
        return hint in (int, float)

    missing = [
        f"{c.__name__}.{key}" for c in every_config_class() for key, h in _leaf_hints(c).items() if undeclared(h)
    ]
    assert not missing, missing


def write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_config_files_are_bounded_regular_utf8_and_shallow(tmp_path):
    import os

    from pipelines.core.config import MAX_CONFIG_BYTES

    cases = {
        "is not UTF-8 text (byte 17)": write(tmp_path / "latin1.yaml", b"train:\n  epochs: \xff\n"),
        "nested more than 16 levels": write(tmp_path / "deep.yaml", b"a: " + b"[" * 5000 + b"]" * 5000),
        "nested more than 16 levels deep": write(tmp_path / "deep2.yaml", b"a: " + b"[" * 20 + b"]" * 20),
        "is a folder, not a file": tmp_path,
        f"bytes; at most {MAX_CONFIG_BYTES:,} are read": write(tmp_path / "big.yaml", b"#" * (MAX_CONFIG_BYTES + 1)),
        "holds more than 100,000 values": write(
            tmp_path / "laughs.yaml",
            b"a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
            + b"".join(
                b"%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n" % ((c, c) + (c - 1,) * 10)
                for c in range(ord("b"), ord("h"))
            ),
        ),
    }
    os.mkfifo(tmp_path / "fifo")
    cases["is not a regular file (a device, a pipe or a socket); give a YAML file"] = (
        tmp_path / "fifo"
    )  # opening it would wait for a writer
    cases["/dev/zero is not a regular file"] = "/dev/zero"
    for message, path in cases.items():
        with pytest.raises(UserError, match=message.replace(".", r"\.").replace("(", r"\(").replace(")", r"\)")):
            load_yaml(path, Config)


def test_every_default_obeys_its_own_declaration():
    for cls in every_config_class():
        assert from_dict(cls, to_dict(cls())) == cls(), cls.__name__
