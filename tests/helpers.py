"""Small real data built on the spot, and the settings that make a training run take seconds."""

import collections
import gzip
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from pipelines.nlp.pipeline import PIPELINE as NLP
from pipelines.speech.pipeline import PIPELINE as SPEECH
from pipelines.vision.pipeline import PIPELINE as VISION

REPO = Path(__file__).resolve().parents[1]

# A few steps of a narrow model: enough to exercise every part, not to learn much (each task's smallest config).
FAST = list(VISION.example_settings)
SPEECH_FAST = list(SPEECH.example_settings)  # the same, on half-second clips at 8 kHz


def encode(image: np.ndarray, fmt: str) -> bytes:
    import tensorflow as tf

    if fmt == "png":
        return tf.io.encode_png(image).numpy()
    if fmt == "jpg":
        return tf.io.encode_jpeg(image if image.shape[-1] in (1, 3) else image[..., :3], quality=95).numpy()
    if fmt in ("bmp", "gif"):
        import io

        from PIL import Image  # matplotlib depends on Pillow, so it is always here

        buffer = io.BytesIO()
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, format=fmt.upper())
        return buffer.getvalue()
    raise ValueError(fmt)


def shape_image(kind: int, size: int, channels: int, rng) -> np.ndarray:
    """Class 0: a bright square; class 1: a bright horizontal bar; class 2: a vertical bar."""
    image = rng.integers(0, 40, size=(size, size, channels)).astype(np.uint8)
    q = size // 4
    if kind == 0:
        image[q : 3 * q, q : 3 * q] = 230
    elif kind == 1:
        image[size // 2 - 2 : size // 2 + 2, :] = 230
    else:
        image[:, size // 2 - 2 : size // 2 + 2] = 230
    return image


def odd_image_folder(root: Path, per_class: int = 8) -> Path:
    """Three classes of 16x16 PNGs in ``<class>/sub\\xfe/<i>\\xff.png``, the classes caf\\xe9 (café in Latin-1),
    café (UTF-8) and plain: names that are not UTF-8 bytes (Linux allows any bytes but / and NUL) beside one
    that is and one that is ASCII."""
    rng = np.random.default_rng(0)
    for kind, name in enumerate([b"caf\xe9", "café".encode(), b"plain"]):
        folder = root / os.fsdecode(name) / os.fsdecode(b"sub\xfe")
        folder.mkdir(parents=True)
        for i in range(per_class):
            (folder / os.fsdecode(b"%d\xff.png" % i)).write_bytes(encode(shape_image(kind, 16, 1, rng), "png"))
    return root


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def wav_bytes(
    samples: np.ndarray, rate: int, bits: int = 16, floating: bool = False, extensible: bool = False
) -> bytes:
    """A WAV file in memory, written byte by byte: samples float [-1, 1], shape [n] or [n, channels]."""
    import struct

    samples = np.asarray(samples, dtype=np.float64)
    frames = samples.reshape(len(samples), -1) if samples.ndim == 2 else samples[:, None]
    channels = frames.shape[1]
    if floating:
        body = frames.astype("<f4" if bits == 32 else "<f8").tobytes()
    elif bits == 8:
        body = np.clip(np.round(frames * 127 + 128), 0, 255).astype(np.uint8).tobytes()
    else:
        scale = 2 ** (bits - 1) - 1
        ints = np.clip(np.round(frames * scale), -scale - 1, scale).astype("<i4")
        body = b"".join(int(v).to_bytes(4, "little", signed=True)[: bits // 8] for v in ints.ravel())
    code = 3 if floating else 1
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 0xFFFE if extensible else code, channels, rate, rate * block, block, bits)
    if extensible:  # cbSize, valid bits, channel mask, then the sub-format GUID (its first 2 bytes: the code)
        fmt += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", code) + bytes(14)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"LIST" + struct.pack("<I", 4) + b"INFO"
    chunks += b"data" + struct.pack("<I", len(body)) + body + (b"\0" if len(body) % 2 else b"")
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def tone(freq: float, rate: int, seconds: float, rng=None, noise: float = 0.05) -> np.ndarray:
    """A sine at ``freq`` Hz with a little noise: a stand-in for a spoken word."""
    t = np.arange(int(rate * seconds)) / rate
    wave = 0.5 * np.sin(2 * np.pi * freq * t)
    if rng is not None:
        wave += noise * rng.standard_normal(len(t))
    return wave


def dlapps(*args):
    """The CLI in this process, as a user would call it (arguments may be paths)."""
    from click.testing import CliRunner

    from apps.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def assert_one_line_error(result, *fragments):
    """Bad input's contract: exit code 2 and one line on stderr naming what went wrong, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def event_scalars(folder: Path, tag: str) -> list[float]:
    """The values of scalar ``tag`` in the event files in ``folder``, in step order."""
    import tensorflow as tf

    found = []
    for path in folder.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag == tag:
                    number = tf.make_ndarray(value.tensor) if value.HasField("tensor") else value.simple_value
                    found.append((event.step, float(number)))
    return [number for _, number in sorted(found)]


def event_tags(folder: Path) -> dict:
    """TensorBoard plugin name -> the tags written to the event files in ``folder``."""
    import tensorflow as tf

    tags = collections.defaultdict(set)
    for path in folder.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                tags[value.metadata.plugin_data.plugin_name or "scalars"].add(value.tag)
    return tags


NLP_FAST = list(NLP.example_settings)  # text: a few steps of a small model with a small vocabulary
SPAM_WORDS = ["free", "win", "prize", "claim", "cash", "txt", "call", "urgent", "£100", "08712300"]
HAM_WORDS = ["see", "you", "later", "dinner", "home", "love", "ok", "tomorrow", "mum", "bus"]


def messages(count: int, spam_share: float = 0.15, seed: int = 0) -> list[tuple[str, str]]:
    """(label, text) pairs: 'spam' texts drawn mostly from spammy words, 'ham' from everyday ones."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        label = "spam" if i < round(count * spam_share) else "ham"
        words = SPAM_WORDS if label == "spam" else HAM_WORDS
        picked = [str(w) for w in rng.choice(words, size=int(rng.integers(3, 9)))] + [
            str(rng.choice(SPAM_WORDS + HAM_WORDS))
        ]
        rows.append((label, " ".join(picked).capitalize() + rng.choice(["!", ".", "?!", ""])))
    order = rng.permutation(count)
    return [rows[i] for i in order]


def trains_every_network(model, dataset) -> dict:
    """Fit ``model`` (one made of ``model.NETWORKS``) one pass over ``dataset``; the last logs, after checking that
    each network's weights moved and stayed finite (a step without gradients, or with float16 overflow, fails)."""
    networks = [name for name in model.NETWORKS if getattr(model, name).trainable_variables]  # not vocabularies
    before = {name: [v.numpy().copy() for v in getattr(model, name).trainable_variables] for name in networks}
    logs = model.fit(dataset, epochs=1, verbose=0).history
    for name in networks:
        after = [v.numpy() for v in getattr(model, name).trainable_variables]
        assert all(np.isfinite(a).all() for a in after), f"{name}: weights not finite"
        assert any(not np.array_equal(b, a) for b, a in zip(before[name], after)), f"{name}: weights did not move"
    return {key: values[-1] for key, values in logs.items()}


def start_cli(*args) -> subprocess.Popen:
    """``dlapps *args`` in a process of its own (to be interrupted or killed)."""
    return subprocess.Popen(
        [sys.executable, "-m", "apps.cli", *map(str, args)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as a shell delivers it: a test worker may ignore SIGINT, and a child inherits that
        preexec_fn=_default_sigint,
    )


def _default_sigint():
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def finished_epochs(run: Path) -> int:
    """Epochs in the run's resume state (checkpoints/backup/epoch-NNNN.keras)."""
    from pipelines.core.callbacks import ResumeState

    return max((epoch for epoch, _ in ResumeState(run / "checkpoints" / "backup").saved()), default=0)


def wait_for_epoch(process: subprocess.Popen, run: Path, at_least: int) -> int:
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if finished_epochs(run) >= at_least:
            return finished_epochs(run)
        time.sleep(0.05)
    raise AssertionError(f"training ended or stalled before epoch {at_least}: {process.communicate()}")


def killed_then_resumed(run: Path, *train_args, at_epoch: int = 2) -> subprocess.CompletedProcess:
    """``dlapps <train_args>`` killed hard (no chance to clean up) once epoch ``at_epoch`` is saved, then
    ``dlapps <domain> train --resume run`` to the end."""
    first = start_cli(*train_args)
    wait_for_epoch(first, run, at_epoch)
    first.kill()
    first.communicate(timeout=60)
    second = start_cli(train_args[0], "train", "--resume", run)
    out, err = second.communicate(timeout=300)
    return subprocess.CompletedProcess(second.args, second.returncode, out, err)


def same_weights(first: Path, second: Path) -> bool:
    """Whether two saved models hold exactly the same weights."""
    import keras

    one, other = (keras.models.load_model(path, compile=False).get_weights() for path in (first, second))
    return len(one) == len(other) and all(np.array_equal(a, b) for a, b in zip(one, other, strict=True))


def optimizer_steps(model_file: Path) -> dict[str, int]:
    """Each optimizer's step count, as saved in a .keras file (a loss-scaling optimizer's is its inner one's:
    the wrapper's own counter never moves)."""
    import io
    import zipfile

    import h5py

    def steps(group) -> int:
        return int(group.get("inner_optimizer", group)["vars/0"][()])

    with (
        zipfile.ZipFile(model_file) as archive,
        h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as weights,
    ):
        return {name: steps(weights[name]) for name in weights if name.endswith("optimizer")}


# Translation: English number words -> Hindi ones.
NUMBER_WORDS = {
    "one": "एक",
    "two": "दो",
    "three": "तीन",
    "four": "चार",
    "five": "पाँच",
    "six": "छह",
    "seven": "सात",
    "eight": "आठ",
}


def toy_pairs(count: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """English number words -> Hindi ones, word for word; '.' becomes the danda, '?' stays."""
    rng = np.random.default_rng(seed)
    keys = list(NUMBER_WORDS)
    sources, targets = [], []
    for _ in range(count):
        words = [keys[i] for i in rng.integers(0, len(keys), rng.integers(2, 6))]
        end = str(rng.choice([".", "?"]))
        sources.append(" ".join(words).capitalize() + end)
        targets.append(" ".join(NUMBER_WORDS[w] for w in words) + ("।" if end == "." else "?"))
    return sources, targets


def write_pairs(path, count: int = 40, extra: str = "\tCC-BY 2.0 (France) Attribution: tatoeba.org") -> None:
    sources, targets = toy_pairs(count)
    path.write_text("".join(f"{s}\t{t}{extra}\n" for s, t in zip(sources, targets)), encoding="utf-8")


def huge_png(path: Path, side: int = 20_000) -> Path:
    """A real, decodable grey PNG of side x side pixels in a few hundred KB (every row black: zlib shrinks it
    a thousandfold), written row by row so making it costs no memory."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer, row, body = zlib.compressobj(9), b"\0" * (side + 1), []
    body += [packer.compress(row) for _ in range(side)]
    body.append(packer.flush())
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit grey
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(body)) + chunk(b"IEND", b"")
    )
    return path
