"""Small real data built on the spot, and the settings that make a training run take seconds."""

import gzip
from pathlib import Path

import numpy as np

# A few steps of a narrow model: enough to exercise every part, not to learn much.
FAST = ["train.epochs=2", "train.steps_per_epoch=3", "train.batch_size=16", "model.width=8", "eval.sample_images=4"]


def encode(image: np.ndarray, fmt: str) -> bytes:
    import tensorflow as tf

    if fmt == "png":
        return tf.io.encode_png(image).numpy()
    if fmt == "jpg":
        return tf.io.encode_jpeg(image if image.shape[-1] in (1, 3) else image[..., :3], quality=95).numpy()
    if fmt in ("bmp", "gif"):
        from PIL import Image  # matplotlib depends on Pillow, so it is always here

        import io

        buffer = io.BytesIO()
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, format=fmt.upper())
        return buffer.getvalue()
    raise ValueError(fmt)


def shape_image(kind: int, size: int, channels: int, rng) -> np.ndarray:
    """Class 0: a bright square; class 1: a bright horizontal bar; class 2: a vertical bar."""
    image = rng.integers(0, 40, size=(size, size, channels)).astype(np.uint8)
    q = size // 4
    if kind == 0:
        image[q : 3 * q, q : 3 * q] = 230
    elif kind == 1:
        image[size // 2 - 2 : size // 2 + 2, :] = 230
    else:
        image[:, size // 2 - 2 : size // 2 + 2] = 230
    return image


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())
