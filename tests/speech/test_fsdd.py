"""Real recordings, when the shared datasets sit beside the repository (a fresh clone has none):
every FSDD file decodes exactly as tf.audio.decode_wav reads it, and the official split is the
documented one. Accuracy on this data lives in benchmarks/speech_fsdd.py."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from pipelines.speech import audio, data
from pipelines.speech.pipeline import SpeechDataConfig

RECORDINGS = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "fsdd" / "recordings"
pytestmark = pytest.mark.skipif(not RECORDINGS.is_dir(), reason=f"shared datasets not found at {RECORDINGS}")


def test_every_recording_decodes_like_tensorflow_does():
    paths = sorted(str(p) for p in RECORDINGS.glob("*.wav"))
    assert len(paths) == 3000

    def both(path):
        contents = tf.io.read_file(path)
        ours, rate = audio.decode_wav(contents)
        theirs, their_rate = tf.audio.decode_wav(contents)
        return tf.reduce_max(tf.abs(ours - theirs)), rate - tf.cast(their_rate, tf.int64)

    ds = tf.data.Dataset.from_tensor_slices(paths).map(both, num_parallel_calls=tf.data.AUTOTUNE)
    differences = np.array([(float(d), int(r)) for d, r in ds.as_numpy_iterator()])
    assert differences.max() == 0.0


def test_official_and_speaker_splits():
    official = data.folder_source(SpeechDataConfig(source="folder", path=str(RECORDINGS), split="index:0-4"))
    assert official.sizes["test"] == 300 and official.sample_rate == 8000
    assert official.class_names == [str(d) for d in range(10)]
    theo = data.folder_source(SpeechDataConfig(source="folder", path=str(RECORDINGS), split="speaker:theo"))
    assert theo.sizes["test"] == 500
