"""Serving latency: the exported SavedModel on one PNG (decode + fit + model in the graph) against
calling the in-memory Keras model on the already-decoded tensor, in one process.

    python benchmarks/vision_serving.py [--repeats 300]
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from common import REPO, SHARED, emit, p50_ms, require


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()
    import keras
    import tensorflow as tf

    from pipelines.vision.data import read_idx

    mnist = require(SHARED / "mnist")
    image = read_idx(mnist / "t10k-images-idx3-ubyte.gz")[0][..., None]
    png = tf.io.encode_png(image).numpy()
    with tempfile.TemporaryDirectory() as runs:
        # A short real run on MNIST, exported by the CLI exactly as a user would.
        cli = [sys.executable, "-m", "apps.cli", "vision"]
        run = Path(runs) / "vision" / "serve"
        subprocess.run(
            [
                *cli,
                "train",
                "--data",
                str(mnist),
                "--runs-dir",
                runs,
                "--name",
                "serve",
                "--set",
                "train.epochs=1",
                "--set",
                "train.steps_per_epoch=50",
            ],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        subprocess.run([*cli, "export", str(run)], cwd=REPO, check=True, capture_output=True)
        serve = tf.saved_model.load(str(run / "export" / "saved_model")).signatures["serving_default"]
        model = keras.models.load_model(run / "model.keras", compile=False)
        png_batch = tf.constant([png])
        decoded = tf.constant(image[None].astype("float32"))
        compiled = tf.function(lambda x: model(x, training=False))
        figures = {
            "saved_model_png_p50_ms": p50_ms(lambda: serve(image_bytes=png_batch), args.repeats),
            "keras_eager_decoded_p50_ms": p50_ms(lambda: model(decoded, training=False), args.repeats),
            "keras_tf_function_decoded_p50_ms": p50_ms(lambda: compiled(decoded), args.repeats),
        }
    figures["ratio_vs_keras_eager"] = round(
        figures["saved_model_png_p50_ms"] / figures["keras_eager_decoded_p50_ms"], 3
    )
    figures["ratio_vs_keras_tf_function"] = round(
        figures["saved_model_png_p50_ms"] / figures["keras_tf_function_decoded_p50_ms"], 3
    )
    emit("vision_serving", {"batch": 1, "input": "one 28x28 PNG", **figures})


if __name__ == "__main__":
    main()
