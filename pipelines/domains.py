"""The registration of domains: CLI name -> its tasks' pipeline modules and a one-line description.

Adding a domain is one folder under ``pipelines/`` plus one line here; the CLI verbs and the
contract tests (tests/contract/) come with it. The CLI reads this table without importing
TensorFlow, so ``dlapps --help`` stays fast; a task's module is imported only when a command of
it runs. Each module exposes ``PIPELINE``, a :class:`pipelines.core.pipeline.Pipeline`.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Domain:
    description: str
    # task name (`train --task NAME`) -> module; the first is the default. A run's config.yaml records its task
    # where the domain has several.
    tasks: dict[str, str]
    # The verb that uses a trained model: `predict` labels the inputs it is given; `sample` makes new examples.
    verb: str = "predict"

    @property
    def default_task(self) -> str:
        return next(iter(self.tasks))


DOMAINS = {
    "vision": Domain(
        "Image classification: digits, MNIST, image folders, tfds.", {"classify": "pipelines.vision.pipeline"}
    ),
    "speech": Domain(
        "Spoken-word classification from WAV files: log-mel CNN, LSTM, Transformer, raw-waveform CNN; "
        "transcription (--task transcribe): CTC models (conv + BiGRU, Transformer) from audio of any length to text.",
        {"classify": "pipelines.speech.pipeline", "transcribe": "pipelines.speech.transcription"},
    ),
    "fraud": Domain(
        "Card-fraud detection on transaction tables: simulator or CSV, time-based split, MLP, logistic, "
        "autoencoder, LSTM over card histories.",
        {"detect": "pipelines.fraud.pipeline"},
    ),
    "generative": Domain(
        "Image generation: DCGAN, class-conditional DCGAN and VAE on digits, MNIST, image folders, tfds.",
        {"generate": "pipelines.generative.pipeline"},
        verb="sample",
    ),
    "nlp": Domain(
        "Text classification from TSV/CSV, folders of .txt files or tfds: n-gram MLP, CNN, BiLSTM, Transformer; "
        "translation (--task translate): Transformer and LSTM encoder-decoders.",
        {"classify": "pipelines.nlp.pipeline", "translate": "pipelines.nlp.translation"},
    ),
    "forecast": Domain(
        "Time-series forecasting from CSV (one series or many) or statsmodels data: linear, N-BEATS-style MLP, "
        "dilated CNN, LSTM, Transformer; quantile intervals, rolling-origin backtests against naive baselines.",
        {"forecast": "pipelines.forecast.pipeline"},
    ),
}


def tasks() -> list[tuple[str, str]]:
    """Every registered (domain, task)."""
    return [(domain, task) for domain, entry in DOMAINS.items() for task in entry.tasks]
