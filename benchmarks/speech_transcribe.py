"""Transcription on strings of spoken digits (FSDD), three parts:

- official: `dlapps speech train --task transcribe` with its defaults on the official split (test strings made only
  of takes 0-4) within a wall-clock budget; then every test string written as a WAV file and transcribed by
  `dlapps speech predict` and by the exported SavedModel's `wav_bytes` signature;
- recipe: the keras-io "CTC ASR" recipe's model trained on the same strings for as long as the official run trained
  (wall clock), and tested on the same test strings;
- speakers: for each of the six speakers, a run whose test strings are that speaker's only (never heard in training),
  with `--speaker-epochs` epochs each.

    python benchmarks/speech_transcribe.py [--parts official recipe speakers] [--minutes 15] [--speaker-epochs 6]
                                           [--set KEY=VALUE ...]
"""

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from common import SHARED, dlapps, emit, require, timed_train

SPEAKERS = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]  # FSDD's speakers


def strings_of(run: Path):
    """The run's utterances, made again from its config (the same strings, splits and pauses)."""
    from pipelines.core import config as cfg
    from pipelines.speech import utterances
    from pipelines.speech.transcription import TranscribeConfig

    config = cfg.load_yaml(run / "config.yaml", TranscribeConfig)
    return utterances.SOURCES.get("strings")(config.data)


def write_test_strings(run: Path, folder: Path) -> tuple[list[str], list[str]]:
    """The run's test strings as 16-bit WAV files, and their transcripts."""
    import tensorflow as tf

    found = strings_of(run)
    paths = []
    for n, wave in enumerate(found.waves["test"].as_numpy_iterator()):
        path = folder / f"string_{n:04d}.wav"
        path.write_bytes(tf.audio.encode_wav(tf.constant(wave[:, None]), found.sample_rate).numpy())
        paths.append(str(path))
    return paths, found.transcripts["test"]


def exported_transcripts(run: Path, paths: list[str]) -> list[str]:
    client = textwrap.dedent(f"""
        import json, tensorflow as tf
        loaded = tf.saved_model.load({str(run / "export" / "saved_model")!r})
        paths, out = {paths!r}, []
        for start in range(0, len(paths), 32):
            batch = tf.constant([open(p, "rb").read() for p in paths[start:start + 32]])
            out += [t.decode() for t in loaded.signatures["wav_bytes"](wav_bytes=batch)["transcript"].numpy()]
        print(json.dumps(out))
    """)
    done = subprocess.run([sys.executable, "-c", client], capture_output=True, text=True, check=True, cwd="/")
    return json.loads(done.stdout)


def official(recordings: Path, runs: Path, minutes: float, sets: list[str]) -> dict:
    run, wall, metrics, info = timed_train(
        "speech", recordings, runs, "strings", [f"train.max_minutes={minutes}", *sets], "--task", "transcribe"
    )
    dlapps("speech", "export", run, "--format", "saved_model")  # an error stops the benchmark
    paths, references = write_test_strings(run, runs)
    predicted = [line.partition("\t")[2] for line in dlapps("speech", "predict", run, *paths).stdout.splitlines()]
    exported = exported_transcripts(run, paths)
    import jiwer

    return {
        "run": run,
        "test_strings": metrics["utterances"],
        "wer": metrics["wer"],
        "cer": metrics["cer"],
        "decoding": metrics["decoding"],
        "command_seconds": round(wall, 1),
        "fit_seconds": info.get("train_seconds"),
        "epochs": info.get("epochs_done"),
        "predict_wer_on_written_wavs": round(float(jiwer.wer(references, predicted)), 4),
        "exported_equal_to_predict": sum(a == b for a, b in zip(exported, predicted)),
        "of": len(paths),
    }


def recipe(run: Path, seconds: float, seed: int = 0) -> dict:
    """The keras-io CTC ASR recipe's model on the strings of ``run``, trained for ``seconds`` of wall clock."""
    import jiwer
    import keras
    import tensorflow as tf
    from keras_io_recipes import ctc_asr, ctc_asr_features

    keras.utils.set_random_seed(seed)
    found = strings_of(run)
    vocabulary = sorted(set("".join(found.transcripts["train"])))

    def split(name: str) -> tf.data.Dataset:
        texts = tf.data.Dataset.from_tensor_slices(tf.constant(found.transcripts[name]))
        return tf.data.Dataset.zip(found.waves[name].map(ctc_asr_features), texts).cache()

    train = split("train").shuffle(len(found.transcripts["train"]), seed=seed).padded_batch(32).prefetch(2)
    model = ctc_asr(vocabulary)

    class Budget(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start, self.steps = time.perf_counter(), 0

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            self.model.stop_training = time.perf_counter() - self.start >= seconds

    budget = Budget()
    model.fit(train, epochs=10_000, callbacks=[budget], verbose=0)
    hypotheses = []
    for inputs, _ in split("test").padded_batch(32):
        hypotheses += [t.decode() for t in model.greedy(inputs).numpy()]
    references = found.transcripts["test"]
    return {
        "parameters": model.encoder.count_params(),
        "fit_seconds": round(time.perf_counter() - budget.start, 1),
        "steps": budget.steps,
        "epochs": round(budget.steps / math.ceil(len(found.transcripts["train"]) / 32), 2),
        "wer": round(float(jiwer.wer(references, hypotheses)), 4),
        "cer": round(float(jiwer.cer(references, hypotheses)), 4),
    }


def speakers(recordings: Path, runs: Path, epochs: int, sets: list[str]) -> dict:
    """WER and CER on the strings of each speaker left out of training."""
    results = {}
    for name in SPEAKERS:
        settings = [f"data.split=speaker:{name}", f"train.epochs={epochs}", *sets]
        _, wall, metrics, info = timed_train("speech", recordings, runs, name, settings, "--task", "transcribe")
        results[name] = {
            "wer": metrics["wer"],
            "cer": metrics["cer"],
            "test_strings": metrics["utterances"],
            "fit_seconds": info.get("train_seconds"),
        }
        print(f"{name}: WER {metrics['wer']} in {wall:.0f} s", file=sys.stderr)
    return {
        "epochs": epochs,
        "each": results,
        "mean_wer": round(statistics.mean(r["wer"] for r in results.values()), 4),
        "mean_cer": round(statistics.mean(r["cer"] for r in results.values()), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parts = ["official", "recipe", "speakers"]
    parser.add_argument("--parts", nargs="+", choices=parts, default=parts)
    parser.add_argument("--minutes", type=float, default=15.0, help="train.max_minutes of the official run")
    parser.add_argument("--speaker-epochs", type=int, default=6)
    parser.add_argument("--set", action="append", default=[], dest="sets", help="a setting for every dlapps run")
    args = parser.parse_args()
    recordings = require(SHARED / "fsdd" / "recordings")
    figures = {"settings": args.sets}
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        if "official" in args.parts or "recipe" in args.parts:
            figures["official"] = official(recordings, runs, args.minutes, args.sets)
            print(f"official: WER {figures['official']['wer']}", file=sys.stderr)
        if "recipe" in args.parts:
            budget = figures["official"]["fit_seconds"]
            figures["keras_io_ctc_asr"] = recipe(figures["official"]["run"], budget)
            print(f"recipe: WER {figures['keras_io_ctc_asr']['wer']}", file=sys.stderr)
        if "speakers" in args.parts:
            figures["unseen_speakers"] = speakers(recordings, runs, args.speaker_epochs, args.sets)
        figures.get("official", {}).pop("run", None)
    emit("speech_transcribe", figures)


if __name__ == "__main__":
    main()
