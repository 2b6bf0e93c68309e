"""The NLP domain: text classification from TSV/CSV files, folders of .txt files or tfds (the
``translate`` task lives in ``translation.py``).

The model takes raw strings: its TextVectorization layers (adapted on the training split)
run inside it, in training, evaluation, ``predict`` and the exported SavedModel alike.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Annotated

import keras
import numpy as np
import tensorflow as tf

from pipelines.core import evaluation
from pipelines.core.classification import ClassificationPipeline
from pipelines.core.config import (
    Dropout,
    EvalConfig,
    Fraction,
    NonNegative,
    OneOf,
    Range,
    Seed,
    Small,
    TrainConfig,
    Width,
)
from pipelines.core.errors import UserError
from pipelines.core.pipeline import A_FEW_STEPS, Endpoints, LabelledData, path_or_tfds_overrides
from pipelines.core.rundir import RunDir
from pipelines.core.stages import batched
from pipelines.core.tracking import TrackConfig
from pipelines.nlp import data as text_data
from pipelines.nlp import models as text_models
from pipelines.nlp import projector

STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation", "none")
TOKENS = ("word", "character")
Vocabulary = Annotated[int, Range(10, 10_000_000)]


@dataclasses.dataclass
class NlpDataConfig:
    source: str = "auto"  # auto | table | folder | tfds  (auto: from --data; tfds imdb_reviews without it)
    path: str | None = None  # TSV/CSV file, folder of class subfolders, or tfds dataset name
    # A name (header row) or 0-based position. auto: a header column named label/text, the other of two
    # columns, else 0 (label) and 1 (text); tfds: its ClassLabel and Text features.
    label_column: str = "auto"
    text_column: str = "auto"
    # auto: a header when a column is given by name, or when the first label occurs only once
    header: Annotated[str, OneOf("auto", "true", "false", fold_case=True)] = "auto"
    delimiter: str = "auto"  # auto: comma for .csv, tab otherwise | tab | comma | one character
    encoding: str = "utf-8"
    test_fraction: Fraction = 0.2  # sources without a test split
    validation_fraction: Fraction = 0.1  # of what the test split leaves
    split_seed: Seed = 0
    # auto: balanced when the rarest class has < 40% of an even share (2 classes: < 20%)
    class_weight: Annotated[str, OneOf("auto", "balanced", "none")] = "auto"
    tfds_data_dir: str | None = None


@dataclasses.dataclass
class TextConfig:
    """How texts become model input (TextVectorization settings)."""

    standardize: Annotated[str, OneOf(*STANDARDIZE)] = "lower_and_strip_punctuation"
    # for character n-grams: punctuation and symbols ('£', '!!') carry signal
    char_standardize: Annotated[str, OneOf(*STANDARDIZE)] = "lower"
    # The bag model's defaults won 5-fold cross-validation on the SMS training split (benchmarks/README.md).
    word_ngrams: Annotated[int, Range(0, 10)] = 2  # bag model: word 1..N-grams (0 = none)
    char_ngrams: Annotated[int, Range(0, 10)] = 4  # bag model: character 1..N-grams (0 = none)
    max_tokens: Vocabulary = 20_000  # vocabulary size: word n-grams (bag), tokens (sequence models)
    char_max_tokens: Vocabulary = 30_000  # vocabulary size: character n-grams (bag)
    # sequence models (cnn, lstm, transformer)
    tokens: Annotated[str, OneOf(*TOKENS)] = "word"
    # sequence models: tokens kept per text; 0 = the training texts' 95th percentile
    sequence_length: Annotated[int, Range(0, 100_000)] = 0


@dataclasses.dataclass
class NlpModelConfig:
    name: str = "bag"
    width: Width = 64  # hidden units (bag, lstm), embedding and model dim (cnn, transformer)
    # hidden layers (bag), conv blocks (cnn), LSTM layers, Transformer blocks
    depth: Annotated[int, Range(0, 1_000)] = 1
    heads: Small = 4  # transformer
    dropout: Dropout = 0.3
    input_dropout: Dropout = 0.3  # bag: dropout on the tf-idf vector
    l2: NonNegative = 0.0  # bag: L2 penalty on the hidden layer


@dataclasses.dataclass
class NlpConfig:
    task: str = "classify"
    data: NlpDataConfig = dataclasses.field(default_factory=NlpDataConfig)
    text: TextConfig = dataclasses.field(default_factory=TextConfig)
    model: NlpModelConfig = dataclasses.field(default_factory=NlpModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=lambda: TrainConfig(epochs=10, batch_size=32))
    eval: EvalConfig = dataclasses.field(default_factory=lambda: EvalConfig(decision="f1", sample_images=0))
    track: TrackConfig = dataclasses.field(default_factory=TrackConfig)


@dataclasses.dataclass
class NlpData(LabelledData):
    texts: dict = dataclasses.field(default_factory=dict)  # split -> object array of the raw texts

    def input_summary(self) -> str:
        return "raw text input"


def balanced_class_weight(labels: np.ndarray, n_classes: int, setting: str) -> dict[int, float] | None:
    """Weights n / (k * count) per class: 'balanced', or under 'auto' only when the rarest class has less than
    40% of an even share (for two classes: under 20% of the texts)."""
    counts = np.bincount(labels, minlength=n_classes)
    if setting == "none" or (setting == "auto" and counts.min() >= 0.4 * counts.sum() / n_classes):
        return None
    return {c: float(counts.sum() / (n_classes * max(count, 1))) for c, count in enumerate(counts)}


def fingerprint(raw: text_data.RawText) -> str:
    """A digest of every split's texts and labels, in order."""
    digest = hashlib.sha256()
    for split in text_data.SPLITS:
        for text in raw.texts[split]:
            digest.update(text.encode("utf-8", "surrogatepass") + b"\0")
        digest.update(raw.labels[split].astype(np.int64).tobytes())
    return digest.hexdigest()


def keras_standardize(setting: str, key: str) -> str | None:
    """A text.standardize / char_standardize setting (one of STANDARDIZE) as TextVectorization takes it."""
    return None if setting == "none" else setting


class NlpPipeline(ClassificationPipeline[NlpConfig, NlpData]):
    domain = "nlp"
    task = "classify"
    config_class = NlpConfig
    sources = text_data.SOURCES
    models = text_models.MODELS
    predict_usage = '"TEXT"...'
    # A small model with a small vocabulary.
    example_settings = (*A_FEW_STEPS, "model.width=8", "text.max_tokens=400", "text.char_max_tokens=400")

    def example_data(self, folder: Path) -> list[str]:
        """120 short messages, one in seven spam, in the SMS Spam Collection's layout (label<TAB>text)."""
        rng = np.random.default_rng(0)
        words = {
            "spam": "free win prize claim cash txt call urgent".split(),
            "ham": "see you later home ok bus".split(),
        }
        lines = []
        for i in range(120):
            label = "spam" if i % 7 == 0 else "ham"
            lines.append(f"{label}\t{' '.join(rng.choice(words[label], size=int(rng.integers(3, 9))))}\n")
        path = folder / "messages.tsv"
        path.write_text("".join(lines), encoding="utf-8")
        return ["--data", str(path)]

    def data_overrides(self, data_arg: str) -> list[str]:
        return path_or_tfds_overrides(data_arg)

    def check_settings(self, config: NlpConfig) -> None:
        """Settings that are wrong whatever the data: reported before the data is read."""
        if config.task != self.task:
            raise UserError(f"this is a {self.task} config; choose the task with --task, not task={config.task}")
        super().check_settings(config)
        t = config.text
        if config.model.name in text_models.BAG_MODELS and not (t.word_ngrams or t.char_ngrams):
            raise UserError("the bag model needs text.word_ngrams or text.char_ngrams > 0")
        if config.model.name not in text_models.BAG_MODELS and config.model.depth < 1:
            raise UserError(f"model.depth must be >= 1 for {config.model.name}, got {config.model.depth}")
        if config.model.name == "transformer" and config.model.width % config.model.heads:
            raise UserError(
                f"model.width ({config.model.width}) must be a multiple of model.heads ({config.model.heads})"
            )

    def resolve_source(self, d: NlpDataConfig) -> str:
        if d.source != "auto":
            return d.source
        if not d.path:
            return "tfds"
        return "folder" if Path(d.path).is_dir() else "table"

    def load_data(self, config: NlpConfig) -> NlpData:
        raw = self.sources.get(self.resolve_source(config.data))(config.data)
        if not any(text.strip() for text in raw.texts["train"]):
            raise UserError(f"{raw.name}: every training text is empty; check data.text_column")
        if config.model.name not in text_models.BAG_MODELS and config.text.sequence_length == 0:
            lengths = text_models.lengths_in_tokens(raw.texts["train"], self.split_mode(config))
            # Written into the run's config.yaml, so a repeat of the run pads the same way.
            config.text.sequence_length = int(np.clip(np.percentile(lengths, 95), 8, 512))
        splits = {
            split: batched(
                tf.data.Dataset.from_tensor_slices((raw.texts[split], raw.labels[split])),
                batch_size=config.train.batch_size,
                training=split == "train",
                seed=config.train.seed,
            )
            for split in text_data.SPLITS
        }
        weights = balanced_class_weight(raw.labels["train"], len(raw.class_names), config.data.class_weight)
        return NlpData(
            train=splits["train"],
            validation=splits["validation"],
            test=splits["test"],
            input_shape=(),
            sizes=raw.sizes,
            source=raw.name,
            fingerprint=fingerprint(raw),
            class_names=raw.class_names,
            class_weight=weights,
            texts=raw.texts,
        )

    @staticmethod
    def split_mode(config: NlpConfig) -> str:
        return "character" if config.text.tokens == "character" else "whitespace"

    def vectorizers(self, config: NlpConfig, train_texts: np.ndarray) -> list[keras.layers.TextVectorization]:
        """TextVectorization layers adapted on the training texts only."""
        t = config.text
        if config.model.name in text_models.BAG_MODELS:
            specs = [
                ("words", t.word_ngrams, "whitespace", t.standardize, "standardize", t.max_tokens),
                ("chars", t.char_ngrams, "character", t.char_standardize, "char_standardize", t.char_max_tokens),
            ]
            layers = [
                keras.layers.TextVectorization(
                    max_tokens=size,
                    standardize=keras_standardize(standardize, key),
                    split=split,
                    ngrams=n if n > 1 else None,
                    output_mode="tf_idf",
                    name=f"{name}_tfidf",
                )
                for name, n, split, standardize, key, size in specs
                if n > 0
            ]
        else:
            standardize = t.char_standardize if t.tokens == "character" else t.standardize
            layers = [
                keras.layers.TextVectorization(
                    max_tokens=t.max_tokens,
                    standardize=keras_standardize(standardize, "standardize"),
                    split=self.split_mode(config),
                    output_mode="int",
                    output_sequence_length=t.sequence_length,
                    name="token_ids",
                )
            ]
        texts = tf.data.Dataset.from_tensor_slices(train_texts).batch(512)
        for layer in layers:
            layer.adapt(texts)
        return layers

    def build_model(self, config: NlpConfig, data: NlpData) -> keras.Model:
        inputs = text_models.TextInputs(
            self.vectorizers(config, data.texts["train"]), len(data.class_names), config.text.sequence_length
        )
        return self.models.get(config.model.name)(config.model, inputs)

    def evaluate(self, model: keras.Model, data: NlpData, config: NlpConfig, run: RunDir, step: int) -> dict:
        metrics = super().evaluate(model, data, config, run, step)
        vocabularies = run.root / "vocabulary"
        vocabularies.mkdir(exist_ok=True)
        for name, tokens in text_models.vectorizer_vocabularies(model).items():
            # Line i is token id i (tf-idf: column i); newlines and tabs in character tokens escaped.
            (vocabularies / f"{name}.txt").write_text(
                "".join(f"{projector.shown(t)}\n" for t in tokens), encoding="utf-8"
            )
        embeddings = text_models.learned_embeddings(model)
        if embeddings is not None:
            projector.write(run.logs, *embeddings)
        return metrics

    def extra_summaries(self, writer, step, scored, *, data: NlpData, split: str) -> None:
        """The worst misclassified texts (lowest probability of their true class) as a table."""
        answers, names = scored.answers, data.class_names
        decision = scored.metrics.get("decision")  # the test split is decided by the tuned threshold
        if decision:
            decision = {"positive": names.index(decision["positive"]), "threshold": decision["threshold"]}
        true_probability = answers.probabilities[np.arange(len(answers.y_true)), answers.y_true]
        predicted = evaluation.decide(answers.probabilities, decision)
        worst = [i for i in np.argsort(true_probability, kind="stable") if predicted[i] != answers.y_true[i]][:10]
        texts = data.texts[split]
        rows = ["| true | predicted | p(true) | text |", "|---|---|---|---|"]
        for i in worst:
            shown = texts[i].replace("|", "\\|").replace("\n", " ")[:300]
            rows.append(f"| {names[answers.y_true[i]]} | {names[predicted[i]]} | {true_probability[i]:.3f} | {shown} |")
        with writer.as_default(step=step):
            tf.summary.text("evaluation/misclassified_text", "\n".join(rows) if worst else "no misclassified texts")
        writer.flush()

    def serving_endpoints(self, model: keras.Model, info: dict, config: NlpConfig) -> Endpoints:
        def classify(text):
            return self.classify_outputs(model(text, training=False), info)

        return {"serving_default": (classify, [tf.TensorSpec([None], tf.string, name="text")])}

    def tflite_signature(self) -> str | None:
        # Checked with TF 2.21: the converter rejects TextVectorization's string ops (StringSplitV2,
        # StringLower, StaticRegexReplace, UnicodeDecode, bincounts) as not builtin, and StringNGrams
        # is not even a Select TF op.
        raise UserError(
            "TFLite has no kernels for the text model's TextVectorization (string splitting, "
            "lowercasing, n-grams); serve the SavedModel: export --format saved_model"
        )

    def example_inputs(self, folder: Path) -> list[str]:
        return ["Free cash prize, call now", "see you at home later"]

    def serving_example(self, info: dict, config: NlpConfig) -> dict[str, np.ndarray]:
        return {"text": np.array(["Free entry! Win a cash prize now", "see you at dinner tomorrow"], dtype=object)}

    def read_inputs(self, inputs: list[str], model: keras.Model, config: NlpConfig) -> np.ndarray:
        return np.array(inputs, dtype=object)


PIPELINE = NlpPipeline()
