"""English -> Hindi translation on the Tatoeba/Anki pairs: dlapps' Transformer (the default) and LSTM with
attention against the keras-io "English-to-Spanish translation with a sequence-to-sequence Transformer"
recipe (plain Keras, on the same pairs), the same wall-clock training budget each, scored alike.

    python benchmarks/nlp_translation.py                  # 8 minutes of training each
    python benchmarks/nlp_translation.py --minutes 2

Data: ../shared/datasets/anki_hin_eng/hin.txt in file order; the last 10% is the test split and the
10% before it the validation split (the file is sorted by length: the test sentences are the
longest). Every system's test translations are scored by sacrebleu against the raw Hindi
references (corpus BLEU, default 13a tokenisation, and chrF). Also: the exported SavedModel's
median latency for one sentence, greedy and beam 4. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import re
import string
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import SHARED, dlapps, emit, p50_ms, require

PAIRS = SHARED / "anki_hin_eng" / "hin.txt"


def train_dlapps(runs: Path, name: str, minutes: float, settings: list[str]) -> tuple[Path, float]:
    start = time.perf_counter()
    dlapps(
        "nlp",
        "train",
        "--task",
        "translate",
        "--data",
        PAIRS,
        "--runs-dir",
        runs,
        "--name",
        name,
        "--set",
        "data.split=ordered",
        "--set",
        f"train.max_minutes={minutes}",
        *[x for s in settings for x in ("--set", s)],
    )
    return runs / "nlp" / name, time.perf_counter() - start


def figures(run: Path, seconds: float) -> dict:
    metrics = json.loads((run / "metrics.json").read_text())
    info = json.loads((run / "run.json").read_text())
    return {
        "bleu": metrics["bleu"],
        "chrf": metrics["chrf"],
        "decoding": metrics["decoding"],
        "greedy": metrics["greedy"],
        "test_token_accuracy": metrics["test_token_accuracy"],
        "epochs": info.get("epochs_done"),
        "train_seconds": info.get("train_seconds"),
        "command_seconds": round(seconds, 1),
    }


def keras_io_recipe(
    train: tuple[list, list], validation: tuple[list, list], test_sources: list[str], minutes: float
) -> tuple[list[str], dict]:
    """The recipe as published (Keras 3 version): vocabulary 15,000, 20 tokens, batch 64, embed 256, latent 2048,
    8 heads, RMSprop, greedy decoding of up to 20 tokens; trained for ``minutes``. Its custom layers are written
    with explicit masks (the recipe relies on Keras' implicit mask propagation; the arithmetic is the same)."""
    import keras
    import tensorflow as tf
    from keras import layers, ops

    from pipelines.core.callbacks import TimeLimit

    keras.utils.set_random_seed(0)
    vocab_size, sequence_length, batch_size = 15000, 20, 64
    embed_dim, latent_dim, num_heads = 256, 2048, 8
    strip_chars = (string.punctuation + "¿").replace("[", "").replace("]", "")

    def custom_standardization(input_string):
        return tf.strings.regex_replace(tf.strings.lower(input_string), f"[{re.escape(strip_chars)}]", "")

    eng_vectorization = layers.TextVectorization(
        max_tokens=vocab_size, output_mode="int", output_sequence_length=sequence_length
    )
    hin_vectorization = layers.TextVectorization(
        max_tokens=vocab_size,
        output_mode="int",
        output_sequence_length=sequence_length + 1,
        standardize=custom_standardization,
    )
    eng_vectorization.adapt(train[0])
    hin_vectorization.adapt(["[start] " + t + " [end]" for t in train[1]])

    def make_dataset(pairs):
        eng, hin = pairs
        ds = tf.data.Dataset.from_tensor_slices((list(eng), ["[start] " + t + " [end]" for t in hin])).batch(batch_size)

        def format_dataset(eng, hin):
            hin = hin_vectorization(hin)
            return {"encoder_inputs": eng_vectorization(eng), "decoder_inputs": hin[:, :-1]}, hin[:, 1:]

        return ds.map(format_dataset).cache().shuffle(2048, seed=0).prefetch(16)

    class TransformerEncoder(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.attention = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
            self.dense_proj = keras.Sequential([layers.Dense(latent_dim, activation="relu"), layers.Dense(embed_dim)])
            self.layernorm_1, self.layernorm_2 = layers.LayerNormalization(), layers.LayerNormalization()

        def call(self, inputs, padding_mask):
            attention_output = self.attention(
                query=inputs, value=inputs, key=inputs, attention_mask=padding_mask[:, None, :]
            )
            proj_input = self.layernorm_1(inputs + attention_output)
            return self.layernorm_2(proj_input + self.dense_proj(proj_input))

    class PositionalEmbedding(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.token_embeddings = layers.Embedding(vocab_size, embed_dim)
            self.position_embeddings = layers.Embedding(sequence_length, embed_dim)

        def call(self, inputs):
            positions = ops.arange(0, ops.shape(inputs)[-1], 1)
            return self.token_embeddings(inputs) + self.position_embeddings(positions)

    class TransformerDecoder(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.attention_1 = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
            self.attention_2 = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
            self.dense_proj = keras.Sequential([layers.Dense(latent_dim, activation="relu"), layers.Dense(embed_dim)])
            self.layernorm_1, self.layernorm_2, self.layernorm_3 = (layers.LayerNormalization() for _ in range(3))

        def call(self, inputs, encoder_outputs, decoder_mask, encoder_mask):
            length = ops.shape(inputs)[1]
            causal = ops.arange(length)[:, None] >= ops.arange(length)[None, :]
            self_mask = ops.logical_and(causal[None], decoder_mask[:, None, :])
            attention_output_1 = self.attention_1(query=inputs, value=inputs, key=inputs, attention_mask=self_mask)
            out_1 = self.layernorm_1(inputs + attention_output_1)
            attention_output_2 = self.attention_2(
                query=out_1,
                value=encoder_outputs,
                key=encoder_outputs,
                attention_mask=ops.logical_and(decoder_mask[:, :, None], encoder_mask[:, None, :]),
            )
            out_2 = self.layernorm_2(out_1 + attention_output_2)
            return self.layernorm_3(out_2 + self.dense_proj(out_2))

    encoder_inputs = keras.Input(shape=(None,), dtype="int64", name="encoder_inputs")
    decoder_inputs = keras.Input(shape=(None,), dtype="int64", name="decoder_inputs")
    encoder_mask, decoder_mask = ops.not_equal(encoder_inputs, 0), ops.not_equal(decoder_inputs, 0)
    encoder_outputs = TransformerEncoder()(PositionalEmbedding()(encoder_inputs), encoder_mask)
    x = TransformerDecoder()(PositionalEmbedding()(decoder_inputs), encoder_outputs, decoder_mask, encoder_mask)
    decoder_outputs = layers.Dense(vocab_size, activation="softmax")(layers.Dropout(0.5)(x))
    transformer = keras.Model({"encoder_inputs": encoder_inputs, "decoder_inputs": decoder_inputs}, decoder_outputs)
    transformer.compile(
        "rmsprop", loss=keras.losses.SparseCategoricalCrossentropy(ignore_class=0), metrics=["accuracy"]
    )
    start = time.perf_counter()
    history = transformer.fit(
        make_dataset(train),
        epochs=1000,
        validation_data=make_dataset(validation),
        callbacks=[TimeLimit(minutes)],
        verbose=0,
    )
    seconds = time.perf_counter() - start

    vocabulary = hin_vectorization.get_vocabulary()

    def decode_sequence(input_sentence):  # the recipe's greedy decoding, one sentence at a time
        tokenized_input_sentence = eng_vectorization([input_sentence])
        decoded_sentence = "[start]"
        for i in range(sequence_length):
            tokenized_target_sentence = hin_vectorization([decoded_sentence])[:, :-1]
            predictions = transformer(
                {"encoder_inputs": tokenized_input_sentence, "decoder_inputs": tokenized_target_sentence}
            )
            sampled_token = vocabulary[int(np.argmax(predictions[0, i, :]))]
            decoded_sentence += " " + sampled_token
            if sampled_token == "[end]":
                break
        return decoded_sentence

    translations = [decode_sequence(s).removeprefix("[start]").removesuffix("[end]").strip() for s in test_sources]
    return translations, {"train_seconds": round(seconds, 1), "epochs": len(history.history["loss"])}


def latency(run: Path) -> dict:
    """p50 of one sentence through the exported SavedModel, greedy and beam 4 (after warm-up)."""
    import tensorflow as tf

    dlapps("nlp", "export", run)
    model = tf.saved_model.load(str(run / "export" / "saved_model"))
    sentence = tf.constant(["I have no idea how he escaped."])
    return {
        f"{name}_p50_ms": p50_ms(
            lambda name=name: model.signatures[name](text=sentence)["translation"].numpy(), repeats=50, warmup=5
        )
        for name in ("greedy", "beam")
    }


def report(results: dict) -> None:
    """Each part's figures as soon as they exist (on stderr): a later failure loses none of them."""
    print(json.dumps(results), file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=8.0, help="training budget of each system")
    args = parser.parse_args()
    require(PAIRS)
    from pipelines.nlp import translation
    from pipelines.nlp.translation import TranslationDataConfig

    pairs = translation.pairs_source(TranslationDataConfig(path=str(PAIRS), split="ordered"))
    for side in (
        pairs.sources,
        pairs.targets,
    ):  # NFC, as dlapps reads them: every system is scored on the same references
        side.update({split: translation.normalised(texts, "NFC") for split, texts in side.items()})
    references = list(pairs.targets["test"])
    results = {"pairs": pairs.sizes}
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        run, seconds = train_dlapps(runs, "transformer", args.minutes, [])
        results["dlapps_transformer"] = figures(run, seconds)
        results["exported_latency_one_sentence"] = latency(run)
        report(results)
        lstm, seconds = train_dlapps(runs, "lstm", args.minutes, ["model.name=lstm"])
        results["dlapps_lstm"] = figures(lstm, seconds)
        report(results)
    split = {s: (list(pairs.sources[s]), list(pairs.targets[s])) for s in ("train", "validation")}
    translations, recipe = keras_io_recipe(
        split["train"], split["validation"], list(pairs.sources["test"]), args.minutes
    )
    results["keras_io_recipe"] = {
        **translation.scores(translations, references),
        **recipe,
        "examples": list(zip(list(pairs.sources["test"])[:3], translations[:3])),
    }
    emit("nlp_translation", {"minutes_each": args.minutes, **results})


if __name__ == "__main__":
    main()
