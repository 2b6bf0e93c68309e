"""Transcription data: utterances (audio of any length and its transcript) from a manifest, the LJSpeech
layout, or strings of words joined from single-word clips (the offline default: connected digits from the
Free Spoken Digit Dataset's recordings).

Every source gives, per split, the utterances' waveforms at one sample rate (``Utterances.waves``: a
``tf.data`` of float32 [n]) and their transcripts, normalised (:func:`pipelines.speech.ctc.normalised_transcript`).
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from pipelines.core.errors import UserError
from pipelines.core.files import checked_file
from pipelines.core.fingerprint import digest
from pipelines.core.names import shown
from pipelines.core.registry import Registry
from pipelines.core.stages import stratified_split
from pipelines.speech import audio
from pipelines.speech import data as speech_data
from pipelines.speech.ctc import normalised_transcript

log = logging.getLogger(__name__)
SOURCES = Registry("transcription data source")
SPLITS = ("train", "validation", "test")
# FSDD's labels are digits; a string of them reads as words ("three one four"), as a person would say it.
DIGIT_WORDS = dict(zip("0123456789", "zero one two three four five six seven eight nine".split()))


@dataclasses.dataclass
class Utterances:
    """What a source gives: per split, the waveforms (at ``sample_rate``) and their transcripts."""

    waves: dict[str, tf.data.Dataset]  # split -> unbatched float32 [n]
    transcripts: dict[str, list[str]]
    samples: dict[str, np.ndarray]  # split -> each utterance's length in samples
    names: dict[str, list[str]]  # split -> where each utterance comes from (a file and line, a string's clips)
    sample_rate: int
    name: str
    fingerprint: str

    @property
    def sizes(self) -> dict[str, int]:
        return {split: len(self.transcripts[split]) for split in SPLITS}


def word_of(label: str) -> str:
    return DIGIT_WORDS.get(label, label)


# --- strings of words -------------------------------------------------------------------------------


@SOURCES.register("strings")
def strings_source(config: Any) -> Utterances:
    """A folder of single-word clips (FSDD's {label}_{speaker}_{index}.wav, or one subfolder per word): strings
    of ``data.words`` clips of one speaker joined with random pauses; the transcript is their words."""
    root = speech_data.existing_folder(config.path)
    clips = speech_data.list_clips(root, config.label_pattern)
    clips, rates, contents, _ = speech_data.keep_readable(clips, config.on_bad_file, root)
    rate = config.sample_rate or Counter(rates).most_common(1)[0][0]
    labels = sorted({c.label for c in clips})
    parts = speech_data.split_clips_for(clips, np.array([labels.index(c.label) for c in clips]), config)
    waves = resampled_clips(clips, rate)
    rng = np.random.default_rng(config.split_seed)
    counts = {split: max(1, round(config.strings * len(parts[split]) / len(parts["train"]))) for split in SPLITS}
    made = {split: draw_strings(clips, parts[split], counts[split], config, rate, rng) for split in SPLITS}
    flat = tf.constant(np.concatenate(waves))
    clips_tensor = tf.RaggedTensor.from_row_lengths(flat, [len(w) for w in waves])
    transcripts = {s: [" ".join(word_of(clips[i].label) for i in ids) for ids, _ in made[s]] for s in SPLITS}
    samples = {s: np.array([sum(len(waves[i]) for i in ids) + sum(p) for ids, p in made[s]]) for s in SPLITS}
    names = {s: [string_name(n, ids, clips) for n, (ids, _) in enumerate(made[s])] for s in SPLITS}
    datasets = {s: joined(clips_tensor, made[s]) for s in SPLITS}
    layout = [[[int(i) for i in ids] + [int(x) for x in pauses] for ids, pauses in made[s]] for s in SPLITS]
    return Utterances(
        datasets,
        transcripts,
        samples,
        names,
        rate,
        f"strings of {config.words[0]}-{config.words[1]} words from the clips in {shown(root)}",
        digest([contents, [c.label for c in clips], layout, rate]),
    )


def string_name(number: int, ids, clips: list) -> str:
    """A string as a person finds it: its number and its clips' file names."""
    return f"string {number} ({' + '.join(Path(os.fsdecode(clips[i].path)).name for i in ids)})"


def resampled_clips(clips: list, rate: int) -> list[np.ndarray]:
    """Every clip decoded, mono, at ``rate``."""

    def load(path):
        samples, file_rate = audio.decode_wav_in_graph(tf.io.read_file(path))
        return audio.resample(audio.to_mono(samples), file_rate, rate)

    ds = tf.data.Dataset.from_tensor_slices([c.path for c in clips]).map(
        load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    return list(ds.as_numpy_iterator())


def draw_strings(clips: list, indices: np.ndarray, count: int, config: Any, rate: int, rng) -> list:
    """``count`` strings, each (clip ids, pauses in samples before each clip and after the last) of one speaker."""
    by_speaker: dict[Any, list[int]] = {}
    for i in indices:
        by_speaker.setdefault(clips[i].speaker, []).append(int(i))
    speakers = sorted(by_speaker, key=str)
    low, high = config.words
    made = []
    for _ in range(count):
        pool = by_speaker[speakers[rng.integers(len(speakers))]]
        ids = rng.choice(pool, size=rng.integers(low, high + 1), replace=True)
        pauses = (rng.uniform(*config.pause, size=len(ids) + 1) * rate).astype(np.int64)
        made.append((ids, pauses))
    return made


def joined(clips: tf.RaggedTensor, strings: list) -> tf.data.Dataset:
    """Each string's waveform: silence, a clip, silence, ..., a clip, silence."""
    longest = max(len(ids) for ids, _ in strings)
    ids = np.full([len(strings), longest], -1, np.int64)
    pauses = np.zeros([len(strings), longest + 1], np.int64)
    for n, (i, p) in enumerate(strings):
        ids[n, : len(i)], pauses[n, : len(p)] = i, p

    def join(ids, pauses):
        used = ids >= 0
        pieces = tf.gather(clips, tf.boolean_mask(ids, used))
        count = tf.shape(pieces.row_lengths())[0]
        gaps = pauses[: count + 1]
        silence = tf.RaggedTensor.from_row_lengths(tf.zeros([tf.reduce_sum(gaps[:count])]), gaps[:count])
        words = tf.concat([silence, pieces], axis=1).flat_values  # row i: a pause, then clip i
        return tf.concat([words, tf.zeros([gaps[count]])], axis=0)

    return tf.data.Dataset.from_tensor_slices((ids, pauses)).map(
        join, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )


# --- files and their transcripts ------------------------------------------------------------------


@SOURCES.register("manifest")
def manifest_source(config: Any) -> Utterances:
    """A TSV or CSV file of ``audio path<TAB>transcript`` rows (paths relative to the file; a header row
    naming ``path`` is skipped); split at random by data.test_fraction and data.validation_fraction."""
    checked_file(config.path, "manifest", "; give a TSV or CSV file of audio paths and transcripts")
    path = Path(config.path)
    delimiter = "," if path.suffix.lower() == ".csv" else "\t"
    rows = []
    with open(path, newline="", encoding="utf-8") as file:
        for number, row in enumerate(csv.reader(file, delimiter=delimiter), start=1):
            if not row or (number == 1 and row[0].strip().lower() in ("path", "file", "audio", "wav")):
                continue
            if len(row) < 2:
                raise UserError(f"{shown(path)} line {number}: expected an audio path and a transcript, got {row!r}")
            rows.append((number, path.parent / row[0].strip(), row[1]))
    return listed_files(rows, path, config, f"manifest {shown(path)}")


@SOURCES.register("ljspeech")
def ljspeech_source(config: Any) -> Utterances:
    """The LJSpeech layout: a folder with metadata.csv (``id|transcript|normalized transcript``) and wavs/."""
    root = speech_data.existing_folder(config.path)
    metadata = root / "metadata.csv"
    if not metadata.is_file():
        raise UserError(f"{shown(root)} has no metadata.csv; an LJSpeech folder holds metadata.csv and wavs/")
    rows = []
    with open(metadata, encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            fields = line.rstrip("\n").split("|")
            if not line.strip():
                continue
            if len(fields) < 2:
                raise UserError(f"{shown(metadata)} line {number}: expected id|transcript[|normalized], got {line!r}")
            rows.append((number, root / "wavs" / f"{fields[0]}.wav", fields[-1] if len(fields) > 2 else fields[1]))
    return listed_files(rows, metadata, config, f"LJSpeech folder {shown(root)}")


def listed_files(rows: list, listing: Path, config: Any, name: str) -> Utterances:
    """Utterances from (line number, audio path, transcript) rows of ``listing``: missing files and empty
    transcripts named by their line; unreadable files refused or skipped (data.on_bad_file)."""
    if not rows:
        raise UserError(f"{shown(listing)} lists no audio files")
    for number, audio_path, transcript in rows:
        if not normalised_transcript(transcript):
            raise UserError(f"{shown(listing)} line {number}: the transcript is empty; give every file its words")
        if not audio_path.is_file():
            raise UserError(f"{shown(listing)} line {number}: audio file {shown(audio_path)} not found")
    clips = [speech_data.Clip(os.fsencode(p), normalised_transcript(t), index=n) for n, p, t in rows]
    clips, rates, contents, lengths = speech_data.keep_readable(clips, config.on_bad_file, listing.parent)
    rate = config.sample_rate or Counter(rates).most_common(1)[0][0]
    parts = stratified_split(
        np.zeros(len(clips), np.int64),
        {"test": config.test_fraction, "validation": config.validation_fraction * (1 - config.test_fraction)},
        seed=config.split_seed,
    )
    at = {split: np.sort(parts[split]) for split in SPLITS}
    for split in SPLITS:
        if len(at[split]) == 0:
            raise UserError(f"{shown(listing)}: {len(clips)} files leave the {split} split empty; list more files")
    paths = np.array([c.path for c in clips])
    # resample()'s own rounding: each file's length at the common rate, known before any is decoded again
    samples = np.array([(n * rate + r // 2) // r for n, r in zip(lengths, rates)])

    def load(path):
        wave, file_rate = audio.decode_wav_in_graph(tf.io.read_file(path))
        return audio.resample(audio.to_mono(wave), file_rate, rate)

    return Utterances(
        {
            s: tf.data.Dataset.from_tensor_slices(paths[at[s]]).map(
                load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
            )
            for s in SPLITS
        },
        {s: [clips[i].label for i in at[s]] for s in SPLITS},
        {s: samples[at[s]] for s in SPLITS},
        {s: [f"{shown(listing)} line {clips[i].index}" for i in at[s]] for s in SPLITS},
        rate,
        name,
        digest([contents, [c.label for c in clips], rate]),
    )
