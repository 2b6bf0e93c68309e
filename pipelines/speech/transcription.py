"""The speech domain's second task: transcription (``dlapps speech train --task transcribe``).

Audio of any length -> text, with CTC. Utterances come from a manifest, an LJSpeech folder, or strings of
words joined from single-word clips (:mod:`pipelines.speech.utterances`); each becomes log-mel frames (the
speech domain's :class:`~pipelines.speech.audio.Frontend`, on the utterance's own length), batches group
utterances of similar length. The model holds its character vocabulary and decodes (greedy or beam search)
inside the graph; WER and CER come from jiwer.
"""

from __future__ import annotations

import dataclasses
import math
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import keras
import numpy as np
import tensorflow as tf

from pipelines.core import figures
from pipelines.core.callbacks import EpochSummaries
from pipelines.core.config import Dropout, Fraction, Length, OneOf, Range, Seed, Size, Small, TrainConfig, Width
from pipelines.core.errors import UserError
from pipelines.core.files import read_bytes
from pipelines.core.names import shown
from pipelines.core.pipeline import A_FEW_STEPS, Data, Endpoints, Pipeline, one_line, path_or_tfds_overrides
from pipelines.core.rundir import RunDir
from pipelines.core.stages import batched, statistics_pass, zip_listed
from pipelines.core.tracking import TrackConfig
from pipelines.speech import audio, ctc, utterances
from pipelines.speech.pipeline import Bins, Milliseconds, write_tone_words

Seconds = Annotated[float, Range(0, 60)]


@dataclasses.dataclass
class TranscribeDataConfig:
    # auto | strings | manifest | ljspeech | tfds  (auto: manifest for a .tsv/.csv file, ljspeech for a folder with
    # a metadata.csv, strings for a folder of single-word clips; with no --data, tfds spoken_digit as strings)
    source: str = "auto"
    path: str | None = None  # a file or folder, or a tfds dataset name
    tfds_data_dir: str | None = None
    tfds_transcript: str | None = None  # the tfds Text feature of the transcript (None: the dataset's target, "text")
    on_bad_file: Annotated[str, OneOf("error", "skip")] = "error"  # skip: unreadable or empty WAVs
    # manifest, ljspeech: random splits
    test_fraction: Fraction = 0.1
    validation_fraction: Fraction = 0.1
    split_seed: Seed = 0
    # strings: clips named like FSDD's 7_theo_12.wav (or one subfolder per word), which clips go to the test
    # strings (FSDD's official split: takes 0-4) and the validation ones (as speech classification splits)
    label_pattern: str = "{label}_{speaker}_{index}"
    split: str = "index:0-4"
    validation: str = "random"
    strings: Annotated[int, Range(1, 1_000_000)] = 3000  # training strings; validation and test in proportion
    words: Annotated[list[Annotated[int, Range(1, 100)]], Length(2)] = dataclasses.field(default_factory=lambda: [2, 7])
    pause: Annotated[list[Seconds], Length(2)] = dataclasses.field(default_factory=lambda: [0.05, 0.4])
    # Hz; None = the data's most common rate (recorded in the run's config)
    sample_rate: Annotated[int, Range(audio.MIN_RATE, audio.MAX_RATE)] | None = None
    window_ms: Milliseconds = 32.0  # STFT window
    hop_ms: Milliseconds = 16.0  # STFT step
    mel_bins: Bins = 40
    peak_normalize: bool = True  # every utterance scaled to peak 1 before the features
    mean_normalize: bool = True  # each utterance's mean log-mel over its voiced frames subtracted
    cache: bool = True


@dataclasses.dataclass
class TranscribeModelConfig:
    name: str = "ds2"  # ds2 | transformer
    width: Width = 32  # filters of the two convolutions
    units: Width = 128  # GRU units each way (ds2), model dimension (transformer)
    depth: Small = 2  # GRU layers, Transformer blocks
    heads: Small = 4
    dropout: Dropout = 0.1


@dataclasses.dataclass
class TranscribeEvalConfig:
    beam_width: Annotated[int, Range(1, 100)] = 1  # evaluate, predict and serving_default (1 = greedy)
    every_epochs: Size = 1  # validation WER and CER (greedy) every N epochs (0 = only at the end)
    samples: Annotated[int, Range(0, 1_000)] = 10  # worst transcripts shown in TensorBoard
    spectrograms: Annotated[int, Range(0, 64)] = 4  # log-mel images of the worst, with reference and transcript


@dataclasses.dataclass
class TranscribeConfig:
    task: str = "transcribe"
    data: TranscribeDataConfig = dataclasses.field(default_factory=TranscribeDataConfig)
    model: TranscribeModelConfig = dataclasses.field(default_factory=TranscribeModelConfig)
    train: TrainConfig = dataclasses.field(
        default_factory=lambda: TrainConfig(
            # FSDD digit strings on 2 cores: an epoch takes 60-65 s (14 took 907 s, test WER 1.80%); 12 keep the
            # default run's training under 15 minutes (benchmarks/speech_transcribe.py)
            epochs=12,
            batch_size=32,
            optimizer="adam",
            learning_rate=3e-3,
            schedule="cosine",
            warmup_epochs=1,
            early_stopping_patience=8,
        )
    )
    eval: TranscribeEvalConfig = dataclasses.field(default_factory=TranscribeEvalConfig)
    track: TrackConfig = dataclasses.field(default_factory=TrackConfig)


@dataclasses.dataclass(frozen=True)
class Features:
    """Waveforms of any length -> log-mel frames: the one definition for tf.data, ``predict`` and the SavedModel.

    A batch is padded to its longest utterance; each row's frames are computed as for that utterance alone (the
    frames past its end are silence, left out of its mean), so a transcript does not depend on its batch."""

    frontend: audio.Frontend

    def frames(self, samples):
        """Frames of utterances of ``samples`` samples (an array or a tensor; none for one shorter than a window)."""
        maximum = tf.maximum if tf.is_tensor(samples) else np.maximum
        return maximum(0, 1 + (samples - self.frontend.window) // self.frontend.hop)

    def __call__(self, waves, lengths):
        """[batch, samples] and each row's length -> ``{"features": [batch, frames, bins], "frames": [batch]}``."""
        lengths = tf.cast(lengths, tf.int32)
        waves = tf.where(tf.sequence_mask(lengths, tf.shape(waves)[1]), waves, 0.0)  # nothing past an end
        if self.frontend.peak_normalize:
            waves = waves / tf.maximum(tf.reduce_max(tf.abs(waves), axis=-1, keepdims=True), 1e-4)
        log_mel = self.frontend.log_mel(waves)
        frames = self.frames(lengths)
        present = tf.sequence_mask(frames, tf.shape(log_mel)[1])[..., None]
        log_mel = tf.where(present, log_mel, tf.math.log(audio.SILENCE_FLOOR))
        if self.frontend.mean_normalize:
            log_mel = audio.subtract_voiced_mean(log_mel)
        return {"features": log_mel, "frames": frames}

    def one(self, wave):
        """One utterance's features, unbatched."""
        found = self(wave[None], tf.shape(wave)[:1])
        return {"features": found["features"][0], "frames": found["frames"][0]}


def features_for(config: TranscribeConfig) -> Features:
    d = config.data
    frontend = audio.Frontend(
        "logmel",
        d.sample_rate,
        d.sample_rate,  # no fixed length: the frontend's own frame count is not used
        d.window_ms,
        d.hop_ms,
        d.mel_bins,
        peak_normalize=d.peak_normalize,
        mean_normalize=d.mean_normalize,
    )
    return Features(frontend)


@dataclasses.dataclass
class TranscribeData(Data):
    vocabulary: list[str] = dataclasses.field(default_factory=list)
    transcripts: dict = dataclasses.field(default_factory=dict)  # split -> references, in the split's order
    names: dict = dataclasses.field(default_factory=dict)  # split -> where each utterance comes from

    def describe(self) -> str:
        return f"{super().describe()}, {len(self.vocabulary)} characters"

    def input_summary(self) -> str:
        return f"log-mel frames of {self.input_shape[-1]} bins"

    def identity(self) -> dict:
        return {"vocabulary": self.vocabulary, **super().identity()}


def needed_steps(ids: list) -> int:
    """CTC's least number of steps for a label sequence: one per label, and a blank between repeats."""
    return len(ids) + sum(a == b for a, b in zip(ids, ids[1:]))


def check_lengths(found: utterances.Utterances, features: Features, stride: int) -> None:
    """Every utterance long enough for its transcript: CTC cannot align fewer steps than labels (its loss would
    be infinite); such an utterance is named."""
    for split in utterances.SPLITS:
        steps = ctc.steps_after(features.frames(found.samples[split]), stride)
        for n, (text, have) in enumerate(zip(found.transcripts[split], steps)):
            needed = needed_steps(list(text))
            if have < needed:
                seconds = found.samples[split][n] / found.sample_rate
                raise UserError(
                    f"{found.names[split][n]}: {seconds:.2f} s of audio is too short for its transcript "
                    f"'{text}' ({len(text)} characters need at least {needed} steps, it gives "
                    f"{int(have)}); fix or drop it, or set a shorter data.hop_ms"
                )


def by_length(boundaries: list[int], bins: int):
    """Batches of utterances of similar length (``boundaries`` in frames), each padded to its longest."""

    def batch(ds: tf.data.Dataset, batch_size: int) -> tf.data.Dataset:
        return ds.bucket_by_sequence_length(
            lambda inputs, transcript: inputs["frames"],
            bucket_boundaries=boundaries,
            bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
            padded_shapes=({"features": [None, bins], "frames": [], "index": []}, []),
            padding_values=(
                {"features": 0.0, "frames": tf.constant(0, tf.int32), "index": tf.constant(0, tf.int64)},
                "",
            ),
        )

    return batch


def frame_statistics(ds: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Each feature bin's mean and variance over the frames of a split's utterances (padding left out); the pass
    also fills the split's cache, if it has one."""
    total = squares = count = 0.0
    for inputs, _ in ds:
        present = tf.sequence_mask(inputs["frames"], tf.shape(inputs["features"])[1])
        frames = tf.boolean_mask(inputs["features"], present).numpy().astype(np.float64)
        total, squares, count = total + frames.sum(0), squares + (frames**2).sum(0), count + len(frames)
    mean = total / max(count, 1)
    return mean.astype(np.float32), np.maximum(squares / max(count, 1) - mean**2, 1e-6).astype(np.float32)


def length_boundaries(frames: np.ndarray) -> list[int]:
    """Bucket edges at the training lengths' eighths (at most 7 buckets' worth of padding waste)."""
    edges = np.unique(np.quantile(frames, np.arange(1, 8) / 8).astype(int) + 1)
    return [int(e) for e in edges if e > int(frames.min())]


class TranscribePipeline(Pipeline[TranscribeConfig, TranscribeData]):
    domain = "speech"
    task = "transcribe"
    config_class = TranscribeConfig
    sources = utterances.SOURCES
    models = ctc.MODELS
    run_files = ("samples/transcripts.tsv",)
    example_settings = (
        *A_FEW_STEPS,
        "model.width=4",
        "model.units=8",
        "model.depth=1",
        "data.split=index:0",
        "data.strings=24",
        "data.words=[2,3]",
        "eval.spectrograms=2",
        "data.mean_normalize=false",  # a tone's spectrum is its whole mean: subtracting it would leave nothing
    )

    def __init__(self):
        self.compiled = weakref.WeakKeyDictionary()  # model -> {beam width: its tf.function}

    # --- data ------------------------------------------------------------------------------------

    def data_overrides(self, data_arg: str) -> list[str]:
        return path_or_tfds_overrides(data_arg)

    def resolve_source(self, d: TranscribeDataConfig) -> str:
        if d.source != "auto":
            return d.source
        if not d.path:
            return "tfds"  # spoken_digit: FSDD's recordings, joined into strings
        path = Path(d.path)
        if path.suffix.lower() in (".tsv", ".csv", ".txt") or path.is_file():
            return "manifest"
        return "ljspeech" if (path / "metadata.csv").is_file() else "strings"

    def check_settings(self, config: TranscribeConfig) -> None:
        d = config.data
        if d.words[0] > d.words[1]:
            raise UserError(f"data.words {d.words}: the first (fewest words) must not exceed the second")
        if d.pause[0] > d.pause[1]:
            raise UserError(f"data.pause {d.pause}: the first (shortest pause) must not exceed the second")
        if config.train.monitor in ("val_wer", "val_cer") and config.eval.every_epochs != 1:
            raise UserError(
                f"train.monitor={config.train.monitor} needs validation transcripts every epoch "
                f"(eval.every_epochs=1, got {config.eval.every_epochs}); or set train.monitor=val_loss"
            )

    def metric_directions(self, config: TranscribeConfig) -> dict[str, str]:
        return {"wer": "min", "cer": "min"}

    def load_data(self, config: TranscribeConfig) -> TranscribeData:
        d = config.data
        found = self.sources.get(self.resolve_source(d))(d)
        d.sample_rate = found.sample_rate  # written into the run's config: serving takes audio at this rate
        features = features_for(config)
        if features.frontend.window < 16 or features.frontend.hop < 1:
            raise UserError(f"data.window_ms {d.window_ms} at {d.sample_rate} Hz is under 16 samples; make it longer")
        check_lengths(found, features, ctc.CONV_STRIDE)
        vocabulary = sorted(set("".join(found.transcripts["train"])))
        if config.train.steps_per_epoch is None:
            # Batches grouped by length end a pass with a partial batch per group, a number that varies from pass
            # to pass: an epoch is set to this many batches instead (the learning-rate schedule counts on it).
            config.train.steps_per_epoch = math.ceil(found.sizes["train"] / config.train.batch_size)
        frames = features.frames(found.samples["train"])
        batch = by_length(length_boundaries(frames), d.mel_bins)

        def example(wave, index, transcript):
            return {**features.one(wave), "index": index}, transcript

        splits = {
            split: batched(
                zip_listed(
                    found.waves[split],
                    tf.data.Dataset.range(found.sizes[split]),
                    tf.data.Dataset.from_tensor_slices(tf.constant(found.transcripts[split], tf.string)),
                ),
                batch_size=config.train.batch_size,
                training=split == "train",
                seed=config.train.seed,
                preprocess=example,
                cache=d.cache,
                batch_by=batch,
            )
            for split in utterances.SPLITS
        }
        return TranscribeData(
            train=splits["train"],
            validation=splits["validation"],
            test=splits["test"],
            input_shape=(None, d.mel_bins),
            sizes=found.sizes,
            source=f"{found.name} at {d.sample_rate} Hz",
            fingerprint=found.fingerprint,
            vocabulary=vocabulary,
            transcripts=found.transcripts,
            names=found.names,
        )

    # --- model -----------------------------------------------------------------------------------

    def build_model(self, config: TranscribeConfig, data: TranscribeData) -> keras.Model:
        mean, variance = frame_statistics(statistics_pass(data.train))
        return self.models.get(config.model.name)(config.model, ctc.Parts(data.vocabulary, mean, variance))

    def compile_args(self, config: TranscribeConfig, data: TranscribeData) -> dict:
        return {"jit_compile": False}  # string ops (the character lookup) cannot be XLA-compiled

    def extra_callbacks(self, config: TranscribeConfig, data: TranscribeData, run: RunDir) -> list:
        return [TranscriptionProgress(self, config, data, run)]

    # --- transcribing ----------------------------------------------------------------------------

    def transcriber(self, model: keras.Model, beam_width: int):
        """A compiled function (features, frames) -> transcripts [batch], traced once per model and decoding."""
        functions = self.compiled.setdefault(model, {})
        if beam_width not in functions:
            held = weakref.ref(model)  # the cache must not keep its key alive
            functions[beam_width] = tf.function(
                lambda features, frames: held().transcribe({"features": features, "frames": frames}, beam_width),
                reduce_retracing=True,
            )
        return functions[beam_width]

    def transcribe_split(self, model: keras.Model, ds: tf.data.Dataset, size: int, beam_width: int) -> list[str]:
        """Transcripts of a split's utterances, in the split's order (its batches group them by length)."""
        run = self.transcriber(model, beam_width)
        out = [""] * size
        for inputs, _ in ds:
            for index, text in zip(inputs["index"].numpy(), run(inputs["features"], inputs["frames"]).numpy()):
                out[int(index)] = text.decode("utf-8")
        return out

    def evaluate(
        self, model: keras.Model, data: TranscribeData, config: TranscribeConfig, run: RunDir, step: int
    ) -> dict:
        references = data.transcripts["test"]
        beam = config.eval.beam_width
        hypotheses = self.transcribe_split(model, data.test, data.sizes["test"], beam)
        greedy = hypotheses if beam == 1 else self.transcribe_split(model, data.test, data.sizes["test"], 1)
        if not model.compiled:  # loaded for evaluate: compiled only to run its test_step
            model.compile(optimizer=keras.optimizers.Adam(), **self.compile_args(config, data))
        losses = model.evaluate(data.test, verbose=0, return_dict=True)
        metrics = {
            "split": "test",
            "utterances": len(references),
            "decoding": f"beam {beam}" if beam > 1 else "greedy",
            **error_rates(references, hypotheses),
            "greedy": error_rates(references, greedy),
            "test_loss": round(float(losses["loss"]), 4),
        }
        worst = worst_first(references, hypotheses)
        names = data.names["test"]
        run.samples.mkdir(exist_ok=True)
        (run.samples / "transcripts.tsv").write_text(
            "utterance\treference\ttranscript\tcer\n"
            + "".join(
                f"{one_line(names[i])}\t{one_line(references[i])}\t{one_line(hypotheses[i])}\t{cer:.4f}\n"
                for i, cer in worst
            ),
            encoding="utf-8",
        )
        writer = tf.summary.create_file_writer(str(run.logs / "eval"))
        with writer.as_default(step=step):
            for key in ("wer", "cer"):
                tf.summary.scalar(f"evaluation/{key}", metrics[key])
            shown_rows = [i for i, _ in worst[: config.eval.samples]]
            tf.summary.text(
                "evaluation/worst_transcripts", transcripts_table(shown_rows, names, references, hypotheses)
            )
            image = self.spectrograms(data, [i for i, _ in worst[: config.eval.spectrograms]], references, hypotheses)
            if image is not None:
                tf.summary.image("evaluation/worst_spectrograms", tf.image.decode_png(image)[None])
        writer.close()
        run.write_metrics(metrics)
        return metrics

    def spectrograms(self, data: TranscribeData, rows: list[int], references, hypotheses) -> bytes | None:
        """Log-mel images of the test utterances ``rows``, titled with reference and transcript."""
        if not rows:
            return None
        wanted, found = set(rows), {}
        for inputs, _ in data.test:
            for index, features, frames in zip(*(inputs[k].numpy() for k in ("index", "features", "frames"))):
                if int(index) in wanted:
                    found[int(index)] = features[:frames]
        longest = max(len(f) for f in found.values())
        floor = min(float(f.min()) for f in found.values())
        maps = np.stack([np.pad(found[i], [[0, longest - len(found[i])], [0, 0]], constant_values=floor) for i in rows])
        titles = [f"{references[i][:40]}\n-> {hypotheses[i][:40]}" for i in rows]
        colors = ["green" if references[i] == hypotheses[i] else "red" for i in rows]
        return figures.heatmap_grid_png(np.transpose(maps, (0, 2, 1)), titles, colors, columns=2, xlabel="frame")

    def headline(self, metrics: dict) -> str:
        g = metrics["greedy"]
        return (
            f"WER {metrics['wer']:.2%}, CER {metrics['cer']:.2%} ({metrics['decoding']}; greedy: WER {g['wer']:.2%}, "
            f"CER {g['cer']:.2%}) on {metrics['utterances']} utterances"
        )

    # --- using a trained model -------------------------------------------------------------------

    def example_data(self, folder: Path) -> list[str]:
        """Three tones as three "words" ("low", "mid", "high"), two "speakers", four takes each, in FSDD's layout."""
        write_tone_words(folder)
        return ["--data", str(folder)]

    def example_inputs(self, folder: Path) -> list[str]:
        """Two WAV files: "low high" and "mid" as tones."""
        rng = np.random.default_rng(1)
        rate = 8000
        pieces = {"low": 300.0, "mid": 900.0, "high": 2000.0}
        paths = []
        for name, words in (("low_high.wav", ["low", "high"]), ("mid.wav", ["mid"])):
            gap = np.zeros(int(0.1 * rate))
            wave = [gap]
            for word in words:
                t = np.arange(int(0.35 * rate)) / rate
                wave += [0.5 * np.sin(2 * np.pi * pieces[word] * t) + 0.05 * rng.standard_normal(len(t)), gap]
            path = folder / name
            path.write_bytes(tf.audio.encode_wav(tf.constant(np.concatenate(wave)[:, None], tf.float32), rate).numpy())
            paths.append(str(path))
        return paths

    def read_waves(self, paths: list[str], rate: int) -> list[np.ndarray]:
        waves = []
        for path in paths:
            contents = tf.constant(read_bytes(path, "WAV file", "; give .wav files"))
            try:
                waves.append(audio.wav_at_rate(contents, rate).numpy())
            except tf.errors.OpError as err:  # not a WAV, a rate no one records at
                raise UserError(f"cannot read WAV file {shown(path)}: {err.message.splitlines()[0]}") from None
        return waves

    def predict_lines(
        self, inputs: list[str], model: keras.Model, info: dict, config: TranscribeConfig
    ) -> Iterator[str]:
        """One line per WAV file: its path, a tab, its transcript."""
        waves = self.read_waves(inputs, config.data.sample_rate)
        lengths = np.array([len(w) for w in waves], np.int32)
        padded = np.zeros([len(waves), max(lengths)], np.float32)
        for row, wave in zip(padded, waves):
            row[: len(wave)] = wave
        found = features_for(config)(padded, lengths)
        short = np.flatnonzero(found["frames"].numpy() < 1)
        if len(short):
            raise UserError(f"{shown(inputs[short[0]])} is shorter than one frame ({config.data.window_ms} ms)")
        run = self.transcriber(model, config.eval.beam_width)
        for path, text in zip(inputs, run(found["features"], found["frames"]).numpy()):
            yield f"{one_line(path)}\t{one_line(text.decode('utf-8'))}"

    # --- serving ---------------------------------------------------------------------------------

    def serving_endpoints(self, model: keras.Model, info: dict, config: TranscribeConfig) -> Endpoints:
        features = features_for(config)
        beam = config.eval.beam_width
        rate = config.data.sample_rate

        def transcribe_audio(audio_batch, lengths):
            return {"transcript": model.transcribe(features(audio_batch, lengths), beam)}

        def transcribe_wav(wav_bytes):
            waves = tf.map_fn(
                lambda contents: audio.wav_at_rate(contents, rate),
                wav_bytes,
                fn_output_signature=tf.RaggedTensorSpec([None], tf.float32, ragged_rank=0),
            )
            return transcribe_audio(waves.to_tensor(), tf.cast(waves.row_lengths(), tf.int32))

        return {
            # Samples at the model's rate (data.sample_rate), each row's own length in `lengths`.
            "serving_default": (
                transcribe_audio,
                [
                    tf.TensorSpec([None, None], tf.float32, name="audio"),
                    tf.TensorSpec([None], tf.int32, name="lengths"),
                ],
            ),
            "wav_bytes": (transcribe_wav, [tf.TensorSpec([None], tf.string, name="wav_bytes")]),
        }

    def serving_example(self, info: dict, config: TranscribeConfig) -> dict[str, np.ndarray]:
        """Two tones at the model's rate, of 0.8 and 0.5 s."""
        rate = config.data.sample_rate
        t = np.arange(int(rate * 0.8)) / rate
        waves = np.stack([0.5 * np.sin(2 * np.pi * f * t) for f in (300.0, 900.0)]).astype(np.float32)
        waves[1, int(rate * 0.5) :] = 0.0
        return {"audio": waves, "lengths": np.array([len(t), int(rate * 0.5)], np.int32)}


def error_rates(references: list[str], hypotheses: list[str]) -> dict:
    """Corpus word and character error rates (jiwer: edits over reference words or characters)."""
    import jiwer

    return {
        "wer": round(float(jiwer.wer(references, hypotheses)), 4),
        "cer": round(float(jiwer.cer(references, hypotheses)), 4),
    }


def worst_first(references: list[str], hypotheses: list[str]) -> list[tuple[int, float]]:
    """(utterance, its CER), the worst first."""
    import jiwer

    found = [(i, float(jiwer.cer(r, h))) for i, (r, h) in enumerate(zip(references, hypotheses))]
    return sorted(found, key=lambda item: (-item[1], item[0]))


def transcripts_table(rows: list[int], names, references, hypotheses) -> str:
    def cell(text):
        return one_line(text).replace("|", "\\|") or " "

    lines = ["| utterance | reference | transcript |", "|---|---|---|"]
    lines += [f"| {cell(names[i])} | {cell(references[i])} | {cell(hypotheses[i])} |" for i in rows]
    return "\n".join(lines)


class TranscriptionProgress(EpochSummaries):
    """Every eval.every_epochs: the validation utterances transcribed greedily, their WER and CER added to the
    epoch's logs (val_wer, val_cer: TensorBoard, early stopping and best.keras see them) and a few shown."""

    def __init__(self, pipeline: TranscribePipeline, config: TranscribeConfig, data: TranscribeData, run: RunDir):
        super().__init__(run.logs / "validation", config.eval.every_epochs)
        self.pipeline, self.config, self.data = pipeline, config, data

    def summarise(self, step: int, logs: dict) -> None:
        references = self.data.transcripts["validation"]
        hypotheses = self.pipeline.transcribe_split(
            self.model, self.data.validation, self.data.sizes["validation"], beam_width=1
        )
        found = error_rates(references, hypotheses)
        logs.update(val_wer=found["wer"], val_cer=found["cer"])
        rows = [i for i, _ in worst_first(references, hypotheses)[: self.config.eval.samples]]
        with self.writer.as_default(step=step):
            tf.summary.text(
                "transcripts/validation", transcripts_table(rows, self.data.names["validation"], references, hypotheses)
            )


PIPELINE = TranscribePipeline()
