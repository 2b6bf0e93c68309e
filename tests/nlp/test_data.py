"""Text sources: TSV/CSV tables (positional and named columns, bad files), folders, tfds."""

import os

import numpy as np
import pytest

from pipelines.core.errors import UserError
from pipelines.core.stages import stratified_split
from pipelines.nlp import data
from pipelines.nlp.pipeline import NlpDataConfig
from tests.helpers import messages


def table(path, **fields) -> data.RawText:
    return data.table_source(NlpDataConfig(source="table", path=str(path), **fields))


def test_tsv_label_then_text_with_stray_quotes(tmp_path):
    path = tmp_path / "sms.tsv"
    rows = messages(40) + [("ham", 'he said "ok, fine" then left'), ("spam", "")]
    path.write_text("".join(f"{label}\t{text}\n" for label, text in rows) + "\n", encoding="utf-8")
    raw = table(path)
    assert raw.class_names == ["ham", "spam"] and sum(raw.sizes.values()) == 42
    everything = set(np.concatenate(list(raw.texts.values())).tolist())
    assert 'he said "ok, fine" then left' in everything and "" in everything  # quotes kept, empty text kept


def test_test_split_is_the_plain_stratified_80_20(tmp_path):
    """The benchmark protocol ("stratified 80/20, seed 0") whatever the validation share."""
    rows = messages(50)
    path = tmp_path / "sms.tsv"
    path.write_text("".join(f"{label}\t{text}\n" for label, text in rows), encoding="utf-8")
    labels = np.array([label == "spam" for label, _ in rows]).astype(int)
    expected = sorted(rows[i][1] for i in stratified_split(labels, {"test": 0.2}, seed=0)["test"])
    for validation in (0.1, 0.3):
        assert sorted(table(path, validation_fraction=validation).texts["test"].tolist()) == expected


def test_csv_with_header_named_columns_and_quoted_newlines(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text(
        'id,review,sentiment\n1,"great, really great",pos\n2,"awful\nreally",neg\n'
        + "".join(f"{i},meh {i},{'pos' if i % 2 else 'neg'}\n" for i in range(3, 23)),
        encoding="utf-8",
    )
    raw = table(path, text_column="review", label_column="sentiment")
    texts = set(np.concatenate(list(raw.texts.values())).tolist())
    assert {"great, really great", "awful\nreally"} <= texts and raw.class_names == ["neg", "pos"]
    assert sum(raw.sizes.values()) == 22


ROWS = "".join(f"{label}\t{text}\n" for label, text in messages(12, spam_share=0.5)).encode()


@pytest.mark.parametrize(
    "content, fields, message",
    [
        (b"", {}, "has no rows"),
        (b"\n  \n\t\n", {}, "has no rows"),
        (b"label\ttext\n", {"label_column": "label", "text_column": "text"}, "a header row but no data rows"),
        (b"label\ttext\n", {}, "a header row but no data rows"),  # a title line is recognised without names
        (ROWS + b"spam\twin\tnow\n" + ROWS, {}, "line 13: 3 fields where the first row has 2"),
        (ROWS + b"spam\twin \xff\xfe now\n", {}, "line 13: bytes that are not utf-8"),
        (
            b"a,b\nham,hi\n",
            {"text_column": "message", "label_column": "b", "delimiter": "comma"},
            "no text column 'message'; columns: a, b",
        ),
        (b"ham\thi\nham\tyo\nham\tho\n", {}, "single class"),
        (b"ham\nspam\nham\n", {}, "label/text columns are 0/1"),
        (ROWS + b"\thello\n", {}, "line 13: the label is empty"),
        (
            b"text,label\n" + b"hi,ham\n" * 3 + b"win,spam\n" * 3,
            {"label_column": "label", "text_column": "0", "header": "true", "delimiter": "comma"},
            None,
        ),
        (
            b"text,label,id\n" + b"hi,ham,1\n" * 3,
            {"label_column": "5", "header": "true", "delimiter": "comma"},
            "columns are 5/0",
        ),
        (
            b"text,label\nhi,ham\n",
            {"label_column": "text", "delimiter": "comma"},
            "label and text columns are the same",
        ),
        (
            b'label,text\nham,"hi\nspam,win\n' + b"ham,yo\n" * 5,
            {"delimiter": "comma"},
            "line 2: unexpected end of data",
        ),
        (ROWS + b"odd\tone off\n", {}, "'odd' have fewer than 3 examples"),
        (ROWS, {"delimiter": "||"}, "data.delimiter must be"),
    ],
)
def test_bad_tables_name_the_problem_and_line(tmp_path, content, fields, message):
    path = tmp_path / "bad.tsv"
    path.write_bytes(content)
    if message is None:  # the good one among them
        assert sum(table(path, **fields).sizes.values()) == 6
        return
    with pytest.raises(UserError, match=message):
        table(path, **fields)


def test_header_line_bom_and_crlf_are_not_data(tmp_path):
    """A UTF-8 byte-order mark, Windows line ends and a 'label<TAB>text' title line, all in one file."""
    rows = messages(30)
    path = tmp_path / "sms.tsv"
    body = "label\ttext\r\n" + "".join(f"{label}\t{text}\r\n" for label, text in rows)
    path.write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    raw = table(path)
    assert raw.class_names == ["ham", "spam"] and sum(raw.sizes.values()) == 30
    assert not any(t.endswith("\r") for t in np.concatenate(list(raw.texts.values())))


def test_a_named_label_column_finds_the_other_of_two(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text("review,sentiment\n" + "".join(f"meh {i},{'pos' if i % 2 else 'neg'}\n" for i in range(20)))
    raw = table(path, label_column="sentiment")
    assert raw.class_names == ["neg", "pos"] and raw.texts["train"][0].startswith("meh")


def test_missing_table_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        table(tmp_path / "nope.tsv")


def write_class_folder(root, rows):
    for n, (label, text) in enumerate(rows):
        (root / label).mkdir(parents=True, exist_ok=True)
        (root / label / f"{n}.txt").write_text(text, encoding="utf-8")


def test_folder_of_class_subfolders(tmp_path):
    write_class_folder(tmp_path, messages(40, spam_share=0.5))
    raw = data.folder_source(NlpDataConfig(source="folder", path=str(tmp_path)))
    assert raw.class_names == ["ham", "spam"] and sum(raw.sizes.values()) == 40


def test_names_that_are_not_utf8_read_every_file_and_show_as_backslash_escapes(tmp_path):
    for n, (label, text) in enumerate(messages(40, spam_share=0.5)):
        folder = tmp_path / os.fsdecode(b"sp\xe4m" if label == "spam" else b"ham")
        folder.mkdir(exist_ok=True)
        (folder / os.fsdecode(b"%d\xff.txt" % n)).write_text(text, encoding="utf-8")
    (tmp_path / "späm").mkdir()  # the same name in UTF-8: another class, apart from the Latin-1 bytes
    for n in range(3):
        (tmp_path / "späm" / f"{n}.txt").write_text("win cash now", encoding="utf-8")
    raw = data.folder_source(NlpDataConfig(source="folder", path=str(tmp_path)))
    assert raw.class_names == ["ham", "sp\\xe4m", "späm"] and sum(raw.sizes.values()) == 43
    (tmp_path / "ham" / os.fsdecode(b"latin\xfe.txt")).write_bytes(b"caf\xe9")
    with pytest.raises(UserError, match=r"ham/latin\\xfe\.txt line 1: bytes that are not utf-8"):
        data.folder_source(NlpDataConfig(source="folder", path=str(tmp_path)))


def test_aclimdb_layout_uses_its_test_split_and_ignores_unsup(tmp_path):
    write_class_folder(tmp_path / "train", messages(30, spam_share=0.5))
    write_class_folder(tmp_path / "test", messages(10, spam_share=0.5, seed=1))
    write_class_folder(tmp_path / "train", [("unsup", "no label here")] * 3)
    raw = data.folder_source(NlpDataConfig(source="folder", path=str(tmp_path)))
    assert raw.class_names == ["ham", "spam"]
    assert raw.sizes["test"] == 10 and raw.sizes["train"] + raw.sizes["validation"] == 30


def test_tfds_source_reads_a_locally_built_dataset(tmp_path):
    """The real tfds path (builder -> download_and_prepare -> as_dataset) on a text dataset built here."""
    tfds = pytest.importorskip("tensorflow_datasets")

    class TinyReviews(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return self.dataset_info_from_configs(
                features=tfds.features.FeaturesDict(
                    {
                        "text": tfds.features.Text(),
                        "label": tfds.features.ClassLabel(names=["neg", "pos"]),
                    }
                ),
                supervised_keys=("text", "label"),
            )

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(20), "test": self._generate_examples(6)}

        def _generate_examples(self, count):
            for i in range(count):
                yield i, {"text": ("lovely film é" if i % 2 else "dull film"), "label": i % 2}

    raw = data.tfds_source(NlpDataConfig(source="tfds", path="tiny_reviews", tfds_data_dir=str(tmp_path)))
    assert raw.class_names == ["neg", "pos"] and raw.sizes == {"train": 18, "validation": 2, "test": 6}
    assert set(raw.texts["test"].tolist()) == {"lovely film é", "dull film"}
    assert [("lovely" in t) for t in raw.texts["test"]] == raw.labels["test"].astype(bool).tolist()


def test_tfds_test_split_without_labels_is_replaced_by_held_out_training_rows(tmp_path):
    """Like glue/sst2, whose test labels are withheld (-1)."""
    tfds = pytest.importorskip("tensorflow_datasets")

    class HiddenLabels(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return self.dataset_info_from_configs(
                features=tfds.features.FeaturesDict(
                    {
                        "sentence": tfds.features.Text(),
                        "label": tfds.features.ClassLabel(names=["neg", "pos"]),
                    }
                )
            )

        def _split_generators(self, dl_manager):
            return {
                "train": self._generate_examples(40, labelled=True),
                "validation": self._generate_examples(6, True),
                "test": self._generate_examples(6, labelled=False),
            }

        def _generate_examples(self, count, labelled):
            for i in range(count):
                yield i, {"sentence": "good" if i % 2 else "bad", "label": i % 2 if labelled else -1}

    raw = data.tfds_source(NlpDataConfig(source="tfds", path="hidden_labels", tfds_data_dir=str(tmp_path)))
    assert raw.sizes == {"train": 32, "validation": 6, "test": 8}
    assert (raw.labels["test"] >= 0).all() and set(raw.labels["test"].tolist()) == {0, 1}
