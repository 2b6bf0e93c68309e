"""Is the speech input pipeline the bottleneck? Training throughput of dlapps' tf.data pipeline from
WAV files (read, decode, resample, fit, log-mel, cache, shuffle, batch, prefetch) against the same
model fed the same log-mel tensors precomputed in memory, in one process, epochs alternating.

    python benchmarks/speech_input_pipeline.py [--epochs 8] [--sample-rate 16000]
"""

import argparse
import statistics
import time

import numpy as np
from common import SHARED, emit, require


def interleaved_epochs(runs: dict, epochs: int) -> dict:
    """Epoch seconds of each (model, dataset), one epoch of each in turn: this VM's speed drifts
    between runs by up to 1.6x, and alternating exposes both pipelines to the same drift."""
    times = {name: [] for name in runs}
    for _ in range(epochs):
        for name, (model, dataset) in runs.items():
            start = time.perf_counter()
            model.fit(dataset, epochs=1, verbose=0)
            times[name].append(round(time.perf_counter() - start, 2))
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--sample-rate", type=int, default=None, help="resample to this rate (FSDD is 8 kHz)")
    args = parser.parse_args()
    import tensorflow as tf

    from pipelines.core import config as cfg
    from pipelines.core import training
    from pipelines.speech.pipeline import PIPELINE

    recordings = require(SHARED / "fsdd" / "recordings")
    overrides = [f"data.path={recordings}", "data.source=folder", "data.split=index:0-4"]
    if args.sample_rate:
        overrides.append(f"data.sample_rate={args.sample_rate}")
    config = cfg.apply_overrides(PIPELINE.config_class(), overrides)
    data, baseline_model = training.prepare(PIPELINE, config)
    # The same training examples as tensors in memory: the ceiling for any input pipeline.
    x, y = (np.concatenate(parts) for parts in zip(*[(a.numpy(), b.numpy()) for a, b in data.train]))
    in_memory = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0).batch(config.train.batch_size)
    # A fresh pipeline (nothing cached yet) and the same starting weights. Adapting the model's
    # normalisation reads the training split once (every file decoded, resampled, featurised)
    # and fills the cache: that pass is timed, and counted against dlapps.
    start = time.perf_counter()
    data, model = training.prepare(PIPELINE, config)
    first_pass = time.perf_counter() - start
    model.set_weights(baseline_model.get_weights())
    times = interleaved_epochs(
        {
            "in_memory_tensors": (baseline_model, in_memory.prefetch(tf.data.AUTOTUNE)),
            "dlapps_tf_data_from_wav_files": (model, data.train),
        },
        args.epochs,
    )
    ours, theirs = times["dlapps_tf_data_from_wav_files"], times["in_memory_tensors"]
    emit(
        "speech_input_pipeline",
        {
            "clips": len(x),
            "sample_rate": config.data.sample_rate,
            "features": list(data.input_shape),
            "model": config.model.name,
            "batch_size": config.train.batch_size,
            "epoch_seconds": times,
            "first_pass_seconds": round(first_pass, 2),
            "ratio": round(sum(theirs) / sum(ours), 3),
            "ratio_counting_first_pass": round(sum(theirs) / (sum(ours) + first_pass), 3),
            "ratio_of_median_epochs": round(statistics.median(theirs) / statistics.median(ours), 3),
        },
    )


if __name__ == "__main__":
    main()
