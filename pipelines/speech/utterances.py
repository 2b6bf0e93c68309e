"""Transcription data: utterances (audio of any length and its transcript) from a manifest, the LJSpeech
layout, a tfds dataset, or strings of words joined from single-word clips (a folder, or a tfds dataset of
words: with no --data, connected digits from tfds spoken_digit, the Free Spoken Digit Dataset's recordings).

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
from pipelines.core.stages import listed, stratified_split
from pipelines.core.tfds_splits import prepared_builder, split_slices
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
    """A clip's label as the word a transcript holds, normalised as transcripts are ("_silence_" -> "silence")."""
    return normalised_transcript(DIGIT_WORDS.get(label, label))


# --- strings of words -------------------------------------------------------------------------------


@SOURCES.register("strings")
def strings_source(config: Any) -> Utterances:
    """A folder of single-word clips (FSDD's {label}_{speaker}_{index}.wav, or one subfolder per word): strings
    of ``data.words`` clips of one speaker joined with random pauses; the transcript is their words."""
    root = speech_data.existing_folder(config.path)
    clips = speech_data.list_clips(root, config.label_pattern)
    clips, rates, contents, _ = speech_data.keep_readable(clips, config.on_bad_file, root)
    rate = config.sample_rate or Counter(rates).most_common(1)[0][0]
    return strings_of_clips(clips, resampled_clips(clips, rate), rate, config, f"the clips in {shown(root)}", contents)


def strings_of_clips(clips: list, waves: list[np.ndarray], rate: int, config: Any, where: str, contents) -> Utterances:
    """Strings joined from single-word ``clips`` (their ``waves`` at ``rate``); ``contents`` identifies the clips'
    audio for the data fingerprint."""
    labels = sorted({c.label for c in clips})
    silent = [label for label in labels if not word_of(label)]
    if silent:
        raise UserError(
            f"{where}: the labels {', '.join(map(repr, silent))} hold no word to transcribe; leave them out"
        )
    parts = speech_data.split_clips_for(clips, np.array([labels.index(c.label) for c in clips]), config)
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
        f"strings of {config.words[0]}-{config.words[1]} words from {where}",
        digest([contents, [c.label for c in clips], layout, rate]),
    )


def string_name(number: int, ids, clips: list) -> str:
    """A string as a person finds it: its number and its clips' file names."""
    return f"string {number} ({' + '.join(Path(os.fsdecode(clips[i].path)).name for i in ids)})"


def read_at(paths, rate: int) -> tf.data.Dataset:
    """The WAV files at ``paths`` decoded, mono, at ``rate``, in order (the sources checked them readable)."""

    def load(path):
        samples, file_rate = audio.decode_wav_in_graph(tf.io.read_file(path))
        return audio.resample(audio.to_mono(samples), file_rate, rate)

    return listed(tf.data.Dataset.from_tensor_slices(paths), load)


def resampled_clips(clips: list, rate: int) -> list[np.ndarray]:
    """Every clip decoded, mono, at ``rate``."""
    return list(read_at([c.path for c in clips], rate).as_numpy_iterator())


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

    return listed(tf.data.Dataset.from_tensor_slices((ids, pauses)), join)


# --- tfds ----------------------------------------------------------------------------------------------


@SOURCES.register("tfds")
def tfds_source(config: Any) -> Utterances:
    """A TensorFlow Datasets audio dataset by name (downloads on first use): with a Text feature, its utterances and
    transcripts (librispeech); with a ClassLabel, single words joined into strings as from a folder (spoken_digit,
    FSDD's recordings: the default with no --data)."""
    import tensorflow_datasets as tfds

    name = config.path or "spoken_digit"
    builder = prepared_builder(name, config.tfds_data_dir)
    features = builder.info.features
    audio_keys = [k for k, f in features.items() if isinstance(f, tfds.features.Audio)]
    texts = [k for k, f in features.items() if isinstance(f, tfds.features.Text) and "filename" not in k]
    labels = [k for k, f in features.items() if isinstance(f, tfds.features.ClassLabel)]
    if not audio_keys or not (texts or labels):
        raise UserError(
            f"tfds dataset '{name}' has no audio with a transcript (needs an Audio and a Text feature) or single "
            "words to join (an Audio and a ClassLabel feature)"
        )
    if not features[audio_keys[0]].sample_rate:
        raise UserError(f"tfds dataset '{name}' does not state its audio's sample rate, which the features need")
    rate = config.sample_rate or int(features[audio_keys[0]].sample_rate)
    if texts:
        text = transcript_feature(builder.info, texts, name, config.tfds_transcript)
        return tfds_utterances(builder, name, audio_keys[0], text, rate, config)
    return tfds_strings(builder, name, audio_keys[0], "label" if "label" in labels else labels[0], rate, config)


def transcript_feature(info, texts: list[str], name: str, chosen: str | None) -> str:
    """The Text feature that holds the transcript: data.tfds_transcript, else the dataset's supervised target (LJSpeech:
    text_normalized), else one named text, sentence or transcript, else the only one."""
    if chosen:
        if chosen not in texts:
            raise UserError(
                f"tfds dataset '{name}' has no Text feature '{chosen}'; its Text features: {', '.join(texts)}"
            )
        return chosen
    target = (info.supervised_keys or (None, None))[-1]
    if target in texts:
        return target
    named = [known for known in ("text", "sentence", "transcript", "transcription") if known in texts]
    if named or len(texts) == 1:
        return (named or texts)[0]
    raise UserError(
        f"tfds dataset '{name}' has the Text features {', '.join(texts)}; "
        "name the transcript's with --set data.tfds_transcript=NAME"
    )


def tfds_utterances(builder, name: str, audio_key: str, text_key: str, rate: int, config: Any) -> Utterances:
    """Utterances and their transcripts from the dataset's own splits (or slices of its training split)."""
    info = builder.info
    file_rate = int(info.features[audio_key].sample_rate)
    to_wave = speech_data.tfds_waveform(info.features[audio_key])
    wanted = split_slices(info, config.validation_fraction, config.test_fraction)
    waves, transcripts, samples, names = {}, {}, {}, {}
    for split, spec in wanted.items():
        ds = builder.as_dataset(split=spec, shuffle_files=False)
        if ds.element_spec[audio_key].dtype == tf.string:
            raise UserError(f"tfds {name} keeps its audio encoded (lazy_decode); use a configuration that decodes it")
        transcripts[split], lengths = [], []
        for number, (text, length) in enumerate(
            ds.map(lambda e: (e[text_key], tf.shape(e[audio_key])[0])).as_numpy_iterator()
        ):
            transcripts[split].append(normalised_transcript(text.decode("utf-8")))
            if not transcripts[split][-1]:
                raise UserError(f"tfds {name} {spec}: example {number} has an empty transcript")
            lengths.append(int(length))
        if not transcripts[split]:
            raise UserError(f"tfds {name}: the {split} split ({spec}) is empty")
        samples[split] = audio.resampled_length(np.array(lengths, np.int64), file_rate, rate)
        names[split] = [f"tfds {name} {spec} example {n}" for n in range(len(lengths))]
        waves[split] = ds.map(
            lambda e: audio.resample(to_wave(e[audio_key]), file_rate, rate),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    sizes = {split: len(transcripts[split]) for split in SPLITS}
    return Utterances(
        waves, transcripts, samples, names, rate, f"tfds {name}", digest([info.full_name, wanted, sizes, rate])
    )


def tfds_strings(builder, name: str, audio_key: str, label_key: str, rate: int, config: Any) -> Utterances:
    """Every example of every split as a single-word clip; a text feature named like ``audio/filename`` gives each
    its speaker and index by data.label_pattern (spoken_digit: 7_jackson_32.wav), else a ``speaker_id`` feature."""
    info = builder.info
    file_rate = int(info.features[audio_key].sample_rate)
    to_wave = speech_data.tfds_waveform(info.features[audio_key])
    filename = next((k for k in info.features if "filename" in k), None)
    speaker = "speaker_id" if "speaker_id" in info.features else None
    regex = speech_data.pattern_regex(config.label_pattern, need_label=False)
    words = info.features[label_key].names

    def clip(e):
        found = {"wave": audio.resample(to_wave(e[audio_key]), file_rate, rate), "label": e[label_key]}
        return {**found, "name": e[filename] if filename else "", "speaker": e[speaker] if speaker else -1}

    clips, waves = [], []
    for split in sorted(info.splits):
        ds = builder.as_dataset(split=split, shuffle_files=False).map(clip, num_parallel_calls=tf.data.AUTOTUNE)
        for number, example in enumerate(ds.as_numpy_iterator()):
            stem = Path(example["name"].decode("utf-8")).stem
            match = regex.fullmatch(stem) if filename else None
            fields = match.groupdict() if match else {"speaker": str(example["speaker"]) if speaker else None}
            index = None if fields.get("index") is None else int(fields["index"])
            path = os.fsencode(example["name"].decode("utf-8") if filename else f"{split}[{number}]")
            clips.append(speech_data.Clip(path, words[example["label"]], fields.get("speaker"), index))
            waves.append(example["wave"])
    kind, _ = speech_data.parse_split(config.split)
    if kind != "random" and any(getattr(c, kind) is None for c in clips):
        raise UserError(
            f"data.split={config.split}: tfds {name} does not give every clip its {kind} (from a file-name feature"
            f"{' or speaker_id' if kind == 'speaker' else ''}); set data.split=random"
        )
    return strings_of_clips(clips, waves, rate, config, f"tfds {name}", info.full_name)


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
    samples = np.array([audio.resampled_length(n, r, rate) for n, r in zip(lengths, rates)])
    return Utterances(
        {s: read_at(paths[at[s]], rate) for s in SPLITS},
        {s: [clips[i].label for i in at[s]] for s in SPLITS},
        {s: samples[at[s]] for s in SPLITS},
        {s: [f"{shown(listing)} line {clips[i].index}" for i in at[s]] for s in SPLITS},
        rate,
        name,
        digest([contents, [c.label for c in clips], rate]),
    )
