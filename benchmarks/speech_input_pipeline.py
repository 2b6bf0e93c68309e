"""Is the speech input pipeline the bottleneck? Training throughput of dlapps' tf.data pipeline from
WAV files (read, decode, resample, fit, log-mel, cache, shuffle, batch, prefetch) against the same
model fed the same log-mel tensors precomputed in memory, in one process. dlapps' figure
includes the pass that decodes every file (it happens while the normalisation adapts).

    python benchmarks/speech_input_pipeline.py [--epochs 4] [--sample-rate 16000]
"""

import argparse
import time

import numpy as np

from common import SHARED, emit, require
from vision_input_pipeline import throughput


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
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
    data, model = training.prepare(PIPELINE, config)
    initial = model.get_weights()
    # The same training examples as tensors in memory: the ceiling for any input pipeline.
    x, y = (np.concatenate(parts) for parts in zip(*[(a.numpy(), b.numpy()) for a, b in data.train]))
    in_memory = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0).batch(config.train.batch_size)
    baseline = throughput(model, in_memory.prefetch(tf.data.AUTOTUNE), len(x), args.epochs)
    # A fresh pipeline (nothing cached yet) and the same starting weights. Adapting the model's
    # normalisation reads the training split once, filling the cache: that pass is timed too.
    start = time.perf_counter()
    data, model = training.prepare(PIPELINE, config)
    first_pass = time.perf_counter() - start
    model.set_weights(initial)
    ours = throughput(model, data.train, len(x), args.epochs)
    ours["first_pass_seconds"] = round(first_pass, 2)
    with_first_pass = len(x) * args.epochs / (first_pass + len(x) * args.epochs / ours["examples_per_second_all_epochs"])
    emit("speech_input_pipeline", {
        "clips": len(x), "sample_rate": config.data.sample_rate, "features": list(data.input_shape),
        "model": config.model.name, "batch_size": config.train.batch_size,
        "in_memory_tensors": baseline, "dlapps_tf_data_from_wav_files": ours,
        "ratio_including_first_pass": round(with_first_pass / baseline["examples_per_second_all_epochs"], 3),
        "ratio_all_epochs": round(ours["examples_per_second_all_epochs"] / baseline["examples_per_second_all_epochs"], 3),
        "ratio_after_first_epoch": round(ours["examples_per_second_after_first"] / baseline["examples_per_second_after_first"], 3),
    })


if __name__ == "__main__":
    main()
