"""The speech domain: spoken-word classification from WAV folders or tfds audio datasets.

Input pipeline per clip: decode -> mono -> resample -> fit to ``data.duration`` -> features
(:class:`pipelines.speech.audio.Frontend`), cached; the exported model runs the same
functions on a client's raw samples or WAV bytes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import keras
import numpy as np
import tensorflow as tf

from pipelines.core import figures
from pipelines.core.classification import ClassificationPipeline
from pipelines.core.config import Dropout, EvalConfig, Fraction, Length, OneOf, Range, Seed, Small, TrainConfig, Width
from pipelines.core.errors import UserError
from pipelines.core.files import read_bytes
from pipelines.core.names import shown
from pipelines.core.pipeline import A_FEW_STEPS, Endpoints, LabelledData, path_or_tfds_overrides
from pipelines.core.stages import batched, statistics_pass
from pipelines.core.tracking import TrackConfig
from pipelines.speech import audio
from pipelines.speech import data as speech_data
from pipelines.speech import models as speech_models

FEATURES = ("auto", "logmel", "mfcc", "waveform")
AUGMENTATIONS = (*speech_models.MODEL_AUGMENTATIONS, "noise", "crop")
Share = Annotated[float, Range(0, below=1)]
Milliseconds = Annotated[float, Range(1, 10_000)]  # at 1 kHz, the lowest rate: at least one sample
Bins = Annotated[int, Range(1, 1_024)]


@dataclasses.dataclass
class SpeechDataConfig:
    source: str = "auto"  # auto | folder | tfds  (auto: folder with --data PATH, else tfds speech_commands)
    path: str | None = None  # WAV folder, or tfds dataset name
    label_pattern: str = "{label}_{speaker}_{index}"  # file stems, when the WAVs are not in class subfolders
    split: str = "random"  # random | index:0-4 | speaker:NAME[,NAME]  (what goes to the test split)
    test_fraction: Fraction = 0.2  # split=random, and tfds datasets without a test split
    validation_fraction: Fraction = 0.1  # of what the test split leaves (tfds without a validation split: of train)
    validation: str = "random"  # random (validation_fraction of the rest) | speaker:NAME[,NAME] (their other clips)
    split_seed: Seed = 0
    on_bad_file: Annotated[str, OneOf("error", "skip")] = "error"  # skip: unreadable or empty WAVs
    # Hz; None = the data's most common rate (recorded in the run's config)
    sample_rate: Annotated[int, Range(audio.MIN_RATE, audio.MAX_RATE)] | None = None
    duration: Annotated[float, Range(above=0, high=600)] = 1.0  # seconds every clip is padded or cut to
    features: Annotated[str, OneOf(*FEATURES)] = "auto"  # auto: log-mel (waveform for waveform models)
    window_ms: Milliseconds = 32.0  # STFT window
    hop_ms: Milliseconds = 16.0  # STFT step
    mel_bins: Bins = 40
    mfccs: Bins = 13
    peak_normalize: bool = True  # scale every clip to peak 1 before the features (loudness is not the word)
    mean_normalize: bool = True  # subtract each clip's mean log-mel over its voiced frames (its microphone)
    cache: bool = True
    tfds_data_dir: str | None = None


@dataclasses.dataclass
class SpeechModelConfig:
    name: str = "cnn"
    width: Width = 32  # filters of the first conv stage (units / 2 for lstm, model dim / 2 for transformer)
    depth: Small = 2  # LSTM layers, Transformer blocks
    dropout: Dropout = 0.2
    augment: list[Annotated[str, OneOf(*AUGMENTATIONS)]] = dataclasses.field(
        default_factory=lambda: ["shift", "specaugment"]
    )
    shift: Share = 0.1  # time shift: up to this fraction of the clip either way
    warp_time: Share = 0.15  # warp: time stretched by up to +-15% ...
    warp_freq: Share = 0.1  # ... and the frequency axis by up to +-10%
    time_masks: Annotated[int, Range(0, 100)] = 2  # SpecAugment: masks per clip, each up to time_mask of the frames
    time_mask: Share = 0.1
    freq_masks: Annotated[int, Range(0, 100)] = 2  # ... and up to freq_mask of the bins
    freq_mask: Share = 0.15
    noise_snr_db: Annotated[list[Annotated[float, Range(-60, 120)]], Length(2)] = dataclasses.field(
        default_factory=lambda: [10.0, 30.0]
    )  # white noise, SNR drawn in range


@dataclasses.dataclass
class SpeechConfig:
    data: SpeechDataConfig = dataclasses.field(default_factory=SpeechDataConfig)
    model: SpeechModelConfig = dataclasses.field(default_factory=SpeechModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=lambda: TrainConfig(epochs=40, batch_size=64))
    eval: EvalConfig = dataclasses.field(default_factory=lambda: EvalConfig(sample_images=8))
    track: TrackConfig = dataclasses.field(default_factory=TrackConfig)


@dataclasses.dataclass
class SpeechData(LabelledData):
    frontend: audio.Frontend | None = None
    silence: Any = None  # the features of silence (what time shift fills with)
    stats_source: tf.data.Dataset | None = None  # clean training features, for the normalisation layer
    waveforms: dict = dataclasses.field(default_factory=dict)  # split -> unbatched fitted clips (audio summaries)


def frontend_for(config: SpeechConfig) -> audio.Frontend:
    """The feature extractor a (resolved) config describes; training and serving both build it here."""
    d = config.data
    return audio.Frontend(
        d.features,
        d.sample_rate,
        int(round(d.sample_rate * d.duration)),
        d.window_ms,
        d.hop_ms,
        d.mel_bins,
        d.mfccs,
        peak_normalize=d.peak_normalize,
        mean_normalize=d.mean_normalize,
    )


def add_noise(wave: tf.Tensor, snr_db: tuple, seed: tf.Tensor) -> tf.Tensor:
    """White noise at an SNR drawn from ``snr_db``, relative to the power of the clip's non-silent samples."""
    voiced = tf.cast(tf.not_equal(wave, 0.0), wave.dtype)
    power = tf.reduce_sum(wave**2) / tf.maximum(tf.reduce_sum(voiced), 1.0)
    snr = tf.random.stateless_uniform([], seed, snr_db[0], snr_db[-1])
    noise = tf.random.stateless_normal(tf.shape(wave), seed + 1) * tf.sqrt(power / 10.0 ** (snr / 10.0))
    return wave + noise


@dataclasses.dataclass(frozen=True)
class Stages:
    """The per-clip and per-batch tf.data stages, over ``(waveform, file rate, label)`` from a source."""

    frontend: audio.Frontend
    noise_snr_db: tuple

    def resampled(self, wave, file_rate, label):
        return audio.resample(wave, file_rate, self.frontend.sample_rate), label

    def fitted(self, wave, file_rate, label):
        wave, label = self.resampled(wave, file_rate, label)
        return audio.fit_length(wave, self.frontend.samples), label

    def features(self, waves, labels):
        return self.frontend(waves), labels

    def fitted_features(self, wave, file_rate, label):
        return self.features(*self.fitted(wave, file_rate, label))

    def augment_waveform(self, crop: bool, noise: bool):
        """The per-example random stage: a random crop (clips are cached uncut) and/or noise."""

        def augment(wave, label, seed):
            if crop:
                wave = audio.fit_length(wave, self.frontend.samples, offset=tf.random.stateless_uniform([], seed))
            if noise:
                wave = add_noise(wave, self.noise_snr_db, seed + 2)
            return wave, label

        return augment


class SpeechPipeline(ClassificationPipeline[SpeechConfig, SpeechData]):
    domain = "speech"
    task = "classify"
    config_class = SpeechConfig
    sources = speech_data.SOURCES
    models = speech_models.MODELS
    run_files = (*ClassificationPipeline.run_files, "samples/sample_predictions.png")
    # Half-second clips at 8 kHz; the test split: takes 0 and 1 of every word and speaker.
    example_settings = (
        *A_FEW_STEPS,
        "model.width=8",
        "eval.sample_images=4",
        "data.sample_rate=8000",
        "data.duration=0.5",
        "data.split=index:0-1",
    )

    def data_overrides(self, data_arg: str) -> list[str]:
        return path_or_tfds_overrides(data_arg, path_source="folder")

    def example_data(self, folder: Path) -> list[str]:
        """Three pitches as three "words", two "speakers", four takes each, in the FSDD file layout."""
        write_tone_words(folder)
        return ["--data", str(folder)]

    def example_inputs(self, folder: Path) -> list[str]:
        """Two WAV files: a low and a high tone."""
        paths = [folder / "low.wav", folder / "high.wav"]
        for path, pitch in zip(paths, (300.0, 2000.0)):
            write_tone(path, pitch, 0.4, np.random.default_rng(1))
        return [str(p) for p in paths]

    def check_settings(self, config: SpeechConfig) -> None:
        """Settings that are wrong whatever the data: reported before minutes of loading."""
        super().check_settings(config)
        d = config.data
        if d.mfccs > d.mel_bins:
            raise UserError(f"data.mfccs ({d.mfccs}) must be at most data.mel_bins ({d.mel_bins})")

    def resolve(self, config: SpeechConfig, native_rate: int) -> None:
        """Fill in the automatic settings, so the run's config.yaml says what was used."""
        d = config.data
        if d.features == "auto":
            d.features = "waveform" if config.model.name in speech_models.WAVEFORM_MODELS else "logmel"
        if d.features == "waveform" and config.model.augment == SpeechModelConfig().augment:
            config.model.augment = ["shift"]  # the default's SpecAugment needs spectral features
        d.sample_rate = d.sample_rate or native_rate
        if not audio.MIN_RATE <= d.sample_rate <= audio.MAX_RATE:  # a tfds dataset's rate, unchecked so far
            raise UserError(
                f"the data's sample rate is {d.sample_rate:,} Hz; set data.sample_rate between "
                f"{audio.MIN_RATE:,} and {audio.MAX_RATE:,}"
            )
        frontend = frontend_for(config)
        if d.features != "waveform" and (frontend.window < 16 or frontend.hop < 1 or frontend.frames < 4):
            raise UserError(
                f"data.duration {d.duration} s with window_ms {d.window_ms} and hop_ms {d.hop_ms} "
                f"gives {frontend.frames} frames; make the clips longer or the window shorter"
            )

    def load_data(self, config: SpeechConfig) -> SpeechData:
        d = config.data
        source = d.source if d.source != "auto" else ("folder" if d.path else "tfds")
        raw = self.sources.get(source)(d)
        self.resolve(config, raw.sample_rate)
        frontend = frontend_for(config)
        stages = Stages(frontend, tuple(config.model.noise_snr_db))
        common = dict(batch_size=config.train.batch_size, seed=config.train.seed, cache=d.cache)
        splits = {
            name: batched(ds, training=False, preprocess=stages.fitted_features, **common)
            for name, ds in raw.splits.items()
            if name != "train"
        }
        augment = set(config.model.augment)
        if augment & {"noise", "crop"}:
            # Random waveform work each epoch: cache the (resampled) clips, compute features per batch.
            splits["train"] = batched(
                raw.splits["train"],
                training=True,
                preprocess=stages.resampled if "crop" in augment else stages.fitted,
                per_example=stages.augment_waveform(crop="crop" in augment, noise="noise" in augment),
                per_batch=stages.features,
                **common,
            )
            stats_source = batched(
                raw.splits["train"], training=False, preprocess=stages.fitted_features, **{**common, "cache": False}
            )
        else:
            splits["train"] = batched(raw.splits["train"], training=True, preprocess=stages.fitted_features, **common)
            # in one process, adapting the normaliser also fills the cache that training reads
            stats_source = statistics_pass(splits["train"])
        return SpeechData(
            train=splits["train"],
            validation=splits["validation"],
            test=splits["test"],
            input_shape=frontend.output_shape,
            sizes=raw.sizes,
            source=f"{raw.name} at {d.sample_rate} Hz, {d.duration:g} s clips, {d.features}",
            fingerprint=raw.fingerprint,
            class_names=raw.class_names,
            frontend=frontend,
            silence=frontend(tf.zeros([1, frontend.samples]))[0, 0].numpy(),
            stats_source=stats_source.map(lambda x, y: x),
            waveforms={name: ds.map(lambda w, r, y: stages.fitted(w, r, y)[0]) for name, ds in raw.splits.items()},
        )

    def serving_endpoints(self, model: keras.Model, info: dict, config: SpeechConfig) -> Endpoints:
        frontend = frontend_for(config)

        def classify_audio(audio_batch):
            waves = audio.fit_length(audio_batch, frontend.samples)
            return self.classify_outputs(model(frontend(waves), training=False), info)

        def classify_wav(wav_bytes):
            waves = tf.map_fn(
                lambda b: audio.wav_to_waveform(b, frontend.sample_rate, frontend.samples),
                wav_bytes,
                fn_output_signature=tf.TensorSpec([frontend.samples], tf.float32),
            )
            return classify_audio(waves)

        return {
            # Samples at the model's rate, any length (padded or cut to data.duration like in training).
            "serving_default": (classify_audio, [tf.TensorSpec([None, None], tf.float32, name="audio")]),
            "wav_bytes": (classify_wav, [tf.TensorSpec([None], tf.string, name="wav_bytes")]),
        }

    def serving_example(self, info: dict, config: SpeechConfig) -> dict[str, np.ndarray]:
        """Two clips of data.duration at the model's rate: tones of 300 and 900 Hz."""
        rate = config.data.sample_rate
        t = np.arange(int(rate * config.data.duration)) / rate
        return {"audio": np.stack([0.5 * np.sin(2 * np.pi * f * t) for f in (300.0, 900.0)]).astype(np.float32)}

    def tflite_signature(self) -> str | None:
        return "serving_default"

    def read_inputs(self, paths: list[str], model: keras.Model, config: SpeechConfig) -> np.ndarray:
        frontend = frontend_for(config)
        waves = []
        for path in paths:
            contents = tf.constant(read_bytes(path, "WAV file", "; give .wav files"))
            try:
                waves.append(audio.wav_to_waveform(contents, frontend.sample_rate, frontend.samples))
            except tf.errors.OpError as err:  # not a WAV, a rate no one records at
                raise UserError(f"cannot read WAV file {shown(path)}: {err.message.splitlines()[0]}") from None
        return frontend(tf.stack(waves)).numpy()

    def render_samples(self, inputs, y_true, probabilities, class_names) -> bytes | None:
        if len(inputs) == 0:
            return None
        titles, colors = self.sample_titles(y_true, probabilities, class_names)
        if inputs.ndim == 2:  # waveforms
            return figures.curve_grid_png(inputs, titles, colors, xlabel="sample")
        # [frames, bins] -> bins up the y axis, time along x
        return figures.heatmap_grid_png(np.transpose(inputs, (0, 2, 1)), titles, colors, xlabel="frame", ylabel="bin")

    def extra_summaries(self, writer, step, scored, *, data: SpeechData, split: str) -> None:
        """The misclassified clips as audio, to listen to beside the spectrograms."""
        answers = scored.answers
        wrong = np.flatnonzero(answers.probabilities.argmax(axis=1) != answers.y_true)[:4]
        if len(wrong) == 0 or split not in data.waveforms:
            return
        wanted = set(wrong.tolist())
        clips = {}
        for index, wave in data.waveforms[split].enumerate():
            if int(index) in wanted:
                clips[int(index)] = wave.numpy()
                if len(clips) == len(wanted):
                    break
        names = data.class_names
        predicted = answers.probabilities.argmax(axis=1)
        description = "; ".join(
            f"clip {n + 1}: #{i} true {names[answers.y_true[i]]}, predicted {names[predicted[i]]}"
            for n, i in enumerate(wrong)
        )
        waves = np.stack([clips[i] for i in wrong])[:, :, None]
        peak = max(float(np.abs(waves).max()), 1e-6)
        with writer.as_default(step=step):
            tf.summary.audio(
                "evaluation/misclassified_audio",
                np.clip(waves / peak, -1, 1),
                data.frontend.sample_rate,
                max_outputs=len(wrong),
                description=description,
            )
        writer.flush()


def write_tone(path: Path, pitch: float, seconds: float, rng, rate: int = 8000) -> None:
    """A sine of ``pitch`` Hz with a little noise, as a 16-bit WAV file: a stand-in for a spoken word."""
    t = np.arange(int(rate * seconds)) / rate
    wave = 0.5 * np.sin(2 * np.pi * pitch * t) + 0.05 * rng.standard_normal(len(t))
    path.write_bytes(tf.audio.encode_wav(tf.constant(wave[:, None], tf.float32), rate).numpy())


def write_tone_words(folder: Path, words=("low", "mid", "high"), takes: int = 4, step: float = 0.05) -> None:
    """Three "words" as tones (300, 900 and 2,000 Hz; a second "speaker" 10% higher), ``takes`` of each, 0.3 s
    and ``step`` longer each take, named in the FSDD layout (low_ann_0.wav)."""
    rng = np.random.default_rng(0)
    for label, pitch in zip(words, (300.0, 900.0, 2000.0)):
        for speaker, shift in (("ann", 1.0), ("bob", 1.1)):
            for take in range(takes):
                write_tone(folder / f"{label}_{speaker}_{take}.wav", pitch * shift, 0.3 + step * take, rng)


PIPELINE = SpeechPipeline()
