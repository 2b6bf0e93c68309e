"""Translation: tokenisation, pair files, tfds translation data, and models that learn a toy language."""

import unicodedata

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipelines.core.errors import UserError
from pipelines.core.training import precision_policy
from pipelines.nlp import seq2seq, translation
from pipelines.nlp.translation import TranslationConfig, TranslationDataConfig
from tests.helpers import toy_pairs, trains_every_network, write_pairs


def test_words_split_punctuation_and_keep_devanagari_marks():
    tokens = seq2seq.words(tf.constant(["Hello, World! It's 5pm.", "वह घर गया। ठीक है?", "  ", "Café ख़ुश"]), True)
    assert [[t.decode() for t in row] for row in tokens.to_list()] == [
        ["hello", ",", "world", "!", "it's", "5pm", "."],
        ["वह", "घर", "गया", "।", "ठीक", "है", "?"],
        [],
        ["café", "ख़ुश"],
    ]


def test_no_break_spaces_separate_words_and_are_never_tokens():
    tokens = seq2seq.words(tf.constant(["Bonjour\u00a0! Ça va\u202f? l’eau\u3000bleue"]), False)
    assert [t.decode() for t in tokens.to_list()[0]] == ["Bonjour", "!", "Ça", "va", "?", "l’eau", "bleue"]


def test_detokenized_puts_punctuation_back_against_its_word():
    tokens = tf.constant([["वह", "घर", "गया", "।", ""], ["hello", ",", "world", "!", ""], ["(", "so", ")", "", ""]])
    assert [t.decode() for t in seq2seq.detokenized(tokens).numpy()] == ["वह घर गया।", "hello, world!", "(so)"]


def test_pairs_split_in_file_order_keeps_the_last_tenth_for_test(tmp_path):
    path = tmp_path / "pairs.tsv"
    write_pairs(path, 50)
    pairs = translation.pairs_source(TranslationDataConfig(path=str(path), split="ordered"))
    sources, _ = toy_pairs(50)
    assert pairs.sizes == {"train": 40, "validation": 5, "test": 5}
    assert list(pairs.sources["test"]) == sources[45:] and list(pairs.sources["validation"]) == sources[40:45]
    shuffled = translation.pairs_source(TranslationDataConfig(path=str(path)))
    assert sorted(np.concatenate(list(shuffled.sources.values()))) == sorted(sources)
    assert list(shuffled.sources["test"]) != sources[45:]


def test_pairs_columns_choose_the_direction(tmp_path):
    path = tmp_path / "pairs.tsv"
    write_pairs(path, 20)
    pairs = translation.pairs_source(
        TranslationDataConfig(path=str(path), source_column=1, target_column=0, split="ordered")
    )
    sources, targets = toy_pairs(20)
    assert list(pairs.sources["train"]) == targets[:16] and list(pairs.targets["train"]) == sources[:16]


def test_load_data_normalises_unicode_and_sets_the_length(tmp_path):
    path = tmp_path / "pairs.tsv"
    write_pairs(path, 30)
    decomposed = unicodedata.normalize("NFD", "ख़ुश café")  # क़ख़ग़: NFC keeps them decomposed, NFD splits é
    path.write_text(path.read_text(encoding="utf-8") + f"happy coffee\t{decomposed}\n", encoding="utf-8")
    config = TranslationConfig()
    config.data = TranslationDataConfig(path=str(path), split="ordered")
    data = translation.PIPELINE.load_data(config)
    assert data.pairs.targets["test"][-1] == unicodedata.normalize("NFC", decomposed) != decomposed
    assert config.text.max_length == 8  # the longest training sentence (6 tokens) + 1, at least 8


@pytest.mark.parametrize(
    "content, fragments",
    [
        ("one\tएक\ntwo एक\n" + "three\tतीन\n" * 10, ["line 2", "1 field(s)", "tab"]),
        ("one\tएक\n \tदो\n" + "three\tतीन\n" * 10, ["line 2", "source sentence is empty"]),
        ("one\tएक\ntwo\t\n" + "three\tतीन\n" * 10, ["line 2", "target sentence is empty"]),
        ("one\tएक\n" * 9, ["9 sentence pair(s)", "at least 10"]),
    ],
)
def test_bad_pair_files_are_refused_naming_the_line(tmp_path, content, fragments):
    path = tmp_path / "pairs.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UserError) as err:
        translation.pairs_source(TranslationDataConfig(path=str(path)))
    for fragment in fragments:
        assert fragment in str(err.value)


def test_tfds_source_reads_a_locally_built_translation_dataset(tmp_path):
    """The real tfds path (builder -> download_and_prepare -> as_dataset(as_supervised)) on data built here."""
    tfds = pytest.importorskip("tensorflow_datasets")
    sources, targets = toy_pairs(30)

    class TinyTranslate(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return self.dataset_info_from_configs(
                features=tfds.features.Translation(languages=["en", "hi"]), supervised_keys=("en", "hi")
            )

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(0, 24), "test": self._generate_examples(24, 30)}

        def _generate_examples(self, start, stop):
            for i in range(start, stop):
                yield i, {"en": sources[i], "hi": targets[i]}

    pairs = translation.tfds_source(
        TranslationDataConfig(source="tfds", path="tiny_translate", tfds_data_dir=str(tmp_path))
    )
    assert pairs.sizes["test"] == 6 and pairs.sizes["train"] + pairs.sizes["validation"] == 24
    assert sorted(pairs.targets["test"]) == sorted(targets[24:])
    by_source = dict(zip(sources, targets))
    assert all(by_source[s] == t for s, t in zip(pairs.sources["train"], pairs.targets["train"]))


def toy_translator(name: str, sources: list[str], targets: list[str], width: int, mixed: bool = False):
    """A small compiled translator of ``name`` with vocabularies adapted on the given pairs, and its config."""
    keras.utils.set_random_seed(0)
    config = TranslationConfig()
    config.model.name, config.model.width, config.model.depth, config.model.heads, config.model.dropout = (
        name,
        width,
        1,
        2,
        0.0,
    )
    parts = seq2seq.Parts(
        seq2seq.adapted_vocabulary(sources, True, 100), seq2seq.adapted_vocabulary(targets, False, 100), 8
    )
    with precision_policy(mixed):
        model = seq2seq.MODELS.get(name)(config.model, parts)
        model.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=False)
    return model, config


def trained_toy_model(name: str, epochs: int):
    sources, targets = toy_pairs(350)
    model, config = toy_translator(name, sources[:300], targets[:300], width=32)
    model.fit(tf.data.Dataset.from_tensor_slices((sources[:300], targets[:300])).batch(32), epochs=epochs, verbose=0)
    return model, config, sources[300:], targets[300:]


@pytest.mark.parametrize("name, epochs, least_chrf", [("transformer", 25, 85), ("lstm", 25, 85)])
def test_models_learn_a_toy_language_and_beam_of_one_is_greedy(name, epochs, least_chrf):
    model, config, sources, targets = trained_toy_model(name, epochs)
    greedy = translation.PIPELINE.translate(model, sources, config, beam_size=1)
    beam = translation.PIPELINE.translate(model, sources, config, beam_size=4)
    assert translation.scores(greedy, targets)["chrf"] >= least_chrf
    assert translation.scores(beam, targets)["chrf"] >= least_chrf
    one_beam = [t.decode() for t in tf.function(lambda t: model.beam(t, 1))(tf.constant(sources)).numpy()]
    assert one_beam == greedy  # a beam of one is greedy decoding: the search's bookkeeping is right
    odd = ["", "!!!", "zebra quantum", " ".join(["one"] * 40)]  # empty, punctuation only, unknown, too long
    assert all(isinstance(t, str) for t in translation.PIPELINE.translate(model, odd, config))
    assert "[UNK]" not in " ".join(translation.PIPELINE.translate(model, odd, config))


def test_a_saved_translator_loads_and_translates_the_same(tmp_path):
    model, config, sources, _ = trained_toy_model("transformer", 2)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras", compile=False)
    assert translation.PIPELINE.translate(loaded, sources, config) == translation.PIPELINE.translate(
        model, sources, config
    )


@pytest.mark.parametrize("name", sorted(seq2seq.MODELS))
def test_every_translator_trains_both_networks_under_mixed_precision(name):
    sources, targets = toy_pairs(32)
    model, _ = toy_translator(name, sources, targets, width=16, mixed=True)
    logs = trains_every_network(model, tf.data.Dataset.from_tensor_slices((sources, targets)).batch(8))
    assert np.isfinite(logs["loss"])
