"""Speech sources: file-name labels, class folders, the three split kinds, bad files, tfds."""

import os

import numpy as np
import pytest

from pipelines.core.config import apply_overrides
from pipelines.core.errors import UserError
from pipelines.speech import data
from pipelines.speech.pipeline import PIPELINE, SpeechConfig, SpeechDataConfig
from tests.helpers import SPEECH_FAST, tone, wav_bytes


def folder_config(path, **fields) -> SpeechDataConfig:
    return SpeechDataConfig(source="folder", path=str(path), **fields)


def test_label_pattern_and_split_syntax():
    regex = data.pattern_regex("{label}-{index}")
    assert regex.fullmatch("yes-07").groupdict() == {"label": "yes", "index": "07"}
    assert regex.fullmatch("yes-seven") is None
    with pytest.raises(UserError, match="no {label}"):
        data.pattern_regex("{speaker}_{index}")
    assert data.parse_split("index:0-2,7") == ("index", {0, 1, 2, 7})
    assert data.parse_split("speaker:theo,lucas") == ("speaker", {"theo", "lucas"})
    for bad in ("index:a-b", "speaker:", "by-speaker", "random:3"):
        with pytest.raises(UserError, match="not understood"):
            data.parse_split(bad)


def test_file_name_labels_and_index_split(wav_folder):
    raw = data.folder_source(folder_config(wav_folder, split="index:0-1"))
    assert raw.class_names == ["high", "low", "mid"]
    assert raw.sizes["test"] == 12 and raw.sizes["train"] + raw.sizes["validation"] == 36
    assert raw.sample_rate in (8000, 16000)  # the most common of the mixed rates
    wave, rate, label = next(iter(raw.splits["test"]))
    assert wave.shape.rank == 1 and int(rate) > 0 and 0 <= int(label) < 3


def test_leave_speaker_out(wav_folder):
    raw = data.folder_source(folder_config(wav_folder, split="speaker:bob"))
    assert raw.sizes["test"] == 24
    with pytest.raises(UserError, match="no speaker carol in the data; speakers are: ann, bob"):
        data.folder_source(folder_config(wav_folder, split="speaker:carol"))


def test_validation_by_speaker_holds_out_their_clips_outside_the_test_split(wav_folder):
    raw = data.folder_source(folder_config(wav_folder, split="index:0-1", validation="speaker:bob"))
    assert raw.sizes == {"test": 12, "validation": 18, "train": 18}  # bob's takes 2-7; ann's takes 2-7
    for validation, message in (
        ("speaker:carol", "no speaker carol; speakers are: ann, bob"),
        ("by-speaker", "data.validation 'by-speaker' not understood"),
        ("index:2", "data.validation 'index:2' not understood; use random or speaker"),
    ):
        with pytest.raises(UserError, match=message):
            data.folder_source(folder_config(wav_folder, split="index:0-1", validation=validation))
    with pytest.raises(UserError, match="every clip of theirs is in the test split"):
        data.folder_source(folder_config(wav_folder, split="speaker:bob", validation="speaker:bob"))
    with pytest.raises(UserError, match="leaves no clip to train on"):
        data.folder_source(folder_config(wav_folder, split="speaker:bob", validation="speaker:ann"))


def test_class_subfolders(tmp_path):
    for label, freq in (("yes", 300), ("no", 1200)):
        (tmp_path / label).mkdir()
        for i in range(6):
            (tmp_path / label / f"{i:03d}.wav").write_bytes(wav_bytes(tone(freq, 8000, 0.2), 8000))
    raw = data.folder_source(folder_config(tmp_path, test_fraction=0.34))
    assert raw.class_names == ["no", "yes"] and sum(raw.sizes.values()) == 12
    with pytest.raises(UserError, match="needs a {speaker}"):
        data.folder_source(folder_config(tmp_path, split="speaker:x"))
    # Speech Commands style: speakers from the names inside the class folders
    for label in ("yes", "no"):
        for i, speaker in enumerate(["ab12", "cd34", "ef56"]):
            (tmp_path / label / f"{speaker}_nohash_{i}.wav").write_bytes(wav_bytes(tone(500, 8000, 0.2), 8000))
        for old in (tmp_path / label).glob("0*.wav"):
            old.unlink()
    raw = data.folder_source(
        folder_config(
            tmp_path, split="speaker:cd34", label_pattern="{speaker}_nohash_{index}", validation_fraction=0.25
        )
    )
    assert raw.sizes["test"] == 2 and raw.class_names == ["no", "yes"]


def test_pattern_that_matches_nothing_and_single_class(tmp_path):
    (tmp_path / "hello.wav").write_bytes(wav_bytes(tone(300, 8000, 0.2), 8000))
    with pytest.raises(UserError, match="matches none of the 1 WAV names.*hello.wav"):
        data.folder_source(folder_config(tmp_path))
    (tmp_path / "hello.wav").unlink()
    for i in range(4):
        (tmp_path / f"7_ann_{i}.wav").write_bytes(wav_bytes(tone(300, 8000, 0.2), 8000))
    with pytest.raises(UserError, match="only one class"):
        data.folder_source(folder_config(tmp_path))


def test_bad_and_empty_wavs_are_named_or_skipped(tmp_path, caplog):
    for label, freq in (("a", 300), ("b", 1200)):
        for i in range(5):
            (tmp_path / f"{label}_ann_{i}.wav").write_bytes(wav_bytes(tone(freq, 8000, 0.2), 8000))
    (tmp_path / "a_ann_9.wav").write_bytes(b"garbage, not audio")
    (tmp_path / "b_ann_9.wav").write_bytes(wav_bytes(np.zeros(0), 8000))
    with pytest.raises(UserError, match="not readable WAV files: .*a_ann_9.wav.*data.on_bad_file=skip"):
        data.folder_source(folder_config(tmp_path))
    (tmp_path / "a_ann_9.wav").unlink()
    with pytest.raises(UserError, match="WAV files with no samples: .*b_ann_9.wav"):
        data.folder_source(folder_config(tmp_path))
    raw = data.folder_source(folder_config(tmp_path, on_bad_file="skip", test_fraction=0.4))
    assert sum(raw.sizes.values()) == 10 and "b_ann_9.wav" in caplog.text


def test_names_that_are_not_utf8_in_file_names_and_class_folders(tmp_path, caplog):
    """Labels and speakers from such file names, and classes from such folders, are shown with \\xNN; every clip
    loads (TensorFlow reads the paths as bytes)."""
    named = tmp_path / "named"
    named.mkdir()
    for label, freq in ((b"caf\xe9", 300), (b"plain", 1200)):
        for speaker in (b"ann", b"j\xf6rg"):
            for i in range(3):
                name = os.fsdecode(b"%s_%s_%d.wav" % (label, speaker, i))
                (named / name).write_bytes(wav_bytes(tone(freq, 8000, 0.2), 8000))
    raw = data.folder_source(folder_config(named, split="speaker:j\\xf6rg"))  # typed as the error lists it
    assert raw.class_names == ["caf\\xe9", "plain"] and raw.sizes["test"] == 6
    assert sum(len(list(split)) for split in raw.splits.values()) == 12
    with pytest.raises(UserError, match=r"speakers are: ann, j\\xf6rg"):
        data.folder_source(folder_config(named, split="speaker:carol"))

    folders = tmp_path / "folders"
    for label, freq in ((b"n\xe4in", 300), ("näin".encode(), 900), (b"ja", 1200)):
        (folders / os.fsdecode(label) / os.fsdecode(b"sub\xfe")).mkdir(parents=True)
        for i in range(4):
            path = folders / os.fsdecode(label) / os.fsdecode(b"sub\xfe") / os.fsdecode(b"%d\xff.wav" % i)
            path.write_bytes(wav_bytes(tone(freq, 8000, 0.2), 8000))
    raw = data.folder_source(folder_config(folders, test_fraction=0.25))
    assert raw.class_names == ["ja", "n\\xe4in", "näin"] and sum(raw.sizes.values()) == 12
    labels = [int(label) for split in raw.splits.values() for _, _, label in split.as_numpy_iterator()]
    assert sorted(labels) == [0] * 4 + [1] * 4 + [2] * 4
    assert data.folder_source(folder_config(folders, test_fraction=0.25)).fingerprint == raw.fingerprint

    (folders / "ja" / os.fsdecode(b"bad\xfe.wav")).write_bytes(b"garbage, not audio")
    with pytest.raises(UserError, match=r"not readable WAV files: .*ja/bad\\xfe\.wav"):
        data.folder_source(folder_config(folders, test_fraction=0.25))
    data.folder_source(folder_config(folders, test_fraction=0.25, on_bad_file="skip"))
    assert "bad\\xfe.wav" in caplog.text


def test_pipeline_resolves_rate_and_features_into_the_config(wav_folder):
    config = apply_overrides(
        SpeechConfig(), [f"data.path={wav_folder}", "data.source=folder", *SPEECH_FAST, "data.sample_rate=null"]
    )
    loaded = PIPELINE.load_data(config)
    assert config.data.sample_rate in (8000, 16000) and config.data.features == "logmel"
    x, y = next(iter(loaded.train))
    assert tuple(x.shape[1:]) == loaded.input_shape and x.dtype.name == "float32"


def test_tfds_source_reads_a_locally_built_dataset(tmp_path):
    """The real tfds path (builder -> download_and_prepare -> as_dataset) on an audio dataset built here."""
    tfds = pytest.importorskip("tensorflow_datasets")

    class TinyWords(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return self.dataset_info_from_configs(
                features=tfds.features.FeaturesDict(
                    {
                        "audio": tfds.features.Audio(file_format=None, shape=(None,), dtype=np.int16, sample_rate=8000),
                        "label": tfds.features.ClassLabel(names=["low", "high"]),
                    }
                ),
                supervised_keys=("audio", "label"),
            )

        def _split_generators(self, dl_manager):
            return {
                "train": self._generate_examples(20),
                "validation": self._generate_examples(4),
                "test": self._generate_examples(6),
            }

        def _generate_examples(self, count):
            for i in range(count):
                wave = tone((300, 1500)[i % 2], 8000, 0.25)
                yield i, {"audio": np.round(wave * 32767).astype(np.int16), "label": i % 2}

    raw = data.tfds_source(SpeechDataConfig(source="tfds", path="tiny_words", tfds_data_dir=str(tmp_path)))
    assert raw.class_names == ["low", "high"] and raw.sample_rate == 8000
    assert raw.sizes == {"train": 20, "validation": 4, "test": 6}  # the dataset's own splits
    wave, rate, label = next(iter(raw.splits["test"]))
    np.testing.assert_allclose(wave.numpy(), tone((300, 1500)[int(label)], 8000, 0.25), atol=1e-4)


def test_unknown_tfds_name_is_a_user_error():
    with pytest.raises(UserError, match="not available"):
        data.tfds_source(SpeechDataConfig(source="tfds", path="no_such_dataset_xyz"))


def test_a_header_that_states_an_implausible_rate_is_named_not_resampled(tmp_path):
    """A WAV whose header says 1 Hz would be resampled into gigabytes (6 GB, or an abort): it is refused by name,
    or skipped and reported, before any resampling."""
    for label, freq in (("yes", 300), ("no", 1200)):
        (tmp_path / label).mkdir()
        for i in range(6):
            (tmp_path / label / f"{i:03d}.wav").write_bytes(wav_bytes(tone(freq, 8000, 0.2), 8000))
    (tmp_path / "yes" / "one-hertz.wav").write_bytes(wav_bytes(tone(300, 8000, 0.5), 1))
    with pytest.raises(UserError, match=r"rate outside 1,000\.\.384,000 Hz: .*one-hertz\.wav; .*on_bad_file=skip"):
        data.folder_source(folder_config(tmp_path))
    raw = data.folder_source(folder_config(tmp_path, on_bad_file="skip", test_fraction=0.34))
    assert sum(raw.sizes.values()) == 12
