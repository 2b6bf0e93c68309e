"""Speech data: WAV folders (labels from subfolders or file names) and tfds audio datasets.

Every source yields, per split, an unbatched ``tf.data`` of ``(mono float32 waveform [n],
sample rate, label)`` at the file's own rate; the pipeline then resamples and fits each clip
with the stages in :mod:`pipelines.speech.audio`, the same ones the exported model runs.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from pipelines.core.errors import UserError
from pipelines.core.fingerprint import digest, folder_examples
from pipelines.core.names import shown
from pipelines.core.registry import Registry
from pipelines.core.stages import listed, stratified_split
from pipelines.core.tfds_splits import prepared_builder, split_slices
from pipelines.speech import audio

log = logging.getLogger(__name__)

SOURCES = Registry("speech data source")


@dataclasses.dataclass
class RawAudio:
    """What a source gives: unbatched splits of ``(waveform, rate, label)`` and what they hold."""

    splits: dict[str, tf.data.Dataset]
    sizes: dict[str, int]
    class_names: list[str]
    sample_rate: int  # the most common rate among the clips
    name: str
    fingerprint: str  # every split's examples (pipelines.core.fingerprint)


@dataclasses.dataclass
class Clip:
    """One WAV file: its path (bytes, as TensorFlow reads it) and the names from its file or folder name (shown)."""

    path: bytes
    label: str
    speaker: str | None = None
    index: int | None = None


# --- file names and splits ------------------------------------------------------------------


def pattern_regex(pattern: str, need_label: bool = True) -> re.Pattern:
    """``{label}_{speaker}_{index}`` -> a regex over file stems; ``{index}`` is a number,
    any other ``{field}`` a non-empty run of characters.

    >>> pattern_regex("{label}_{speaker}_{index}").fullmatch("7_theo_12").groupdict()
    {'label': '7', 'speaker': 'theo', 'index': '12'}
    """
    parts = re.split(r"\{(\w+)\}", pattern)
    if need_label and "label" not in parts[1::2]:
        raise UserError(f"data.label_pattern '{pattern}' has no {{label}} field")
    regex = ""
    for i, part in enumerate(parts):
        if i % 2 == 0:
            regex += re.escape(part)
        elif part in parts[1:i:2]:
            raise UserError(f"data.label_pattern '{pattern}' names {{{part}}} twice")
        else:
            regex += rf"(?P<{part}>\d+)" if part == "index" else rf"(?P<{part}>.+?)"
    return re.compile(regex)


def parse_split(spec: str) -> tuple[str, Any]:
    """``random`` | ``index:0-4`` (or ``index:0,1,7``) | ``speaker:theo[,lucas]`` -> (kind, values)."""
    kind, _, arg = spec.partition(":")
    if kind == "random" and not arg:
        return kind, None
    try:
        if kind == "index" and arg:
            values = set()
            for piece in arg.split(","):
                low, _, high = piece.partition("-")
                values.update(range(int(low), int(high or low) + 1))
            return kind, values
    except ValueError:
        pass
    else:
        if kind == "speaker" and arg:
            return kind, set(arg.split(","))
    raise UserError(f"data.split '{spec}' not understood; use random, index:0-4 or speaker:NAME[,NAME]")


def split_clips(clips: list[Clip], labels: np.ndarray, config: Any) -> dict[str, np.ndarray]:
    """Indices per split: the test split by ``data.split``, validation drawn (stratified) from the rest."""
    kind, values = parse_split(config.split)
    if kind == "random":
        return stratified_split(
            labels,
            {"test": config.test_fraction, "validation": config.validation_fraction * (1 - config.test_fraction)},
            seed=config.split_seed,
        )
    field = "index" if kind == "index" else "speaker"
    if any(getattr(c, field) is None for c in clips):
        raise UserError(
            f"data.split={config.split} needs a {{{field}}} in every file name; "
            f"data.label_pattern '{config.label_pattern}' does not give one for all of them"
        )
    in_test = np.array([getattr(c, field) in values for c in clips])
    if kind == "speaker":
        unknown = values - {c.speaker for c in clips}
        if unknown:
            speakers = sorted({c.speaker for c in clips})
            raise UserError(f"no speaker {', '.join(sorted(unknown))} in the data; speakers are: {', '.join(speakers)}")
    if in_test.all() or not in_test.any():
        raise UserError(f"data.split={config.split} puts {'every' if in_test.all() else 'no'} file in the test split")
    rest = np.flatnonzero(~in_test)
    inner = stratified_split(labels[rest], {"validation": config.validation_fraction}, seed=config.split_seed)
    return {"test": np.flatnonzero(in_test), "validation": rest[inner["validation"]], "train": rest[inner["train"]]}


def split_clips_for(clips: list[Clip], labels: np.ndarray, config: Any) -> dict[str, np.ndarray]:
    """``split_clips``, then ``data.validation=speaker:NAME`` moves every clip of these speakers that is not a
    test clip to the validation split, and no other: early stopping, the best epoch and a search's choice are
    then made on voices the model never trains on, as the test speakers are."""
    splits = split_clips(clips, labels, config)
    if config.validation == "random":
        return splits
    kind, _, named = config.validation.partition(":")
    names = {name for name in named.split(",") if name}
    if kind != "speaker" or not names:
        raise UserError(f"data.validation '{config.validation}' not understood; use random or speaker:NAME[,NAME]")
    if any(c.speaker is None for c in clips):
        raise UserError(
            f"data.validation={config.validation} needs a {{speaker}} in every file name; "
            f"data.label_pattern '{config.label_pattern}' does not give one for all of them"
        )
    speakers = sorted({c.speaker for c in clips})
    unknown = names - set(speakers)
    if unknown:
        raise UserError(
            f"data.validation: no speaker {', '.join(sorted(unknown))}; speakers are: {', '.join(speakers)}"
        )
    pool = np.sort(np.concatenate([splits["train"], splits["validation"]]))
    held = np.array([clips[i].speaker in names for i in pool], dtype=bool)
    if not held.any():
        raise UserError(f"data.validation={config.validation}: every clip of theirs is in the test split; name others")
    if held.all():
        raise UserError(f"data.validation={config.validation} leaves no clip to train on; name fewer speakers")
    return {"test": splits["test"], "validation": pool[held], "train": pool[~held]}


# --- sources --------------------------------------------------------------------------------


@SOURCES.register("folder")
def folder_source(config: Any) -> RawAudio:
    """WAV files: one subfolder per class, or one folder with labels in the names (data.label_pattern)."""
    root = existing_folder(config.path)
    clips = list_clips(root, config.label_pattern)
    clips, rates, contents, _ = keep_readable(clips, config.on_bad_file, root)
    class_names = sorted({c.label for c in clips}, key=_natural_key)
    if len(class_names) < 2:
        raise UserError(f"{root} has clips of only one class ('{class_names[0]}'); a classifier needs at least two")
    labels = np.array([class_names.index(c.label) for c in clips], dtype=np.int64)
    paths = np.array([c.path for c in clips])
    parts = split_clips_for(clips, labels, config)

    def load(path, label):
        samples, rate = audio.decode_wav_in_graph(tf.io.read_file(path))
        return audio.to_mono(samples), rate, label

    splits = {
        name: listed(tf.data.Dataset.from_tensor_slices((paths[idx], labels[idx])), load) for name, idx in parts.items()
    }
    sizes = {name: len(idx) for name, idx in parts.items()}
    rate = Counter(rates).most_common(1)[0][0]
    contents = np.array(contents)
    examples = {name: folder_examples(paths[idx], labels[idx], contents[idx], root) for name, idx in parts.items()}
    return RawAudio(splits, sizes, class_names, rate, f"WAV folder {shown(root)}", digest([class_names, examples]))


@SOURCES.register("tfds")
def tfds_source(config: Any) -> RawAudio:
    """Any TensorFlow Datasets audio-classification dataset by name, e.g. speech_commands (downloads on first use)."""
    import tensorflow_datasets as tfds

    name = config.path or "speech_commands"
    if config.split != "random":
        raise UserError(f"data.split={config.split} is for WAV folders; tfds datasets come with their own splits")
    if config.validation != "random":
        raise UserError(f"data.validation={config.validation} is for WAV folders with speakers in their names")
    builder = prepared_builder(name, config.tfds_data_dir)
    info = builder.info
    audio_keys = [k for k, f in info.features.items() if isinstance(f, tfds.features.Audio)]
    label_keys = [k for k, f in info.features.items() if isinstance(f, tfds.features.ClassLabel)]
    if not audio_keys or not label_keys:
        raise UserError(f"tfds dataset '{name}' is not audio classification (needs an Audio and a ClassLabel feature)")
    audio_key, label_key = audio_keys[0], ("label" if "label" in label_keys else label_keys[0])
    rate = int(info.features[audio_key].sample_rate)
    to_wave = tfds_waveform(info.features[audio_key])
    wanted = split_slices(info, config.validation_fraction, config.test_fraction)

    def convert(example):
        return to_wave(example[audio_key]), tf.constant(rate, tf.int64), tf.cast(example[label_key], tf.int64)

    splits, sizes = {}, {}
    for split, spec in wanted.items():
        ds = builder.as_dataset(split=spec, shuffle_files=False)
        splits[split] = ds.map(convert, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        sizes[split] = int(ds.cardinality())
    examples = digest([info.full_name, wanted, sizes])  # a tfds version's examples are fixed: its name says them
    return RawAudio(splits, sizes, list(info.features[label_key].names), rate, f"tfds {name}", examples)


def tfds_waveform(feature):
    """A tfds Audio feature's samples -> a mono float32 waveform in [-1, 1] (integer PCM scaled by its width)."""
    dtype = np.dtype(feature.np_dtype)
    # tfds keeps audio decoded from WAV files in int64 unless a dataset says otherwise (spoken_digit): the values
    # are the files' 16-bit samples
    bits = 16 if dtype == np.int64 else np.iinfo(dtype).bits if np.issubdtype(dtype, np.integer) else None
    scale = 1.0 / 2 ** (bits - 1) if bits else 1.0

    def convert(samples):
        wave = tf.cast(samples, tf.float32) * scale
        return audio.to_mono(wave) if wave.shape.rank == 2 else wave  # [samples, channels]

    return convert


# --- helpers ---------------------------------------------------------------------------------


def existing_folder(path: str | None) -> Path:
    folder = Path(path).expanduser()
    if not folder.exists():
        raise UserError(f"data path not found: {folder}")
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder; --data needs a folder of .wav files")
    return folder


def _wavs(folder: Path, recursive: bool) -> list[Path]:
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if p.is_file() and p.suffix.lower() == ".wav" and not p.name.startswith("."))


def list_clips(root: Path, label_pattern: str) -> list[Clip]:
    """Labels from the file names when the folder itself holds WAVs, otherwise from subfolders."""
    top = _wavs(root, recursive=False)
    if top:
        regex = pattern_regex(label_pattern)
        clips, unmatched = [], []
        for path in top:
            # Matched against the shown stem, so the label and speaker are names a person can read and type.
            match = regex.fullmatch(shown(path.stem))
            if match is None:
                unmatched.append(shown(path.name))
                continue
            fields = match.groupdict()
            clips.append(_clip(path, fields["label"], fields))
        if unmatched:
            what = "none" if not clips else f"{len(unmatched)}"
            raise UserError(
                f"data.label_pattern '{label_pattern}' matches {what} of the {len(top)} WAV names in {root} "
                f"(e.g. {unmatched[0]}); set --set data.label_pattern=... or use one subfolder per class"
            )
        return clips
    class_dirs = sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: _natural_key(p.name)
    )
    # The label is the folder; the pattern may still give a speaker and an index
    # (Speech Commands: yes/0a7c2a8d_nohash_0.wav with data.label_pattern={speaker}_nohash_{index}).
    regex = pattern_regex(label_pattern, need_label=False)
    clips = []
    for folder in class_dirs:
        for path in _wavs(folder, recursive=True):
            match = regex.fullmatch(shown(path.stem))
            clips.append(_clip(path, shown(folder.name), match.groupdict() if match else {}))
    if not clips:
        raise UserError(
            f"no .wav files in {root} or its subfolders; put each class's clips in {root}/<class>/ "
            "or name them like 7_theo_12.wav"
        )
    return clips


def _clip(path: Path, label: str, fields: dict) -> Clip:
    """The clip at ``path``, with the speaker and index that data.label_pattern found in its name (if any)."""
    index = fields.get("index")
    return Clip(os.fsencode(path), label, fields.get("speaker"), None if index is None else int(index))


def keep_readable(
    clips: list[Clip], on_bad_file: str, root: Path
) -> tuple[list[Clip], list[int], list[str], list[int]]:
    """Decode every file once (in parallel, in tf.data); report or drop the unreadable and the empty. Returns the
    kept clips, their rates, the fingerprints of their bytes (the data fingerprint's part) and their lengths in
    samples."""
    if len(clips) > 2000:
        log.info("checking %s clips in %s ...", f"{len(clips):,}", root)

    def probe(path):
        contents = tf.io.read_file(path)
        samples, rate = audio.decode_wav_in_graph(contents)
        return path, tf.shape(samples)[0], rate, tf.fingerprint(contents[None])[0]

    ds = tf.data.Dataset.from_tensor_slices([c.path for c in clips])
    found = {
        p: (int(n), int(r), f.tobytes().hex())
        for p, n, r, f in ds.map(probe, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .ignore_errors()
        .as_numpy_iterator()
    }
    unreadable = [c.path for c in clips if c.path not in found]
    empty = [c.path for c in clips if found.get(c.path, (1, 0))[0] == 0]
    # A header's rate decides how much resampling makes of a file: "1 Hz" would turn 1 MB into gigabytes.
    implausible = [p for p, (n, rate, _) in found.items() if n and not audio.MIN_RATE <= rate <= audio.MAX_RATE]
    for bad, what in (
        (unreadable, "not readable WAV files"),
        (empty, "WAV files with no samples"),
        (implausible, f"WAV files whose header states a rate outside {audio.MIN_RATE:,}..{audio.MAX_RATE:,} Hz"),
    ):
        if bad and on_bad_file != "skip":
            named = ", ".join(map(shown, bad[:3])) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
            raise UserError(
                f"{len(bad)} file(s) under {root} are {what}: {named}; remove them or --set data.on_bad_file=skip"
            )
        if bad:
            log.warning("skipped %d file(s) under %s (%s): %s", len(bad), root, what, ", ".join(map(shown, bad[:10])))
    refused = set(implausible)
    keep = [c for c in clips if found.get(c.path, (0, 0))[0] > 0 and c.path not in refused]
    if not keep:
        raise UserError(f"no readable, non-empty WAV files under {root}")
    kept = [found[c.path] for c in keep]  # (samples, rate, fingerprint)
    return keep, [rate for _, rate, _ in kept], [print_ for _, _, print_ in kept], [n for n, _, _ in kept]


def _natural_key(name: str):
    """'2' < '10', so numbered classes keep their order."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]
