"""Vision data: raw image sources and the decode/fit stages shared with the serving graph.

Every source yields, per split, an unbatched ``tf.data`` of ``(uint8 image [h, w, c], label)``;
:func:`fit_image` then brings each image to the model's size and channels. The exported
SavedModel runs :func:`decode_image` and the same :func:`fit_image`, so training and serving
cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import gzip
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from pipelines.core.errors import UserError
from pipelines.core.fingerprint import digest, folder_examples
from pipelines.core.names import shown
from pipelines.core.pipeline import LabelledData
from pipelines.core.registry import Registry
from pipelines.core.stages import listed, stratified_split
from pipelines.core.tfds_splits import prepared_builder, split_slices

log = logging.getLogger(__name__)

SOURCES = Registry("vision data source")


@dataclasses.dataclass
class RawImages:
    """What a source gives: unbatched splits of ``(uint8 image, label)`` and what they hold."""

    splits: dict[str, tf.data.Dataset]
    sizes: dict[str, int]
    class_names: list[str]
    image_shape: tuple[int, int, int]  # the source's native (h, w, c); folders: the most common
    name: str
    fingerprint: str  # every split's examples (pipelines.core.fingerprint)
    sizes_vary: bool = False  # folders: images of more than one size (fitted to image_shape unless told otherwise)


# --- stages (pure tensor -> tensor; used in tf.data and in the exported graph) ------------


def decode_image(encoded: tf.Tensor) -> tf.Tensor:
    """PNG/JPEG/BMP/GIF bytes -> uint8 RGB [h, w, 3] (first frame of an animation)."""
    return tf.io.decode_image(encoded, channels=3, expand_animations=False)


def decode_bounded(encoded: tf.Tensor, max_pixels: int) -> tf.Tensor:
    """:func:`decode_image`, refusing (InvalidArgumentError) an image whose header states more than
    ``max_pixels``: predict and serving never decode what the folder source would have refused."""
    message = f"the image header states more than data.max_pixels={max_pixels:,} pixels"
    small = tf.debugging.assert_less_equal(header_pixels(encoded), tf.constant(max_pixels, tf.int64), message=message)
    with tf.control_dependencies([small]):
        return decode_image(tf.identity(encoded))


def header_pixels(encoded: tf.Tensor) -> tf.Tensor:
    """Height x width as a PNG, GIF, BMP or JPEG header states it, read without decoding (a 400 KB PNG can state
    20000 x 20000 pixels: 1.2 GB decoded); 0 for other formats (decoding decides about those)."""

    def number(start: int, length: int, big_endian: bool = False) -> tf.Tensor:
        digits = tf.cast(tf.io.decode_raw(tf.strings.substr(encoded, start, length), tf.uint8), tf.int64)
        digits = tf.reverse(digits, [0]) if big_endian else digits
        return tf.reduce_sum(digits * tf.constant([1, 1 << 8, 1 << 16, 1 << 24], tf.int64)[:length])

    def png():  # IHDR: width, height
        return number(16, 4, big_endian=True) * number(20, 4, big_endian=True)

    def gif():  # logical screen: width, height
        return number(6, 2) * number(8, 2)

    def bmp():  # width, height (a negative height: rows stored top-down)
        height = number(22, 4)
        return number(18, 4) * tf.abs(tf.where(height >= 1 << 31, height - (1 << 32), height))

    def jpeg():
        return tf.reduce_prod(tf.cast(tf.image.extract_jpeg_shape(encoded)[:2], tf.int64))

    def starts(prefix: bytes) -> tf.Tensor:
        return tf.logical_and(tf.strings.length(encoded) >= 26, tf.strings.substr(encoded, 0, len(prefix)) == prefix)

    return tf.case(
        [(starts(b"\x89PNG"), png), (starts(b"GIF8"), gif), (starts(b"BM"), bmp), (starts(b"\xff\xd8"), jpeg)],
        default=lambda: tf.constant(0, tf.int64),
    )


def fit_image(image: tf.Tensor, height: int, width: int, channels: int) -> tf.Tensor:
    """Any uint8 image -> float32 [height, width, channels] of whole numbers 0..255 (grey <-> RGB, resized).

    Rounded, so the input pipeline can cache the result as uint8 (a quarter of the memory)
    and still feed the model exactly what the serving graph computes.
    """
    image = tf.cast(image, tf.float32)
    have = image.shape[-1]
    if have == 3 and channels == 1:
        image = tf.image.rgb_to_grayscale(image)
    elif have == 1 and channels == 3:
        image = tf.image.grayscale_to_rgb(image)
    if image.shape[-3:-1] != (height, width):
        # Only when the size differs: resizing to the same size is a wasted copy.
        image = tf.image.resize(image, (height, width), antialias=True)
        image = tf.ensure_shape(image, [*image.shape[:-3], height, width, channels])
    return tf.round(tf.clip_by_value(image, 0.0, 255.0))


# --- sources --------------------------------------------------------------------------------


def split_in_memory(images: np.ndarray, labels: np.ndarray, config: Any, fractions: dict[str, float]) -> dict:
    """Stratified splits of in-memory arrays: split name -> (images, labels)."""
    parts = stratified_split(labels, fractions, seed=config.split_seed)
    return {name: (images[idx], labels[idx]) for name, idx in parts.items()}


def _from_arrays(parts: dict, class_names: list[str], name: str) -> RawImages:
    splits = {split: tf.data.Dataset.from_tensor_slices((x, y.astype(np.int64))) for split, (x, y) in parts.items()}
    sizes = {split: len(y) for split, (_, y) in parts.items()}
    any_images = next(iter(parts.values()))[0]
    return RawImages(splits, sizes, class_names, tuple(any_images.shape[1:]), name, digest(parts))


def holdout_fractions(config: Any) -> dict[str, float]:
    """Test and validation shares of the whole set (validation is taken from what test leaves)."""
    return {"test": config.test_fraction, "validation": config.validation_fraction * (1 - config.test_fraction)}


@SOURCES.register("digits")
def digits_source(config: Any) -> RawImages:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images); no download."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # 17 grey levels (0..16) -> 0..255, so served PNGs and training arrays share one scale.
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    parts = split_in_memory(images, bunch.target, config, holdout_fractions(config))
    return _from_arrays(parts, [str(c) for c in bunch.target_names], "digits (scikit-learn)")


@SOURCES.register("idx")
def idx_source(config: Any) -> RawImages:
    """MNIST-style IDX files in a folder (train-/t10k- images and labels, .gz or raw)."""
    folder = _existing_path(config.path)
    arrays = {}
    for key, stem in (
        ("x_train", "train-images-idx3-ubyte"),
        ("y_train", "train-labels-idx1-ubyte"),
        ("x_test", "t10k-images-idx3-ubyte"),
        ("y_test", "t10k-labels-idx1-ubyte"),
    ):
        arrays[key] = read_idx(_find_idx(folder, stem))
    x_train, y_train = arrays["x_train"], arrays["y_train"]
    if len(x_train) != len(y_train) or len(arrays["x_test"]) != len(arrays["y_test"]):
        raise UserError(f"IDX files in {folder} disagree: image and label counts differ")
    parts = split_in_memory(x_train[..., None], y_train, config, {"validation": config.validation_fraction})
    parts["test"] = (arrays["x_test"][..., None], arrays["y_test"])
    class_names = [str(c) for c in range(int(max(y_train.max(), arrays["y_test"].max())) + 1)]
    return _from_arrays(parts, class_names, f"IDX files in {folder}")


@SOURCES.register("folder")
def folder_source(config: Any) -> RawImages:
    """A folder with one subfolder per class of PNG/JPEG/BMP/GIF files (any size, grey or colour)."""
    root = _existing_path(config.path)
    paths, labels, class_names = _list_class_folders(root)
    paths, labels, shapes, contents = _keep_decodable(paths, labels, config, root)
    if len(set(labels)) < 2:
        raise UserError(f"{root} has usable images in only one class; a classifier needs at least two")
    (h, w), _ = Counter(s[:2] for s in shapes).most_common(1)[0]
    channels = 3 if any(s[2] >= 3 for s in shapes) else 1
    paths, labels, contents = np.array(paths), np.array(labels, dtype=np.int64), np.array(contents)
    parts = stratified_split(labels, holdout_fractions(config), seed=config.split_seed)

    def load(path, label):
        return decode_image(tf.io.read_file(path)), label

    splits = {
        name: listed(tf.data.Dataset.from_tensor_slices((paths[idx], labels[idx])), load) for name, idx in parts.items()
    }
    sizes = {name: len(idx) for name, idx in parts.items()}
    examples = {name: folder_examples(paths[idx], labels[idx], contents[idx], root) for name, idx in parts.items()}
    return RawImages(
        splits,
        sizes,
        class_names,
        (h, w, channels),
        f"image folder {shown(root)}",
        digest([class_names, examples]),
        sizes_vary=len({s[:2] for s in shapes}) > 1,
    )


@SOURCES.register("tfds")
def tfds_source(config: Any) -> RawImages:
    """Any TensorFlow Datasets image-classification dataset by name (downloads on first use)."""
    name = config.path
    builder = prepared_builder(name, config.tfds_data_dir)
    info = builder.info
    image_key, label_key = _tfds_keys(info, name)
    wanted = split_slices(info, config.validation_fraction, config.test_fraction)
    splits, sizes = {}, {}
    for split, spec in wanted.items():
        ds = builder.as_dataset(split=spec, shuffle_files=False)
        splits[split] = ds.map(lambda ex: (ex[image_key], tf.cast(ex[label_key], tf.int64)))
        sizes[split] = int(ds.cardinality())
    shape = info.features[image_key].shape
    examples = digest([info.full_name, wanted, sizes])  # a tfds version's examples are fixed: its name says them
    return RawImages(splits, sizes, list(info.features[label_key].names), tuple(shape), f"tfds {name}", examples)


# --- helpers ---------------------------------------------------------------------------------


def read_idx(path: Path) -> np.ndarray:
    """One IDX file (optionally gzipped) -> numpy array, with its header checked."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as err:
        raise UserError(f"cannot read IDX file {path}: {err}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise UserError(f"{path} is not an unsigned-byte IDX file (bad magic number)")
    dims = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims)
    if body.size != int(np.prod(shape)):
        raise UserError(f"{path} is truncated: header says {shape}, found {body.size} values")
    return body.reshape(shape)


def _find_idx(folder: Path, stem: str) -> Path:
    for candidate in (folder / f"{stem}.gz", folder / stem, folder / stem.replace("-idx", ".idx")):
        if candidate.is_file():
            return candidate
    raise UserError(f"{folder} has no {stem}[.gz]; an IDX folder needs train-/t10k- images and labels")


def as_data(raw: RawImages, splits: dict, shape: tuple, kind: type = LabelledData, **extra: Any) -> LabelledData:
    """The batched ``splits`` of ``raw`` as the training driver's data (``kind``: a subclass, with its ``extra``)."""
    return kind(
        train=splits["train"],
        validation=splits["validation"],
        test=splits["test"],
        input_shape=shape,
        sizes=raw.sizes,
        source=raw.name,
        fingerprint=raw.fingerprint,
        class_names=raw.class_names,
        **extra,
    )


def resolve_source(config: Any) -> str:
    """``data.source``, with ``auto`` made concrete: the digits without a path, IDX files or an image folder."""
    if config.source != "auto":
        return config.source
    if not config.path:
        return "digits"
    return "idx" if looks_like_idx_folder(Path(config.path)) else "folder"


def looks_like_idx_folder(path: Path) -> bool:
    return path.is_dir() and any(path.glob("train-images-idx3-ubyte*"))


def _existing_path(path: str | None) -> Path:
    if not path:
        raise UserError("this data source needs a path: --data PATH")
    folder = Path(path).expanduser()
    if not folder.exists():
        raise UserError(f"data path not found: {folder}")
    return folder


def _list_class_folders(root: Path) -> tuple[list[bytes], list[int], list[str]]:
    """Every file's path (bytes: TensorFlow refuses the surrogate escapes that stand for a name's non-UTF-8
    bytes), its label, and the class names (:func:`~pipelines.core.names.shown`)."""
    if not root.is_dir():
        raise UserError(f"{root} is not a folder; --data needs a folder with one subfolder per class")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise UserError(f"{root} has no class subfolders; put each class's images in {root}/<class name>/")
    paths, labels = [], []
    for label, folder in enumerate(class_dirs):
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        if not files:
            raise UserError(f"class folder {shown(folder)} has no images; add some or remove the folder")
        paths += [os.fsencode(p) for p in files]
        labels += [label] * len(files)
    return paths, labels, [shown(p.name) for p in class_dirs]


def _keep_decodable(paths: list[bytes], labels: list[int], config: Any, root: Path):
    """Decode every file once (in parallel, in tf.data); report or drop those that fail, and those whose header
    states more than ``data.max_pixels`` (never decoded). Also: each kept file's shape and the fingerprint of its
    bytes (the data fingerprint's part)."""
    if len(paths) > 2000:
        log.info("checking %s images in %s ...", f"{len(paths):,}", root)
    on_bad_file, oversized = config.on_bad_file, tf.constant([-1, -1, -1])

    def probe(path):
        contents = tf.io.read_file(path)
        shape = tf.cond(
            header_pixels(contents) > config.max_pixels,
            lambda: oversized,
            lambda: tf.shape(tf.io.decode_image(contents, channels=0, expand_animations=False)),
        )
        return path, shape, tf.fingerprint(contents[None])[0]

    probed = tf.data.Dataset.from_tensor_slices(paths).map(
        probe, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    found = {p: (tuple(int(v) for v in s), f.tobytes().hex()) for p, s, f in probed.ignore_errors().as_numpy_iterator()}
    too_large = [p for p, (shape, _) in found.items() if shape[0] < 0]
    if too_large and on_bad_file != "skip":
        raise UserError(
            f"{shown(too_large[0])} states more than data.max_pixels={config.max_pixels:,} pixels ({len(too_large)} "
            "such file(s)); shrink them, raise data.max_pixels, or --set data.on_bad_file=skip"
        )
    if too_large:
        log.warning("skipped %d image(s) larger than data.max_pixels: %s", len(too_large), shown(too_large[0]))
    shapes = {path: shape for path, (shape, _) in found.items() if shape[0] >= 0}
    bad = [p for p in paths if p not in found]
    if bad and on_bad_file != "skip":
        named = ", ".join(map(shown, bad[:3])) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise UserError(
            f"{len(bad)} file(s) under {root} are not readable images: {named}; "
            "remove them or --set data.on_bad_file=skip"
        )
    if bad:
        log.warning("skipped %d unreadable file(s) under %s: %s", len(bad), root, ", ".join(map(shown, bad[:10])))
    keep = [i for i, p in enumerate(paths) if p in shapes]
    if not keep:
        raise UserError(f"no readable images under {root}")
    return (
        [paths[i] for i in keep],
        [labels[i] for i in keep],
        [shapes[paths[i]] for i in keep],
        [found[paths[i]][1] for i in keep],
    )


def _tfds_keys(info, name: str) -> tuple[str, str]:
    import tensorflow_datasets as tfds

    features = info.features
    image_keys = [k for k, f in features.items() if isinstance(f, tfds.features.Image)]
    label_keys = [k for k, f in features.items() if isinstance(f, tfds.features.ClassLabel)]
    if not image_keys or not label_keys:
        raise UserError(f"tfds dataset '{name}' is not image classification (needs an Image and a ClassLabel feature)")
    return ("image" if "image" in image_keys else image_keys[0]), ("label" if "label" in label_keys else label_keys[0])
