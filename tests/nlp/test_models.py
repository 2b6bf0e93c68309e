"""Every text model: builds from adapted vectorizers, trains a step, survives empty texts, saves and loads."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipelines.core.config import apply_overrides
from pipelines.nlp import models
from pipelines.nlp.pipeline import PIPELINE, NlpConfig, balanced_class_weight
from tests.helpers import messages

ROWS = messages(64, spam_share=0.25)
TEXTS = np.array([text for _, text in ROWS], dtype=object)
LABELS = np.array([label == "spam" for label, _ in ROWS], dtype=np.int64)


def built(name: str, *overrides: str) -> keras.Model:
    config = apply_overrides(
        NlpConfig(),
        [
            f"model.name={name}",
            "model.width=8",
            "text.max_tokens=300",
            "text.char_max_tokens=300",
            "text.sequence_length=12",
            *overrides,
        ],
    )
    inputs = models.TextInputs(PIPELINE.vectorizers(config, TEXTS), 2, config.text.sequence_length)
    model = models.MODELS.get(name)(config.model, inputs)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    return model


@pytest.mark.parametrize("name", sorted(models.MODELS.describe()))
def test_model_trains_on_raw_strings_and_empty_texts_stay_finite(name, tmp_path):
    model = built(name)
    history = model.fit(tf.constant(list(TEXTS)), LABELS, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    # Empty after standardisation ("?!" loses its punctuation): all padding, yet a real probability.
    odd = tf.constant(["", "?!", "   ", "x" * 2000, "ünïcödé ✓ 中文"])
    probabilities = model.predict(odd, verbose=0)
    assert np.isfinite(probabilities).all() and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    # A batch of nothing but empty texts trains without NaN too (the Transformer's attention mask).
    loss = model.train_on_batch(tf.constant(["", "", "!!"]), np.array([0, 1, 0]))
    assert np.isfinite(loss)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", compile=False)
    np.testing.assert_allclose(loaded.predict(odd, verbose=0), model.predict(odd, verbose=0), atol=1e-5)


def test_bag_vectorizers_use_word_and_character_ngrams_adapted_on_training_text():
    model = built("bag", "text.word_ngrams=2", "text.char_ngrams=3")
    vocabularies = models.vectorizer_vocabularies(model)
    assert set(vocabularies) == {"words_tfidf", "chars_tfidf"}
    assert "free win" in vocabularies["words_tfidf"] or any(" " in t for t in vocabularies["words_tfidf"])
    assert "£" in vocabularies["chars_tfidf"]  # characters keep their symbols
    vectors, tokens = models.learned_embeddings(model)
    assert len(vectors) == len(tokens) and "[UNK]" not in tokens


def test_sequence_models_embed_tokens_for_the_projector():
    model = built("lstm")
    vectors, tokens = models.learned_embeddings(model)
    assert vectors.shape == (len(tokens), 8) and tokens[:2] == ["", "[UNK]"]


def test_class_weights_switch_on_for_a_rare_class():
    assert balanced_class_weight(np.array([0] * 9 + [1]), 2, "auto") == {0: 10 / 18, 1: 5.0}
    assert balanced_class_weight(np.array([0] * 7 + [1] * 3), 2, "auto") is None  # 30%: balanced enough
    assert balanced_class_weight(np.array([0] * 7 + [1] * 3), 2, "none") is None
    assert balanced_class_weight(np.array([0] * 7 + [1] * 3), 2, "balanced")[1] == pytest.approx(10 / 6)
