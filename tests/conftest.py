"""Session fixtures: small image folders, IDX files, WAV folders and text tables, generated on the spot."""

import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

from apps.cli import main  # noqa: E402
from tests.helpers import FAST, NLP_FAST, SPEECH_FAST, encode, messages, shape_image, tone, wav_bytes, write_idx  # noqa: E402


def trained_run(tmp_path_factory, domain: str, data: Path, settings: list[str], name: str):
    """`dlapps DOMAIN train` on ``data`` with ``settings`` into a fresh runs folder: (run directory, CLI result)."""
    runs = tmp_path_factory.mktemp("runs")
    sets = [x for item in settings for x in ("--set", item)]
    args = [domain, "train", "--data", data, "--runs-dir", runs, "--name", name, *sets]
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output + result.stderr
    return runs / domain / name, result


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory) -> Path:
    """Three classes, 12 images each, mixed formats (PNG/JPEG/BMP/GIF), sizes and channels."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    formats = ["png", "jpg", "bmp", "gif"]
    for kind, name in enumerate(["square", "hbar", "vbar"]):
        (root / name).mkdir()
        for i in range(12):
            size = (16, 20, 24)[i % 3]
            channels = 3 if i % 2 else 1
            fmt = formats[i % 4]
            if fmt == "gif":
                channels = 3
            (root / name / f"{i:02d}.{fmt}").write_bytes(encode(shape_image(kind, size, channels, rng), fmt))
    return root


@pytest.fixture(scope="session")
def idx_folder(tmp_path_factory) -> Path:
    """A tiny MNIST-layout IDX folder: 60 train / 20 test images of 12x12, three classes."""
    root = tmp_path_factory.mktemp("idx")
    rng = np.random.default_rng(1)
    for prefix, count in (("train", 60), ("t10k", 21)):
        labels = np.arange(count) % 3
        images = np.stack([shape_image(k, 12, 1, rng)[..., 0] for k in labels])
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return root


@pytest.fixture(scope="session")
def folder_run(image_folder, tmp_path_factory):
    """One trained run on the mixed-format image folder, shared by the tests that only read it."""
    return trained_run(tmp_path_factory, "vision", image_folder, FAST, "shapes")


# Three "words" told apart by pitch; every file a different WAV flavour.
TONES = {"low": 300.0, "mid": 900.0, "high": 2000.0}
WAV_FLAVOURS = [  # (rate, bits, float, channels)
    (8000, 16, False, 1),
    (16000, 16, False, 1),
    (22050, 24, False, 1),
    (8000, 8, False, 1),
    (11025, 32, False, 2),
    (16000, 32, True, 1),
    (8000, 16, False, 2),
    (44100, 16, False, 1),
]


@pytest.fixture(scope="session")
def wav_folder(tmp_path_factory) -> Path:
    """FSDD layout ``{label}_{speaker}_{index}.wav``: 3 labels x 2 speakers x 8 takes of mixed rate/depth/channels."""
    root = tmp_path_factory.mktemp("recordings")
    rng = np.random.default_rng(0)
    for label, freq in TONES.items():
        for speaker_shift, speaker in ((1.0, "ann"), (1.1, "bob")):
            for index in range(8):
                rate, bits, floating, channels = WAV_FLAVOURS[index]
                wave = tone(freq * speaker_shift, rate, 0.2 + 0.05 * (index % 4), rng)
                if channels == 2:
                    wave = np.stack([wave, wave * 0.8], axis=1)
                (root / f"{label}_{speaker}_{index}.wav").write_bytes(wav_bytes(wave, rate, bits, floating))
    return root


@pytest.fixture(scope="session")
def speech_run(wav_folder, tmp_path_factory):
    """One trained speech run on the generated WAVs, shared by the tests that only read it."""
    return trained_run(tmp_path_factory, "speech", wav_folder, SPEECH_FAST, "tones")


@pytest.fixture(scope="session")
def text_table(tmp_path_factory) -> Path:
    """label<TAB>text like the SMS Spam Collection: 120 messages, 15% spam (class weights switch on)."""
    path = tmp_path_factory.mktemp("texts") / "messages.tsv"
    path.write_text("".join(f"{label}\t{text}\n" for label, text in messages(120)), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def nlp_run(text_table, tmp_path_factory):
    """One trained text run (the default bag model), shared by the tests that only read it."""
    return trained_run(tmp_path_factory, "nlp", text_table, NLP_FAST, "spam")
