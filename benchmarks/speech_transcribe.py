"""Transcription on strings of spoken digits (FSDD): `dlapps speech train --task transcribe` with its defaults on the
official split (test strings made only of takes 0-4) within a wall-clock budget, then every test string written as
a WAV file and transcribed by `dlapps speech predict` and by the exported SavedModel's `wav_bytes` signature.

    python benchmarks/speech_transcribe.py [--minutes 15] [--set KEY=VALUE ...]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from common import SHARED, dlapps, emit, require, timed_train


def write_test_strings(run: Path, folder: Path) -> tuple[list[str], list[str]]:
    """The run's test strings as 16-bit WAV files, and their transcripts."""
    import tensorflow as tf

    from pipelines.core import config as cfg
    from pipelines.speech import utterances
    from pipelines.speech.transcription import TranscribeConfig

    config = cfg.load_yaml(run / "config.yaml", TranscribeConfig)
    found = utterances.SOURCES.get("strings")(config.data)
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=15.0, help="train.max_minutes: the training budget")
    parser.add_argument("--set", action="append", default=[], dest="sets")
    args = parser.parse_args()
    recordings = require(SHARED / "fsdd" / "recordings")
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        settings = ["--task", "transcribe"]
        run, wall, metrics, info = timed_train(
            "speech", recordings, runs, "strings", [f"train.max_minutes={args.minutes}", *args.sets], *settings
        )
        dlapps("speech", "export", run, "--format", "saved_model")  # an error stops the benchmark
        paths, references = write_test_strings(run, runs)
        predicted = [line.partition("\t")[2] for line in dlapps("speech", "predict", run, *paths).stdout.splitlines()]
        exported = exported_transcripts(run, paths)
        import jiwer

        emit(
            "speech_transcribe",
            {
                "settings": args.sets,
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
            },
        )


if __name__ == "__main__":
    main()
