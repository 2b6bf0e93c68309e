"""Export: a SavedModel whose signatures take raw input, and TFLite from one of them.

A client needs nothing from dlapps to use the result::

    import tensorflow as tf
    serve = tf.saved_model.load("runs/vision/<run>/export/saved_model").signatures["serving_default"]
    serve(image_bytes=tf.constant([open("a.png", "rb").read()]))["class_name"]
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import keras
import tensorflow as tf

from pipelines.core.errors import UserError
from pipelines.core.pipeline import Endpoints


def export_saved_model(model: keras.Model, endpoints: Endpoints, path: Path) -> Path:
    """Write the endpoints as signatures; an earlier export is replaced only once the new one is complete."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, (fn, signature) in endpoints.items():
        archive.add_endpoint(name=name, fn=fn, input_signature=signature)
    path.parent.mkdir(parents=True, exist_ok=True)
    for leftover in path.parent.glob(".saved_model-*"):  # an export killed before its clean-up
        shutil.rmtree(leftover, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=".saved_model-", dir=path.parent))
    try:
        archive.write_out(str(staging / "model"), verbose=False)
        if path.exists():
            path.rename(staging / "previous")  # aside, not deleted, until the new one is in place
        (staging / "model").rename(path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def export_tflite(saved_model: Path, signature: str | None, path: Path) -> Path:
    """Convert one signature of an exported SavedModel to a .tflite flatbuffer."""
    if signature is None:
        raise UserError("this domain has no TFLite-convertible signature; export --format saved_model instead")
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model), signature_keys=[signature])
    try:
        flatbuffer = converter.convert()
    except Exception as err:  # the converter raises ConverterError and others, with pages of MLIR
        lines = str(err).splitlines() or [type(err).__name__]
        reason = next((line for line in lines if "ops:" in line.lower()), lines[0])
        raise UserError(
            f"TFLite cannot convert signature '{signature}': {reason.strip()}; the SavedModel export is unaffected"
        ) from None
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(flatbuffer)
    tmp.replace(path)
    return path
