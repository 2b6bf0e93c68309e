"""`dlapps speech train --task transcribe` end to end: strings of tone "words" trained, evaluated, transcribed by
`predict`, and by the exported SavedModel in a fresh process with only TensorFlow, the same."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.helpers import assert_one_line_error, dlapps
from tests.speech.test_transcription import tone_words, write_manifest

LETTERS = ("a", "b", "c")
SETTINGS = [
    "data.split=index:0",
    "data.strings=200",
    "data.words=[1,3]",
    "data.pause=[0.02,0.1]",
    "model.width=8",
    "model.units=32",
    "model.depth=1",
    "model.dropout=0",  # a model this small learns the tones in time only without
    "train.epochs=15",
    "data.mean_normalize=false",  # a tone's spectrum is its whole mean: subtracting it would leave nothing
    "train.batch_size=16",
    "train.learning_rate=3e-3",
]


@pytest.fixture(scope="module")
def tone_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tones")
    tone_words(folder, words=LETTERS)  # a tone a letter: learnt in seconds (a tone spelt "high" takes minutes)
    runs = tmp_path_factory.mktemp("runs")
    args = ["--task", "transcribe", "--data", folder, *(x for item in SETTINGS for x in ("--set", item))]
    result = dlapps("speech", "train", *args, "--runs-dir", runs, "--name", "t")
    assert result.exit_code == 0, result.stderr
    return runs / "speech" / "t", folder, result


def test_train_reports_error_rates_and_writes_the_worst_transcripts_first(tone_run):
    run, _, result = tone_run
    metrics = json.loads((run / "metrics.json").read_text())
    assert "Test split: WER" in result.output and metrics["decoding"] == "greedy"
    assert metrics["cer"] < 0.75  # learnt (0.48 measured): an untrained model's transcripts are empty (CER 1.0)
    rows = (run / "samples" / "transcripts.tsv").read_text().strip().splitlines()
    assert rows[0] == "utterance\treference\ttranscript\tcer" and len(rows) == metrics["utterances"] + 1
    cers = [float(row.split("\t")[3]) for row in rows[1:]]
    assert cers == sorted(cers, reverse=True)
    info = json.loads((run / "run.json").read_text())
    assert info["vocabulary"] == [" ", "a", "b", "c"]


def test_predict_and_both_serving_signatures_transcribe_alike_in_a_fresh_process(tone_run, tmp_path):
    from pipelines.speech.transcription import PIPELINE

    run, _, _ = tone_run
    files = PIPELINE.example_inputs(tmp_path)
    files += [str(p) for p in sorted(tone_run[1].glob("*_0.wav"))]  # single words never trained on
    result = dlapps("speech", "predict", run, *files)
    assert result.exit_code == 0, result.stderr
    predicted = [line.partition("\t")[2] for line in result.output.splitlines()]  # "" for silence
    assert len(predicted) == len(files) and any(predicted)
    assert dlapps("speech", "export", run, "--format", "saved_model").exit_code == 0
    client = textwrap.dedent(f"""
        import sys, json, tensorflow as tf
        loaded = tf.saved_model.load({str(run / "export" / "saved_model")!r})
        files = {files!r}
        out = loaded.signatures["wav_bytes"](wav_bytes=tf.constant([open(f, "rb").read() for f in files]))
        texts = [t.decode() for t in out["transcript"].numpy()]
        waves = [tf.audio.decode_wav(open(f, "rb").read())[0][:, 0] for f in files]
        lengths = tf.constant([len(w) for w in waves], tf.int32)
        padded = tf.stack([tf.pad(w, [[0, int(max(lengths)) - len(w)]]) for w in waves])
        raw = loaded.signatures["serving_default"](audio=padded, lengths=lengths)
        assert [t.decode() for t in raw["transcript"].numpy()] == texts
        print(json.dumps(texts))
        print(any(m.split(".")[0] in ("pipelines", "apps") for m in sys.modules), file=sys.stderr)
    """)
    out = subprocess.run([sys.executable, "-c", client], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == predicted
    assert out.stderr.strip().splitlines()[-1] == "False"  # nothing of ours was imported


def test_a_manifest_trains_and_a_bad_row_is_one_line_with_no_run(tmp_path):
    rows = [(f"a{i}.wav", 0.5 + 0.01 * i, ["low", "high low"][i % 2]) for i in range(16)]
    manifest = write_manifest(tmp_path, rows)
    settings = ["train.epochs=1", "model.units=8", "model.width=4", "train.batch_size=8"]
    args = [x for item in settings for x in ("--set", item)]
    runs = tmp_path / "runs"
    result = dlapps("speech", "train", "--task", "transcribe", "--data", manifest, "--runs-dir", runs, *args)
    assert result.exit_code == 0, result.stderr
    assert "manifest" in result.stderr and "utterances" in result.output

    broken = write_manifest(tmp_path, [*rows, ("gone.wav", 0, "words")])
    bad = tmp_path / "bad"
    result = dlapps("speech", "train", "--task", "transcribe", "--data", broken, "--runs-dir", bad, *args)
    assert_one_line_error(result, "line 18", "gone.wav", "not found")
    assert not bad.exists()


def test_predict_on_audio_shorter_than_a_frame_or_of_an_implausible_rate_is_one_line(tone_run, tmp_path):
    run, _, _ = tone_run
    import tensorflow as tf

    tiny = tmp_path / "tiny.wav"
    tiny.write_bytes(tf.audio.encode_wav(tf.zeros([40, 1]), 8000).numpy())
    assert_one_line_error(dlapps("speech", "predict", run, tiny), "tiny.wav", "shorter than one frame")
    one_hertz = tmp_path / "one-hertz.wav"  # resampled as stated, 0.5 s would become gigabytes
    one_hertz.write_bytes(tf.audio.encode_wav(tf.zeros([4000, 1]), 1).numpy())
    assert_one_line_error(dlapps("speech", "predict", run, one_hertz), "one-hertz.wav", "outside 1,000..384,000 Hz")
    assert np.isfinite(json.loads((run / "metrics.json").read_text())["wer"])
