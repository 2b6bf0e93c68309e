"""The NLP domain's second task: translation (``dlapps nlp train --task translate``).

Sentence pairs from a TSV file (Tatoeba/Anki ``source<TAB>target<TAB>attribution``) or a tfds
translation dataset; a Transformer encoder-decoder (or an LSTM encoder-decoder with
attention) that takes and gives raw text; corpus BLEU and chrF (sacrebleu) on the test split,
validation chrF each epoch for early stopping, sample translations in TensorBoard.
"""

from __future__ import annotations

import dataclasses
import hashlib
import unicodedata
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import keras
import numpy as np
import tensorflow as tf

from pipelines.core.callbacks import EpochSummaries
from pipelines.core.config import Dropout, OneOf, Range, Seed, Size, Small, TrainConfig, Width
from pipelines.core.errors import UserError
from pipelines.core.files import checked_file
from pipelines.core.pipeline import Data, Endpoints, Pipeline, one_line, path_or_tfds_overrides
from pipelines.core.registry import Registry
from pipelines.core.rundir import RunDir
from pipelines.core.stages import batched
from pipelines.core.tfds_splits import prepared_builder, split_slices
from pipelines.core.tracking import TrackConfig
from pipelines.nlp import seq2seq
from pipelines.nlp.data import SPLITS, table_rows

SOURCES = Registry("translation data source")
NORMAL_FORMS = ("NFC", "NFKC", "NFD", "NFKD", "none")
Share = Annotated[float, Range(above=0, below=0.5)]  # each of test and validation: training keeps the most
Column = Annotated[int, Range(0, 1_000)]
MIN_PAIRS = 10


@dataclasses.dataclass
class TranslationDataConfig:
    # auto | pairs | tfds  (auto: pairs for a file; tfds ted_hrlr_translate/pt_to_en without --data)
    source: str = "auto"
    path: str | None = None  # TSV file of pairs, or a tfds translation dataset name
    source_column: Column = 0  # 0-based: the side translated from
    target_column: Column = 1  # the side translated to (further columns, e.g. Tatoeba's attribution, are ignored)
    header: bool = False  # the first row names the columns
    delimiter: str = "tab"
    encoding: str = "utf-8"
    # random: pairs shuffled by split_seed | ordered: the file's order, the last test_fraction is the test split
    # and the validation_fraction before it the validation split (Anki files are sorted by length)
    split: Annotated[str, OneOf("random", "ordered")] = "random"
    test_fraction: Share = 0.1
    validation_fraction: Share = 0.1
    split_seed: Seed = 0
    tfds_data_dir: str | None = None


@dataclasses.dataclass
class TranslationTextConfig:
    normalize: Annotated[str, OneOf(*NORMAL_FORMS)] = "NFC"  # Unicode normal form of every text read
    lowercase_source: bool = True
    lowercase_target: bool = False  # a translation keeps its capitals
    max_tokens: Annotated[int, Range(10, 10_000_000)] = 10_000  # vocabulary of each side
    # tokens per sentence (both sides; longer ones are cut); 0 = the longest training sentence
    max_length: Annotated[int, Range(0, 10_000)] = 0


@dataclasses.dataclass
class TranslationModelConfig:
    name: str = "transformer"  # transformer | lstm
    width: Width = 128  # embedding and model dimension
    depth: Small = 2  # encoder and decoder blocks (transformer), decoder LSTM layers (lstm)
    heads: Small = 4
    dropout: Dropout = 0.3  # a small corpus: overfitting is the enemy


@dataclasses.dataclass
class TranslationEvalConfig:
    # evaluate, predict and serving_default (1 = greedy); both also in the SavedModel
    beam_size: Annotated[int, Range(1, 100)] = 4
    length_penalty: Annotated[float, Range(0, 10)] = 0.6  # beam search: scores divided by ((5 + length) / 6) ** this
    every_epochs: Size = 1  # validation BLEU/chrF (greedy) and sample translations every N epochs (0 = only at the end)
    samples: Annotated[int, Range(0, 1_000)] = 8  # translations shown in TensorBoard


@dataclasses.dataclass
class TranslationConfig:
    task: str = "translate"
    data: TranslationDataConfig = dataclasses.field(default_factory=TranslationDataConfig)
    text: TranslationTextConfig = dataclasses.field(default_factory=TranslationTextConfig)
    model: TranslationModelConfig = dataclasses.field(default_factory=TranslationModelConfig)
    train: TrainConfig = dataclasses.field(
        default_factory=lambda: TrainConfig(
            epochs=60,
            batch_size=32,
            optimizer="adamw",
            learning_rate=1e-3,
            weight_decay=1e-4,
            schedule="cosine",
            warmup_epochs=2,
            label_smoothing=0.1,
            early_stopping_patience=10,
            monitor="val_chrf",
        )
    )
    eval: TranslationEvalConfig = dataclasses.field(default_factory=TranslationEvalConfig)
    track: TrackConfig = dataclasses.field(default_factory=TrackConfig)


@dataclasses.dataclass
class Pairs:
    """What a source gives: per split, the source and target sentences (object arrays of str)."""

    sources: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    name: str

    @property
    def sizes(self) -> dict[str, int]:
        return {split: len(self.sources[split]) for split in SPLITS}


@dataclasses.dataclass
class TranslationData(Data):
    pairs: Pairs | None = None

    def describe(self) -> str:
        counts = " / ".join(f"{self.sizes[s]:,} {s}" for s in SPLITS)
        return f"{self.source}: {counts} sentence pairs"


# --- sources ------------------------------------------------------------------------------------


def normalised(texts, form: str) -> list[str]:
    return list(texts) if form == "none" else [unicodedata.normalize(form, t) for t in texts]


def split_pairs(sources: list[str], targets: list[str], config: TranslationDataConfig, name: str) -> Pairs:
    """train / validation / test by the file's order or at random (seeded)."""
    n = len(sources)
    if n - max(1, round(n * config.test_fraction)) - max(1, round(n * config.validation_fraction)) < MIN_PAIRS // 2:
        raise UserError(
            f"{name}: {n} pairs leave too few for training after the test and validation shares; "
            "add pairs or lower data.test_fraction / data.validation_fraction"
        )
    order = np.arange(n) if config.split == "ordered" else np.random.default_rng(config.split_seed).permutation(n)
    test = max(1, round(n * config.test_fraction))
    validation = max(1, round(n * config.validation_fraction))
    parts = {
        "train": order[: n - test - validation],
        "validation": order[n - test - validation : n - test],
        "test": order[n - test :],
    }
    sources, targets = np.array(sources, dtype=object), np.array(targets, dtype=object)
    return Pairs({s: sources[i] for s, i in parts.items()}, {s: targets[i] for s, i in parts.items()}, name)


@SOURCES.register("pairs")
def pairs_source(config: TranslationDataConfig) -> Pairs:
    """A TSV file of sentence pairs: source<TAB>target[<TAB>anything], columns configurable."""
    if not config.path:
        raise UserError("data.source=pairs reads a file: pass --data FILE.tsv (source<TAB>target lines)")
    path = Path(config.path)
    checked_file(path, "data file", "; pass a TSV file of source<TAB>target lines, or tfds:NAME")
    if min(config.source_column, config.target_column) < 0 or config.source_column == config.target_column:
        raise UserError(
            f"data.source_column ({config.source_column}) and data.target_column ({config.target_column}) "
            "must be two different 0-based columns"
        )
    rows = table_rows(path, config)[1 if config.header else 0 :]
    width = max(config.source_column, config.target_column) + 1
    sources, targets = [], []
    for line, row in rows:
        if len(row) < width:
            raise UserError(
                f"{path} line {line}: {len(row)} field(s) where a pair needs {width} (source<TAB>target); "
                "separate the sides with a tab, or set data.source_column/target_column"
            )
        for side, column in (("source", config.source_column), ("target", config.target_column)):
            if not row[column].strip():
                raise UserError(f"{path} line {line}: the {side} sentence is empty; fill it or remove the line")
        sources.append(row[config.source_column].strip())
        targets.append(row[config.target_column].strip())
    if len(sources) < MIN_PAIRS:
        raise UserError(
            f"{path} has {len(sources)} sentence pair(s); translation needs at least {MIN_PAIRS} "
            "(and thousands to translate well)"
        )
    return split_pairs(sources, targets, config, path.name)


@SOURCES.register("tfds")
def tfds_source(config: TranslationDataConfig) -> Pairs:
    """A tfds translation dataset by name (its supervised keys: source, target), e.g. ted_hrlr_translate/pt_to_en."""
    import tensorflow_datasets as tfds

    name = config.path or "ted_hrlr_translate/pt_to_en"
    builder = prepared_builder(name, config.tfds_data_dir)
    keys = builder.info.supervised_keys
    features = builder.info.features
    if (
        not keys
        or len(keys) != 2
        or any(getattr(features[k], "dtype", None) != tf.string for k in keys if isinstance(k, str) and k in features)
    ):
        raise UserError(
            f"tfds dataset '{name}' has no (source, target) text supervised keys; it is not a translation dataset"
        )
    sources, targets = {}, {}
    for split, spec in split_slices(builder.info, config.validation_fraction, config.test_fraction).items():
        pairs = list(tfds.as_numpy(builder.as_dataset(split=spec, as_supervised=True)))
        sources[split] = np.array([s.decode("utf-8") for s, _ in pairs], dtype=object)
        targets[split] = np.array([t.decode("utf-8") for _, t in pairs], dtype=object)
    if len(sources["train"]) < MIN_PAIRS:
        raise UserError(
            f"tfds dataset '{name}' has {len(sources['train'])} training pairs; at least {MIN_PAIRS} needed"
        )
    return Pairs(sources, targets, f"tfds:{name}")


def fingerprint(pairs: Pairs) -> str:
    digest = hashlib.sha256()
    for split in SPLITS:
        for source, target in zip(pairs.sources[split], pairs.targets[split]):
            digest.update(f"{source}\t{target}\0".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


# --- scores -------------------------------------------------------------------------------------


def scores(hypotheses: list[str], references: list[str]) -> dict:
    """Corpus BLEU (sacrebleu's default 13a tokenisation) and chrF, as sacrebleu reports them."""
    import sacrebleu

    return {
        "bleu": round(sacrebleu.corpus_bleu(hypotheses, [references]).score, 2),
        "chrf": round(sacrebleu.corpus_chrf(hypotheses, [references]).score, 2),
    }


def translations_table(sources, references, hypotheses, count: int) -> str:
    def cell(text):
        return str(text).replace("|", "\\|").replace("\n", " ")

    rows = ["| source | reference | translation |", "|---|---|---|"]
    rows += [f"| {cell(s)} | {cell(r)} | {cell(h)} |" for s, r, h in list(zip(sources, references, hypotheses))[:count]]
    return "\n".join(rows)


# --- the pipeline -------------------------------------------------------------------------------


class TranslationPipeline(Pipeline[TranslationConfig, TranslationData]):
    domain = "nlp"
    task = "translate"
    config_class = TranslationConfig
    sources = SOURCES
    models = seq2seq.MODELS
    predict_usage = '"How are you?"...'
    run_files = ("samples/translations.tsv",)
    example_settings = (
        "train.epochs=3",
        "train.batch_size=16",
        "model.width=16",
        "model.depth=1",
        "model.heads=2",
        "eval.samples=3",
    )

    def example_data(self, folder: Path) -> list[str]:
        """120 English number-word sentences and their Hindi words, in the Tatoeba/Anki layout (en<TAB>hi)."""
        words = {"one": "एक", "two": "दो", "three": "तीन", "four": "चार", "five": "पाँच", "six": "छह"}
        rng, keys, lines = np.random.default_rng(0), list(words), []
        for _ in range(120):
            said = [keys[i] for i in rng.integers(0, len(keys), rng.integers(2, 6))]
            question = bool(rng.integers(0, 2))
            english = " ".join(said).capitalize() + ("?" if question else ".")
            lines.append(f"{english}\t{' '.join(words[w] for w in said)}{'?' if question else '।'}\n")
        path = folder / "pairs.txt"
        path.write_text("".join(lines), encoding="utf-8")
        return ["--data", str(path)]

    def data_overrides(self, data_arg: str) -> list[str]:
        return path_or_tfds_overrides(data_arg)

    def check_settings(self, config: TranslationConfig) -> None:
        if config.task != self.task:
            raise UserError(f"this is a {self.task} config; choose the task with --task, not task={config.task}")
        m = config.model
        if m.width % m.heads or (m.name == "lstm" and m.width % 2):
            raise UserError(
                f"model.width ({m.width}) must be a multiple of model.heads ({m.heads}) (lstm: an even number)"
            )
        if config.train.monitor in ("val_bleu", "val_chrf") and config.eval.every_epochs != 1:
            raise UserError(
                f"train.monitor={config.train.monitor} needs the validation translations every epoch "
                f"(eval.every_epochs=1, got {config.eval.every_epochs}); or set train.monitor=val_loss"
            )

    def resolve_source(self, d: TranslationDataConfig) -> str:
        if d.source != "auto":
            return d.source
        return "pairs" if d.path else "tfds"

    def metric_directions(self, config: TranslationConfig) -> dict[str, str]:
        return {"token_accuracy": "max", "bleu": "max", "chrf": "max"}

    def load_data(self, config: TranslationConfig) -> TranslationData:
        pairs = self.sources.get(self.resolve_source(config.data))(config.data)
        pairs.sources = {
            s: np.array(normalised(v, config.text.normalize), dtype=object) for s, v in pairs.sources.items()
        }
        pairs.targets = {
            s: np.array(normalised(v, config.text.normalize), dtype=object) for s, v in pairs.targets.items()
        }
        if config.text.max_length == 0:
            # Written into the run's config.yaml, so a repeat of the run cuts the same way.
            config.text.max_length = int(np.clip(self.longest(pairs, config) + 1, 8, 256))
        splits = {
            split: batched(
                tf.data.Dataset.from_tensor_slices((pairs.sources[split], pairs.targets[split])),
                batch_size=config.train.batch_size,
                training=split == "train",
                seed=config.train.seed,
            )
            for split in SPLITS
        }
        return TranslationData(
            train=splits["train"],
            validation=splits["validation"],
            test=splits["test"],
            input_shape=(),
            sizes=pairs.sizes,
            source=pairs.name,
            fingerprint=fingerprint(pairs),
            pairs=pairs,
        )

    @staticmethod
    def longest(pairs: Pairs, config: TranslationConfig) -> int:
        """The longest training sentence of either side, in tokens."""
        lengths = [
            seq2seq.words(tf.constant(list(texts)), lowercase).row_lengths().numpy().max()
            for texts, lowercase in (
                (pairs.sources["train"], config.text.lowercase_source),
                (pairs.targets["train"], config.text.lowercase_target),
            )
        ]
        return int(max(lengths))

    def build_model(self, config: TranslationConfig, data: TranslationData) -> keras.Model:
        t, train = config.text, data.pairs
        parts = seq2seq.Parts(
            seq2seq.adapted_vocabulary(train.sources["train"], t.lowercase_source, t.max_tokens),
            seq2seq.adapted_vocabulary(train.targets["train"], t.lowercase_target, t.max_tokens),
            t.max_length,
            t.lowercase_source,
            t.lowercase_target,
            config.train.label_smoothing,
        )
        return self.models.get(config.model.name)(config.model, parts)

    def compile_args(self, config: TranslationConfig, data: TranslationData) -> dict:
        return {"jit_compile": False}  # string ops (tokenisation) cannot be XLA-compiled

    def extra_callbacks(self, config: TranslationConfig, data: TranslationData, run: RunDir) -> list:
        return [TranslationProgress(self, config, data, run)]

    # --- translating ---------------------------------------------------------------------------

    def __init__(self):
        self.compiled = weakref.WeakKeyDictionary()  # model -> {(beam size, length penalty): its tf.function}

    def translator(self, model: keras.Model, beam_size: int, length_penalty: float):
        """A compiled function text [batch] -> translation [batch], traced once per model and decoding."""
        functions = self.compiled.setdefault(model, {})
        if (beam_size, length_penalty) not in functions:
            held = weakref.ref(model)  # the cache must not keep its key alive
            functions[beam_size, length_penalty] = tf.function(
                lambda texts: held().translate(texts, beam_size, length_penalty),
                input_signature=[tf.TensorSpec([None], tf.string)],
            )
        return functions[beam_size, length_penalty]

    def translate(
        self,
        model: keras.Model,
        texts,
        config: TranslationConfig,
        beam_size: int | None = None,
        batch_size: int = 64,
    ) -> list[str]:
        beam = config.eval.beam_size if beam_size is None else beam_size
        run = self.translator(model, beam, config.eval.length_penalty)
        texts = list(texts)
        out = []
        for start in range(0, len(texts), batch_size):
            out += [t.decode("utf-8") for t in run(tf.constant(texts[start : start + batch_size], tf.string)).numpy()]
        return out

    def evaluate(
        self, model: keras.Model, data: TranslationData, config: TranslationConfig, run: RunDir, step: int
    ) -> dict:
        pairs = data.pairs
        sources, references = list(pairs.sources["test"]), list(pairs.targets["test"])
        beam = config.eval.beam_size
        hypotheses = self.translate(model, sources, config)
        greedy = hypotheses if beam == 1 else self.translate(model, sources, config, beam_size=1)
        if not model.compiled:  # loaded for evaluate: compiled only to run its test_step
            model.compile(optimizer=keras.optimizers.Adam(), **self.compile_args(config, data))
        losses = model.evaluate(data.test, verbose=0, return_dict=True)
        metrics = {
            "split": "test",
            "pairs": len(sources),
            "decoding": f"beam {beam}" if beam > 1 else "greedy",
            **scores(hypotheses, references),
            "greedy": scores(greedy, references),
            "test_loss": round(float(losses["loss"]), 4),
            "test_token_accuracy": round(float(losses["token_accuracy"]), 4),
        }
        run.samples.mkdir(exist_ok=True)
        (run.samples / "translations.tsv").write_text(
            "source\treference\ttranslation\n"
            + "".join(
                f"{one_line(s)}\t{one_line(r)}\t{one_line(h)}\n" for s, r, h in zip(sources, references, hypotheses)
            ),
            encoding="utf-8",
        )
        writer = tf.summary.create_file_writer(str(run.logs / "eval"))
        with writer.as_default(step=step):
            for key in ("bleu", "chrf"):
                tf.summary.scalar(f"evaluation/{key}", metrics[key])
            tf.summary.text("evaluation/translations", translations_table(sources, references, hypotheses, 20))
        writer.close()
        run.write_metrics(metrics)
        return metrics

    def headline(self, metrics: dict) -> str:
        g = metrics["greedy"]
        return (
            f"BLEU {metrics['bleu']:.2f}, chrF {metrics['chrf']:.2f} ({metrics['decoding']}; greedy: BLEU "
            f"{g['bleu']:.2f}, chrF {g['chrf']:.2f}) on {metrics['pairs']} sentence pairs, token accuracy "
            f"{metrics['test_token_accuracy']:.3f}"
        )

    def example_inputs(self, folder: Path) -> list[str]:
        return ["One two three.", "Six?"]

    def serving_example(self, info: dict, config: TranslationConfig) -> dict[str, np.ndarray]:
        return {"text": np.array(["How are you?", "One two three."], dtype=object)}

    def serving_endpoints(self, model: keras.Model, info: dict, config: TranslationConfig) -> Endpoints:
        beam, penalty = config.eval.beam_size, config.eval.length_penalty
        text = [tf.TensorSpec([None], tf.string, name="text")]
        return {
            "serving_default": (lambda t: {"translation": model.translate(t, beam, penalty)}, text),
            "greedy": (lambda t: {"translation": model.greedy(t)}, text),
            "beam": (lambda t: {"translation": model.beam(t, max(beam, 2), penalty)}, text),
        }

    def predict_lines(
        self, inputs: list[str], model: keras.Model, info: dict, config: TranslationConfig
    ) -> Iterator[str]:
        """One line per text: the text, a tab, its translation."""
        texts = normalised(inputs, config.text.normalize)
        for given, translation in zip(inputs, self.translate(model, texts, config)):
            yield f"{one_line(given)}\t{one_line(translation)}"


class TranslationProgress(EpochSummaries):
    """Every eval.every_epochs: the validation pairs translated greedily, their BLEU and chrF added to the epoch's
    logs (val_bleu, val_chrf: TensorBoard, early stopping and best.keras see them) and a few shown as text."""

    def __init__(self, pipeline: TranslationPipeline, config: TranslationConfig, data: TranslationData, run: RunDir):
        super().__init__(run.logs / "validation", config.eval.every_epochs)
        self.pipeline, self.config, self.data = pipeline, config, data

    def summarise(self, step: int, logs: dict) -> None:
        sources, references = self.data.pairs.sources["validation"], self.data.pairs.targets["validation"]
        hypotheses = self.pipeline.translate(self.model, sources, self.config, beam_size=1)
        found = scores(hypotheses, list(references))
        logs.update(val_bleu=found["bleu"], val_chrf=found["chrf"])
        with self.writer.as_default(step=step):
            tf.summary.text(
                "translations/validation", translations_table(sources, references, hypotheses, self.config.eval.samples)
            )


PIPELINE = TranslationPipeline()
