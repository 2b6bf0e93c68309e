"""Transcription from TensorFlow Datasets: the real tfds path (builder -> download_and_prepare -> as_dataset) on
datasets built here in the layouts of spoken_digit (single words with file names: the default with no --data) and
librispeech (utterances with transcripts, splits named train_clean100, dev_clean, test_clean)."""

import json
import types

import numpy as np
import pytest

from pipelines.core import config as cfg
from pipelines.core.errors import UserError
from pipelines.core.tfds_splits import own_split
from pipelines.speech import utterances
from pipelines.speech.transcription import PIPELINE, TranscribeConfig
from tests.helpers import assert_one_line_error, dlapps

tfds = pytest.importorskip("tensorflow_datasets")
RATE = 8000
PITCH = {"low": 300.0, "mid": 900.0, "high": 2000.0}


def tone(pitch: float, seconds: float, rng) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    wave = 0.5 * np.sin(2 * np.pi * pitch * t) + 0.02 * rng.standard_normal(len(t))
    return np.round(wave * 32767).astype(np.int16)


class TinySpokenWords(tfds.core.GeneratorBasedBuilder):
    """spoken_digit's layout: audio (16-bit samples in tfds' default int64), a label, and the recording's file name
    ({label}_{speaker}_{index}.wav)."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "audio": tfds.features.Audio(file_format=None, shape=(None,), dtype=np.int64, sample_rate=RATE),
                    "label": tfds.features.ClassLabel(names=list(PITCH)),
                    "audio/filename": tfds.features.Text(),
                }
            ),
            supervised_keys=("audio", "label"),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        rng = np.random.default_rng(0)
        for label, pitch in PITCH.items():
            for speaker, shift in (("ann", 1.0), ("bob", 1.1)):
                for take in range(3):
                    name = f"{label}_{speaker}_{take}.wav"
                    wave = tone(pitch * shift, 0.3, rng).astype(np.int64)
                    yield name, {"audio": wave, "label": label, "audio/filename": name}


class TinySpeechBook(tfds.core.GeneratorBasedBuilder):
    """librispeech's layout: speech, its text (as written: case and punctuation), a speaker id; named splits."""

    VERSION = tfds.core.Version("1.0.0")
    SPLITS = {"train_clean100": 24, "train_other500": 3, "dev_clean": 4, "test_clean": 5, "test_other": 2}

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "speech": tfds.features.Audio(file_format=None, shape=(None,), dtype=np.int16, sample_rate=RATE),
                    "text": tfds.features.Text(),
                    "speaker_id": np.int64,
                }
            ),
            supervised_keys=("speech", "text"),
        )

    def _split_generators(self, dl_manager):
        return {name: self._generate_examples(name, count) for name, count in self.SPLITS.items()}

    def _generate_examples(self, split, count):
        rng = np.random.default_rng(len(split))
        for n in range(count):
            words = list(rng.choice(list(PITCH), size=rng.integers(1, 4)))
            pieces = [np.concatenate([tone(PITCH[w], 0.25, rng), np.zeros(400, np.int16)]) for w in words]
            text = ", ".join(w.upper() if n % 2 else w for w in words) + "!"
            yield f"{split}-{n}", {"speech": np.concatenate(pieces), "text": text, "speaker_id": n % 2}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tfds")
    for builder in (TinySpokenWords, TinySpeechBook):
        builder(data_dir=str(folder)).download_and_prepare()
    return str(folder)


def config_for(*settings) -> TranscribeConfig:
    return cfg.apply_overrides(TranscribeConfig(), list(settings))


def test_with_no_data_the_default_is_spoken_digit_from_tfds_as_strings():
    d = TranscribeConfig().data
    assert PIPELINE.resolve_source(d) == "tfds" and d.path is None  # tfds_source reads None as spoken_digit
    assert PIPELINE.data_overrides("tfds:librispeech") == ["data.source=tfds", "data.path=librispeech"]


def test_single_words_from_tfds_become_strings_split_by_their_file_names(data_dir):
    d = config_for("data.source=tfds", "data.path=tiny_spoken_words", f"data.tfds_data_dir={data_dir}").data
    d.split, d.strings, d.words = "index:0", 30, [2, 3]
    found = utterances.SOURCES.get("tfds")(d)
    assert found.sample_rate == RATE and found.sizes["train"] == 30
    for split in utterances.SPLITS:
        waves = list(found.waves[split].as_numpy_iterator())
        assert [len(w) for w in waves] == list(found.samples[split])
        assert 0.45 < max(np.abs(w).max() for w in waves) < 0.7  # tones of amplitude 0.5, as 16-bit samples
        for text, name in zip(found.transcripts[split], found.names[split]):
            clips = name[name.index("(") + 1 : -1].split(" + ")
            assert [c.split("_")[0] for c in clips] == text.split()
            assert len({c.split("_")[1] for c in clips}) == 1  # one speaker a string, from the file name
            assert ({c.split("_")[2] for c in clips} == {"0.wav"}) == (split == "test")


def test_utterances_and_transcripts_from_tfds_take_its_own_named_splits(data_dir):
    d = config_for("data.source=tfds", "data.path=tiny_speech_book", f"data.tfds_data_dir={data_dir}").data
    found = utterances.SOURCES.get("tfds")(d)
    sizes = TinySpeechBook.SPLITS
    assert found.sizes == {
        "train": sizes["train_clean100"],
        "validation": sizes["dev_clean"],
        "test": sizes["test_clean"],
    }
    assert all(set(t.split()) <= set(PITCH) for t in found.transcripts["train"])  # normalised: "LOW, mid!"
    assert found.names["test"][0] == "tfds tiny_speech_book test_clean example 0"
    for split in utterances.SPLITS:
        assert [len(w) for w in found.waves[split].as_numpy_iterator()] == list(found.samples[split])


def test_splits_are_found_by_their_names_prefix():
    names = ["dev_other", "train_other500", "dev_clean", "test_clean", "train_clean100"]
    assert own_split(names, "train") == "train_clean100"
    assert own_split(names, "validation", "dev") == "dev_clean"
    assert own_split(["train", "train_extra", "test"], "train") == "train"
    assert own_split(["train"], "test") is None


def test_a_tfds_dataset_without_transcripts_or_words_is_named(tmp_path):
    class TinyNoise(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return self.dataset_info_from_configs(
                features=tfds.features.FeaturesDict({"audio": tfds.features.Audio(shape=(None,), dtype=np.int16)})
            )

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples()}

        def _generate_examples(self):
            yield 0, {"audio": np.zeros(800, np.int16)}

    d = config_for("data.source=tfds", "data.path=tiny_noise", f"data.tfds_data_dir={tmp_path}").data
    with pytest.raises(UserError, match="tiny_noise.*Text feature"):
        utterances.SOURCES.get("tfds")(d)


def test_train_and_evaluate_from_a_tfds_dataset(data_dir, tmp_path):
    sets = [*PIPELINE.example_settings, f"data.tfds_data_dir={data_dir}"]
    args = ["--task", "transcribe", "--data", "tfds:tiny_speech_book", *(x for s in sets for x in ("--set", s))]
    result = dlapps("speech", "train", *args, "--runs-dir", tmp_path, "--name", "book")
    assert result.exit_code == 0, result.stderr
    run = tmp_path / "speech" / "book"
    assert json.loads((run / "metrics.json").read_text())["utterances"] == TinySpeechBook.SPLITS["test_clean"]
    assert "tfds tiny_speech_book" in (run / "run.json").read_text()
    missing = dlapps(
        "speech", "train", "--task", "transcribe", "--data", "tfds:no_such_speech_xyz", "--runs-dir", tmp_path
    )
    assert_one_line_error(missing, "no_such_speech", "not available")


def test_the_transcript_is_the_datasets_target_or_a_text_feature_by_name():
    choose = utterances.transcript_feature
    ljspeech = types.SimpleNamespace(supervised_keys=("speech", "text_normalized"))
    plain = types.SimpleNamespace(supervised_keys=None)
    assert choose(ljspeech, ["text", "text_normalized"], "ljspeech", None) == "text_normalized"
    assert choose(plain, ["client_id", "sentence"], "common_voice", None) == "sentence"  # not the user id
    assert choose(plain, ["client_id", "sentence"], "common_voice", "client_id") == "client_id"
    with pytest.raises(UserError, match="data.tfds_transcript"):
        choose(plain, ["a", "b"], "x", None)
    with pytest.raises(UserError, match="no Text feature 'words'; its Text features: a, b"):
        choose(plain, ["a", "b"], "x", "words")


def test_words_without_file_names_need_a_random_split(tmp_path):
    class TinyUnnamedWords(TinySpokenWords):
        def _info(self):
            return self.dataset_info_from_configs(
                features=tfds.features.FeaturesDict(
                    {
                        "audio": tfds.features.Audio(shape=(None,), dtype=np.int64, sample_rate=RATE),
                        "label": tfds.features.ClassLabel(names=list(PITCH)),
                    }
                )
            )

        def _generate_examples(self):
            for key, example in super()._generate_examples():
                yield key, {"audio": example["audio"], "label": example["label"]}

    d = config_for("data.source=tfds", "data.path=tiny_unnamed_words", f"data.tfds_data_dir={tmp_path}").data
    with pytest.raises(UserError, match="does not give every clip its index.*data.split=random"):
        utterances.SOURCES.get("tfds")(d)
    d.split, d.strings = "random", 12
    assert utterances.SOURCES.get("tfds")(d).sizes["train"] == 12


def test_a_label_with_no_word_in_it_is_named(tmp_path):
    from pipelines.speech.pipeline import write_tone

    rng = np.random.default_rng(0)
    for label in ("_yes_", "--"):
        (tmp_path / label).mkdir()
        for take in range(3):
            write_tone(tmp_path / label / f"{take}.wav", 500.0, 0.3, rng)
    d = config_for(f"data.path={tmp_path}", "data.split=random").data
    with pytest.raises(UserError, match="the labels '--' hold no word"):
        utterances.SOURCES.get("strings")(d)
    assert utterances.word_of("_yes_") == "yes"
