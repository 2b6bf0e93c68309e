"""Transcription's parts: utterances from word clips and manifests, features and models that do not depend on
the batch an utterance is in, CTC decoding, and a model that learns to transcribe strings of tones."""

import numpy as np
import pytest
import tensorflow as tf

from pipelines.core import config as cfg
from pipelines.core.errors import UserError
from pipelines.speech import ctc, utterances
from pipelines.speech.pipeline import write_tone, write_tone_words
from pipelines.speech.transcription import PIPELINE, TranscribeConfig, features_for, needed_steps

RATE = 8000


def tone_words(folder, takes: int = 4, words=("low", "mid", "high")) -> None:
    """Three "words" as tones, two "speakers", in FSDD's file layout."""
    write_tone_words(folder, words, takes, step=0.02)


def config_for(path, *settings) -> TranscribeConfig:
    return cfg.apply_overrides(TranscribeConfig(), [f"data.path={path}", *settings])


def test_strings_join_one_speakers_clips_with_pauses_and_read_as_their_words(tmp_path):
    tone_words(tmp_path)
    d = config_for(tmp_path, "data.split=index:0", "data.strings=40", "data.words=[2,4]").data
    found = utterances.SOURCES.get("strings")(d)
    assert found.sizes["train"] == 40 and found.sizes["validation"] >= 1 and found.sizes["test"] >= 1
    for split in utterances.SPLITS:
        waves = list(found.waves[split].as_numpy_iterator())
        assert [len(w) for w in waves] == list(found.samples[split])
        for text, name in zip(found.transcripts[split], found.names[split]):
            words = text.split()
            assert 2 <= len(words) <= 4 and set(words) <= {"low", "mid", "high"}
            clips = name[name.index("(") + 1 : -1].split(" + ")
            assert [c.split("_")[0] for c in clips] == words
            assert len({c.split("_")[1] for c in clips}) == 1  # one speaker a string
            takes = {int(c.split("_")[2].removesuffix(".wav")) for c in clips}
            assert (takes == {0}) == (split == "test")  # data.split=index:0: take 0 only in test strings
    wave = next(found.waves["train"].as_numpy_iterator())
    silent = np.abs(wave) < 1e-9
    assert silent[: int(0.05 * RATE)].all() and silent[-int(0.05 * RATE) :].all()  # pauses at both ends
    assert (~silent).sum() > 0.25 * RATE * 2


def test_digit_labels_read_as_words():
    assert [utterances.word_of(label) for label in ("3", "1", "4", "yes")] == ["three", "one", "four", "yes"]


def write_manifest(folder, rows: list[tuple[str, float, str]]) -> str:
    rng = np.random.default_rng(0)
    lines = []
    for name, seconds, text in rows:
        if seconds:
            write_tone(folder / name, 500.0, seconds, rng)
        lines.append(f"{name}\t{text}")
    (folder / "manifest.tsv").write_text("path\ttranscript\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return str(folder / "manifest.tsv")


def test_a_manifest_names_the_line_of_a_missing_file_an_empty_transcript_and_too_short_audio(tmp_path):
    good = [(f"a{i}.wav", 0.6, "Hello, World!") for i in range(12)]
    found = utterances.SOURCES.get("manifest")(config_for(write_manifest(tmp_path, good)).data)
    assert sum(found.sizes.values()) == 12 and set(found.transcripts["train"]) == {"hello world"}
    assert found.names["test"][0].startswith(f"{tmp_path / 'manifest.tsv'} line ")

    missing = write_manifest(tmp_path, [*good, ("absent.wav", 0, "words")])
    with pytest.raises(UserError, match=r"manifest.tsv line 14: audio file .*absent.wav not found"):
        utterances.SOURCES.get("manifest")(config_for(missing).data)
    empty = write_manifest(tmp_path, [*good[:3], ("e.wav", 0.5, " ... "), *good[3:]])
    with pytest.raises(UserError, match=r"manifest.tsv line 5: the transcript is empty"):
        utterances.SOURCES.get("manifest")(config_for(empty).data)
    short = write_manifest(tmp_path, [*good, ("short.wav", 0.1, "a sentence far too long for a tenth of a second")])
    config = config_for(short, "data.test_fraction=0.3")
    with pytest.raises(UserError, match=r"manifest.tsv line 14: 0.10 s of audio is too short for its transcript"):
        PIPELINE.load_data(config)


def test_ctc_needs_a_step_per_label_and_one_between_repeats():
    assert needed_steps(list("abc")) == 3 and needed_steps(list("hello")) == 6 and needed_steps(list("aaa")) == 5


def padded(waves: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([len(w) for w in waves], np.int32)
    batch = np.zeros([len(waves), lengths.max()], np.float32)
    for row, wave in zip(batch, waves):
        row[: len(wave)] = wave
    return batch, lengths


def test_an_utterance_has_the_same_features_and_scores_alone_and_padded_in_a_batch(tmp_path):
    config = config_for(tmp_path, "data.sample_rate=8000", "model.units=8", "model.width=4")
    features = features_for(config)
    rng = np.random.default_rng(0)
    short = (0.5 * np.sin(np.arange(3000) * 0.3) + 0.1 * rng.standard_normal(3000)).astype(np.float32)
    long = rng.standard_normal(9000).astype(np.float32)
    batch = features(*padded([short, long]))
    alone = features(*padded([short]))
    frames = int(alone["frames"][0])
    assert int(batch["frames"][0]) == frames == 1 + (3000 - 256) // 128
    np.testing.assert_allclose(batch["features"][0, :frames], alone["features"][0], atol=1e-5)
    for name in ("ds2", "transformer"):
        parts = ctc.Parts(list(" abc"), np.full(40, -5.0, np.float32), np.full(40, 9.0, np.float32))
        model = ctc.MODELS.get(name)(config.model, parts)
        together, single = model(batch), model(alone)
        steps = int(ctc.steps_after(frames, ctc.CONV_STRIDE))
        assert single.shape[1] == steps
        np.testing.assert_allclose(together[0, :steps], single[0], atol=1e-4, err_msg=name)


def test_greedy_and_beam_decoding_merge_repeats_drop_blanks_and_stop_at_each_length():
    vocabulary = list(" ab")  # classes 0..2, the blank 3
    inputs = {"features": tf.keras.Input((None, 4)), "frames": tf.keras.Input((), dtype="int32")}
    identity = tf.keras.Model(inputs, tf.keras.layers.Identity()(inputs["features"]))
    model = ctc.Transcriber(identity, vocabulary, stride=1)
    paths = [[1, 1, 3, 1, 2, 0, 2, 2], [2, 3, 2, 3, 3, 1, 1, 1]]  # "aab b" (cut at 6: "aab "), "bba"
    scores = tf.one_hot(paths, 4) * 10.0
    given = {"features": scores, "frames": tf.constant([6, 8])}
    assert [t.decode() for t in model.greedy(given).numpy()] == ["aab ", "bba"]
    assert [t.decode() for t in model.beam(given, 4).numpy()] == ["aab ", "bba"]


def test_unknown_characters_are_left_out_of_the_labels():
    inputs = {"features": tf.keras.Input((None, 3)), "frames": tf.keras.Input((), dtype="int32")}
    model = ctc.Transcriber(tf.keras.Model(inputs, inputs["features"]), ["a", "b"], stride=1)
    assert model.label_ids(tf.constant(["abxa", "é"])).to_list() == [[0, 1, 0], []]


@pytest.mark.parametrize("name", ["ds2", "transformer"])
def test_an_empty_batch_scores_nothing_and_costs_nothing(name, tmp_path):
    """Across workers a short last batch leaves one of them an empty share: TensorFlow's convolution would give it the
    wrong shape and its CTC loss would fail; the model gives no scores and a loss of 0 (a NaN would spoil the sum)."""
    config = config_for(tmp_path, "model.units=8", "model.width=4")
    parts = ctc.Parts(list(" ab"), np.zeros(40, np.float32), np.ones(40, np.float32))
    model = ctc.MODELS.get(name)(config.model, parts)
    empty = {"features": tf.zeros([0, 50, 40]), "frames": tf.zeros([0], tf.int32)}
    assert model(empty).shape == (0, 25, 4)
    signature = [tf.TensorSpec([None, None, 40]), tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.string)]

    @tf.function(input_signature=signature)  # as in training: the batch size is not known when the step is traced
    def loss_of(features, frames, transcripts):
        return model.loss_of({"features": features, "frames": frames}, transcripts, training=True)[0]

    assert float(loss_of(empty["features"], empty["frames"], tf.constant([], tf.string))) == 0.0
