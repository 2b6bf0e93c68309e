"""Every speech verb end to end through the CLI on generated WAVs of mixed formats, a few steps each."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import SPEECH_FAST, assert_one_line_error, dlapps, event_tags, tone, wav_bytes

SETS = [x for item in SPEECH_FAST for x in ("--set", item)]
CLASSES = ["high", "low", "mid"]


def test_train_fills_the_run_directory(speech_run):
    run, result = speech_run
    for name in (
        "config.yaml",
        "run.json",
        "model.keras",
        "metrics.json",
        "samples/confusion_matrix.png",
        "samples/pr_curves.png",
        "samples/sample_predictions.png",
    ):
        assert (run / name).is_file(), name
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "complete" and info["class_names"] == CLASSES
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["examples"] == 12 and {"accuracy", "macro_f1", "per_class", "confusion_matrix"} <= set(metrics)
    assert "Test split: accuracy" in result.output and "Traceback" not in result.stderr
    for split in ("validation", "eval"):
        tags = event_tags(run / "logs" / split)
        assert {"evaluation/confusion_matrix", "evaluation/sample_predictions"} <= tags["images"]
        assert {f"pr_curve/{c}/pr_curves" for c in CLASSES} <= tags["pr_curves"]


def test_misclassified_clips_are_written_as_audio(speech_run, wav_folder, tmp_path):
    """The audio summary, from a scored split whose every answer is wrong (so there is something to hear)."""
    import tensorflow as tf

    from pipelines.core import config as cfg
    from pipelines.core.callbacks import Predictions, Scored
    from pipelines.speech.pipeline import PIPELINE, SpeechConfig

    config = cfg.load_yaml(speech_run[0] / "config.yaml", SpeechConfig)
    data = PIPELINE.load_data(config)
    y_true = np.array([0, 1, 2] * 4)
    wrong = np.eye(3)[(y_true + 1) % 3]
    writer = tf.summary.create_file_writer(str(tmp_path))
    PIPELINE.extra_summaries(
        writer, 1, Scored(Predictions(y_true, wrong, np.zeros(0), np.zeros(0, int)), {}, {}), data=data, split="test"
    )
    writer.close()
    assert "evaluation/misclassified_audio" in event_tags(tmp_path)["audio"]


def test_predict_and_both_serving_signatures_agree_in_a_fresh_process(speech_run, wav_folder):
    run, _ = speech_run
    assert dlapps("speech", "export", run, "--format", "saved_model").exit_code == 0
    files = [str(wav_folder / f"{c}_{s}_{i}.wav") for c in CLASSES for s in ("ann", "bob") for i in (0, 3, 4)]
    result = dlapps("speech", "predict", run, *files)
    assert result.exit_code == 0, result.stderr
    predicted = [line.split("\t")[1] for line in result.output.strip().splitlines()]
    assert len(predicted) == len(files) and set(predicted) <= set(CLASSES)
    client = textwrap.dedent(f"""
        import sys, json, tensorflow as tf
        loaded = tf.saved_model.load({str(run / "export" / "saved_model")!r})
        files = {files!r}
        out = loaded.signatures["wav_bytes"](wav_bytes=tf.constant([open(f, "rb").read() for f in files]))
        assert out["probabilities"].shape == (len(files), 3)
        waves = tf.random.normal([2, 3000]) * 0.1  # raw samples at the model's rate, any length
        raw = loaded.signatures["serving_default"](audio=waves)
        assert raw["class_id"].shape == (2,)
        print(json.dumps([n.decode() for n in out["class_name"].numpy().tolist()]))
        print(any(m.split(".")[0] in ("pipelines", "apps") for m in sys.modules), file=sys.stderr)
    """)
    out = subprocess.run([sys.executable, "-c", client], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == predicted
    assert out.stderr.strip().splitlines()[-1] == "False"  # nothing of ours was imported


def test_tflite_takes_raw_audio_and_gives_the_same_top1(speech_run, wav_folder):
    import keras
    import tensorflow as tf

    from pipelines.core import config as cfg
    from pipelines.speech.pipeline import PIPELINE, SpeechConfig, frontend_for

    run, _ = speech_run
    assert dlapps("speech", "export", run, "--format", "tflite").exit_code == 0
    config = cfg.load_yaml(run / "config.yaml", SpeechConfig)
    frontend = frontend_for(config)
    files = sorted(wav_folder.iterdir())[:12]
    from pipelines.speech import audio

    waves = np.stack(
        [audio.wav_to_waveform(tf.io.read_file(str(f)), frontend.sample_rate, frontend.samples) for f in files]
    )
    model = keras.models.load_model(run / "model.keras", compile=False)
    expected = model.predict(PIPELINE.read_inputs(files, model, config), verbose=0).argmax(1)
    runner = tf.lite.Interpreter(model_path=str(run / "export" / "model.tflite")).get_signature_runner(
        "serving_default"
    )
    lite = np.concatenate([runner(audio=w[None].astype(np.float32))["probabilities"] for w in waves])
    np.testing.assert_array_equal(lite.argmax(1), expected)


@pytest.mark.parametrize(
    "name,augment",
    [
        ("lstm", ["model.augment=[shift,noise,crop]"]),
        ("transformer", ["model.augment=[warp,specaugment]", "data.features=logmel"]),
        ("wave_cnn", []),
    ],
)  # its default drops the spectral SpecAugment
def test_other_models_train_through_the_cli(name, augment, wav_folder, tmp_path):
    sets = [x for item in augment for x in ("--set", item)]
    result = dlapps(
        "speech",
        "train",
        "--data",
        wav_folder,
        "--runs-dir",
        tmp_path,
        *SETS,
        "--set",
        f"model.name={name}",
        "--set",
        "train.epochs=1",
        *sets,
    )
    assert result.exit_code == 0, result.stderr
    config = (next((tmp_path / "speech").iterdir()) / "config.yaml").read_text()
    assert ("features: waveform" in config) == (name == "wave_cnn")


# --- bad input: one line, exit 2, no run directory --------------------------------------------


def write_clips(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        (folder / name).write_bytes(wav_bytes(tone(300 + 200 * i, 8000, 0.2), 8000))
    return folder


@pytest.mark.parametrize(
    "setup,fragments",
    [
        (lambda d: d.mkdir(), ["no .wav files in"]),
        (lambda d: (d.mkdir(), (d / "notes.txt").write_text("hi")), ["no .wav files in"]),
        (
            lambda d: (write_clips(d, ["a_x_0.wav", "b_x_1.wav"]), (d / "c_x_2.wav").write_bytes(b"RIFF nonsense")),
            ["not readable WAV files", "c_x_2.wav", "data.on_bad_file=skip"],
        ),
        (
            lambda d: (
                write_clips(d, ["a_x_0.wav", "b_x_1.wav"]),
                (d / "c_x_2.wav").write_bytes(wav_bytes(np.zeros(0), 8000)),
            ),
            ["no samples", "c_x_2.wav"],
        ),
        (lambda d: write_clips(d, ["one.wav", "two.wav"]), ["label_pattern", "matches none", "one.wav"]),
        (lambda d: write_clips(d, ["a_x_0.wav", "a_x_1.wav", "a_y_2.wav"]), ["only one class"]),
    ],
)
def test_bad_data(tmp_path, setup, fragments):
    setup(tmp_path / "clips")
    result = dlapps("speech", "train", "--data", tmp_path / "clips", "--runs-dir", tmp_path / "runs", *SETS)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "override,fragments",
    [
        ("model.name=wavenet", ["unknown speech model 'wavenet'", "cnn, lstm, transformer, wave_cnn"]),
        ("data.features=mel", ["'data.features' must be one of: auto, logmel, mfcc, waveform"]),
        ("data.split=speaker:zoe", ["no speaker zoe"]),
        ("data.duration=0.01", ["frames"]),
        ("model.augment=[echo]", ["'model.augment[0]' must be one of: shift, warp, specaugment, noise, crop"]),
        ("data.mfccs=60", ["data.mfccs (60) must be at most data.mel_bins (40)"]),
        ("data.features=mfcc model.augment=[warp]", ["warp bends the frequency axis"]),
    ],
)
def test_bad_settings(tmp_path, wav_folder, override, fragments):
    sets = [x for item in override.split() for x in ("--set", item)]
    result = dlapps("speech", "train", "--data", wav_folder, "--runs-dir", tmp_path / "runs", *SETS, *sets)
    assert_one_line_error(result, *fragments)


def test_predict_on_a_file_that_is_not_a_wav(speech_run, tmp_path):
    (tmp_path / "song.mp3").write_bytes(b"ID3\x03 not a wav")
    assert_one_line_error(
        dlapps("speech", "predict", speech_run[0], tmp_path / "song.mp3"), "cannot read WAV file", "song.mp3"
    )


def test_config_yaml_repeats_the_run_exactly(speech_run, tmp_path):
    run, _ = speech_run
    result = dlapps("speech", "train", "--config", run / "config.yaml", "--runs-dir", tmp_path, "--name", "again")
    assert result.exit_code == 0, result.stderr
    again = json.loads((tmp_path / "speech" / "again" / "metrics.json").read_text())
    assert again == json.loads((run / "metrics.json").read_text())


def test_predict_and_serving_refuse_a_wav_of_an_implausible_rate(speech_run, tmp_path):
    """A WAV whose header says 1 Hz, which the sources refuse, is refused by predict and by the exported
    ``wav_bytes`` signature before resampling makes gigabytes of it (InvalidArgument: a 400 for a server)."""
    import tensorflow as tf

    run, _ = speech_run
    one_hertz = tmp_path / "one-hertz.wav"
    one_hertz.write_bytes(wav_bytes(tone(300, 8000, 0.5), 1))
    assert_one_line_error(dlapps("speech", "predict", run, one_hertz), "one-hertz.wav", "outside 1,000..384,000 Hz")
    assert_one_line_error(dlapps("speech", "predict", run, "/dev/zero"), "is not a regular file")
    assert dlapps("speech", "export", run).exit_code == 0
    serve = tf.saved_model.load(str(run / "export" / "saved_model")).signatures["wav_bytes"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="outside 1,000..384,000 Hz"):
        serve(wav_bytes=tf.constant([one_hertz.read_bytes()]))
