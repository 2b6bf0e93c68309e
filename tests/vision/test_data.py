import os

import numpy as np
import pytest
import tensorflow as tf

from pipelines.core.errors import UserError
from pipelines.vision import data
from pipelines.vision.pipeline import VisionDataConfig
from tests.helpers import encode, odd_image_folder, shape_image


# GIF stores palette colour, so it has no one-channel case.
@pytest.mark.parametrize(
    "fmt, channels", [(f, c) for f in ("png", "jpg", "bmp", "gif") for c in (1, 3) if (f, c) != ("gif", 1)]
)
def test_decode_then_fit_any_format_and_channels(fmt, channels):
    image = np.full((10, 14, channels), 200, np.uint8)
    decoded = data.decode_image(tf.constant(encode(image, fmt)))
    assert decoded.shape == (10, 14, 3) and decoded.dtype == tf.uint8
    for want in (1, 3):
        fitted = data.fit_image(decoded, 8, 8, want)
        assert fitted.shape == (8, 8, want) and fitted.dtype == tf.float32
        assert np.allclose(fitted.numpy(), 200, atol=3)


def test_fit_image_same_eagerly_and_inside_tf_data():
    image = tf.constant(np.random.default_rng(0).integers(0, 255, (13, 9, 3)), tf.uint8)
    eager = data.fit_image(image, 8, 8, 1).numpy()
    graph = next(iter(tf.data.Dataset.from_tensors(image).map(lambda x: data.fit_image(x, 8, 8, 1)))).numpy()
    np.testing.assert_allclose(eager, graph, rtol=1e-6)
    assert (eager == np.round(eager)).all()  # whole numbers: cacheable as uint8 without loss


def test_digits_source_is_stratified_80_20():
    raw = data.digits_source(VisionDataConfig())
    assert raw.image_shape == (8, 8, 1)
    assert sum(raw.sizes.values()) == 1797
    assert raw.sizes["test"] == pytest.approx(0.2 * 1797, abs=5)
    images, labels = next(iter(raw.splits["test"].batch(1000)))
    assert images.dtype == tf.uint8 and int(tf.reduce_max(images)) == 255
    assert np.bincount(labels.numpy()).min() >= 35


def test_folder_source_mixed_sizes_formats_channels(image_folder):
    raw = data.folder_source(VisionDataConfig(path=str(image_folder)))
    assert raw.class_names == ["hbar", "square", "vbar"]
    assert sum(raw.sizes.values()) == 36
    assert raw.image_shape[2] == 3  # some images are colour


def test_folder_source_reports_or_skips_bad_files(image_folder, tmp_path):
    folder = tmp_path / "imgs"
    for cls in ("hbar", "square"):
        (folder / cls).mkdir(parents=True)
        for f in sorted((image_folder / cls).iterdir())[:6]:
            (folder / cls / f.name).write_bytes(f.read_bytes())
    (folder / "hbar" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(UserError, match="broken.png.*data.on_bad_file=skip"):
        data.folder_source(VisionDataConfig(path=str(folder)))
    raw = data.folder_source(VisionDataConfig(path=str(folder), on_bad_file="skip"))
    assert sum(raw.sizes.values()) == 12


def test_names_that_are_not_utf8_load_every_file_and_show_as_backslash_escapes(tmp_path):
    """Issue 22: such names were a TypeError traceback; TensorFlow reads the paths as bytes now."""
    root = odd_image_folder(tmp_path, per_class=5)
    raw = data.folder_source(VisionDataConfig(path=str(root)))
    # b"caf\xe9" is a class of its own, apart from UTF-8 café, and printable
    assert raw.class_names == ["café", "caf\\xe9", "plain"]
    assert sum(raw.sizes.values()) == 15
    read = [int(label) for split in raw.splits.values() for _, label in split.as_numpy_iterator()]
    assert sorted(read) == [0] * 5 + [1] * 5 + [2] * 5
    assert data.folder_source(VisionDataConfig(path=str(root))).fingerprint == raw.fingerprint


def test_a_bad_file_whose_name_is_not_utf8_is_named_as_shown(tmp_path, caplog):
    root = odd_image_folder(tmp_path, per_class=5)
    (root / "plain" / os.fsdecode(b"broken\xfe.png")).write_bytes(b"\x89PNG not really")
    with pytest.raises(UserError) as error:
        data.folder_source(VisionDataConfig(path=str(root)))
    assert "plain/broken\\xfe.png" in str(error.value) and "data.on_bad_file=skip" in str(error.value)
    str(error.value).encode("utf-8")  # printable as it is: no surrogate escapes left
    raw = data.folder_source(VisionDataConfig(path=str(root), on_bad_file="skip"))
    assert sum(raw.sizes.values()) == 15 and "broken\\xfe.png" in caplog.text


def test_idx_source_uses_the_official_test_split(idx_folder):
    raw = data.idx_source(VisionDataConfig(path=str(idx_folder)))
    assert raw.sizes["test"] == 21 and raw.sizes["train"] + raw.sizes["validation"] == 60
    assert raw.image_shape == (12, 12, 1) and raw.class_names == ["0", "1", "2"]


def test_idx_truncated_file_is_a_user_error(idx_folder, tmp_path):
    import gzip

    raw = gzip.decompress((idx_folder / "t10k-images-idx3-ubyte.gz").read_bytes())
    (tmp_path / "cut").write_bytes(raw[:100])
    with pytest.raises(UserError, match="truncated"):
        data.read_idx(tmp_path / "cut")


def test_tfds_source_reads_a_locally_built_dataset(tmp_path):
    """The real tfds path (builder -> download_and_prepare -> as_dataset) on a dataset built here."""
    tfds = pytest.importorskip("tensorflow_datasets")

    class TinyShapes(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return self.dataset_info_from_configs(
                features=tfds.features.FeaturesDict(
                    {
                        "image": tfds.features.Image(shape=(12, 12, 1)),
                        "label": tfds.features.ClassLabel(names=["square", "hbar", "vbar"]),
                    }
                ),
                supervised_keys=("image", "label"),
            )

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(30, 0), "test": self._generate_examples(9, 1)}

        def _generate_examples(self, count, seed):
            rng = np.random.default_rng(seed)
            for i in range(count):
                yield i, {"image": shape_image(i % 3, 12, 1, rng), "label": i % 3}

    raw = data.tfds_source(VisionDataConfig(source="tfds", path="tiny_shapes", tfds_data_dir=str(tmp_path)))
    assert raw.class_names == ["square", "hbar", "vbar"]
    assert raw.sizes == {"train": 27, "validation": 3, "test": 9}
    images, labels = next(iter(raw.splits["test"].batch(9)))
    assert tuple(images.shape) == (9, 12, 12, 1) and np.bincount(labels.numpy()).tolist() == [3, 3, 3]


def test_unknown_tfds_name_is_a_user_error():
    with pytest.raises(UserError, match="not available"):
        data.tfds_source(VisionDataConfig(source="tfds", path="no_such_dataset_xyz"))
