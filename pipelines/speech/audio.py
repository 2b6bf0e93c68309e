"""Audio stages, pure TensorFlow: WAV bytes -> waveform -> fixed length -> log-mel / MFCC.

The input pipeline and the exported SavedModel call these same functions, so what the
model saw in training is exactly what a client's WAV file becomes when served.
``tf.audio.decode_wav`` reads 16-bit PCM only; :func:`decode_wav` also reads 8/24/32-bit
PCM and 32/64-bit float WAVs, any channel count, in graph mode.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE
SILENCE_FLOOR = 1e-6  # added to mel power before the log: silence is log(1e-6), not -inf


# --- decoding -------------------------------------------------------------------------------


def _uint_le(contents: tf.Tensor, offset, length: int) -> tf.Tensor:
    """Unsigned little-endian integer of ``length`` bytes at ``offset`` (int64)."""
    raw = tf.cast(tf.io.decode_raw(tf.strings.substr(contents, offset, length), tf.uint8), tf.int64)
    return tf.reduce_sum(raw * tf.constant([256**i for i in range(length)], tf.int64)[: tf.shape(raw)[0]])


def _find_chunks(contents: tf.Tensor, size: tf.Tensor):
    """Walk the RIFF chunks: (offset of the 'fmt ' body, offset and length of the 'data' body)."""

    def more(offset, fmt_at, data_at, data_len):
        return tf.logical_and(offset + 8 <= size, tf.logical_or(fmt_at < 0, data_at < 0))

    def step(offset, fmt_at, data_at, data_len):
        chunk_id = tf.strings.substr(contents, offset, 4)
        chunk_len = _uint_le(contents, offset + 4, 4)
        body = offset + 8
        fmt_at = tf.where(tf.equal(chunk_id, "fmt "), body, fmt_at)
        is_data = tf.equal(chunk_id, "data")
        data_at = tf.where(is_data, body, data_at)
        data_len = tf.where(is_data, chunk_len, data_len)
        return body + chunk_len + chunk_len % 2, fmt_at, data_at, data_len  # chunks are word-aligned

    minus_one = tf.constant(-1, tf.int64)
    _, fmt_at, data_at, data_len = tf.while_loop(
        more, step, (tf.constant(12, tf.int64), minus_one, minus_one, minus_one)
    )
    return fmt_at, data_at, data_len


def decode_wav(contents: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """WAV file bytes -> (float32 [samples, channels] in [-1, 1], int64 sample rate).

    Raises ``InvalidArgumentError`` (in graph or eager) for anything that is not a readable
    WAV. A truncated data chunk is read as far as it goes, as most players do.
    """
    size = tf.cast(tf.strings.length(contents), tf.int64)
    # Zero bytes past the end keep every header read in range: a short or truncated header then
    # fails the checks below with their message. The audio itself is read within ``size`` only.
    contents = contents + "\0" * 48
    is_wave = tf.logical_and(
        tf.equal(tf.strings.substr(contents, 0, 4), "RIFF"), tf.equal(tf.strings.substr(contents, 8, 4), "WAVE")
    )
    with tf.control_dependencies([tf.debugging.assert_equal(is_wave, True, message="not a RIFF/WAVE file")]):
        fmt_at, data_at, data_len = _find_chunks(contents, tf.maximum(size, 12))
    checks = [
        tf.debugging.assert_non_negative(fmt_at, message="WAV file has no 'fmt ' chunk"),
        tf.debugging.assert_non_negative(data_at, message="WAV file has no 'data' chunk"),
    ]
    with tf.control_dependencies(checks):
        fmt_code = _uint_le(contents, fmt_at, 2)
        channels = _uint_le(contents, fmt_at + 2, 2)
        rate = _uint_le(contents, fmt_at + 4, 4)
        bits = _uint_le(contents, fmt_at + 14, 2)
    # WAVE_FORMAT_EXTENSIBLE keeps the real format code in the first two bytes of its GUID.
    fmt_code = tf.cond(tf.equal(fmt_code, _EXTENSIBLE), lambda: _uint_le(contents, fmt_at + 24, 2), lambda: fmt_code)
    width = bits // 8
    frame = tf.maximum(width * channels, 1)
    usable = tf.minimum(data_len, tf.maximum(size - data_at, 0))
    data = tf.strings.substr(contents, data_at, usable - usable % frame)
    # Branch index: 0 u8, 1 s16, 2 s24, 3 s32, 4 f32, 5 f64, 6 unsupported.
    kind = tf.case(
        [
            (tf.logical_and(tf.equal(fmt_code, _PCM), tf.equal(bits, 8)), lambda: 0),
            (tf.logical_and(tf.equal(fmt_code, _PCM), tf.equal(bits, 16)), lambda: 1),
            (tf.logical_and(tf.equal(fmt_code, _PCM), tf.equal(bits, 24)), lambda: 2),
            (tf.logical_and(tf.equal(fmt_code, _PCM), tf.equal(bits, 32)), lambda: 3),
            (tf.logical_and(tf.equal(fmt_code, _FLOAT), tf.equal(bits, 32)), lambda: 4),
            (tf.logical_and(tf.equal(fmt_code, _FLOAT), tf.equal(bits, 64)), lambda: 5),
        ],
        default=lambda: 6,
    )
    checks = [
        tf.debugging.assert_less(
            kind, 6, message="unsupported WAV encoding (need 8/16/24/32-bit PCM or 32/64-bit float)"
        ),
        tf.debugging.assert_positive(channels, message="WAV header says 0 channels"),
        tf.debugging.assert_positive(rate, message="WAV header says sample rate 0"),
    ]

    def pcm24():
        b = tf.reshape(tf.cast(tf.io.decode_raw(data, tf.uint8), tf.int32), [-1, 3])
        value = b[:, 0] + b[:, 1] * 256 + b[:, 2] * 65536
        return tf.cast(tf.where(value >= 2**23, value - 2**24, value), tf.float32) / 2**23

    def empty():
        return tf.zeros([0], tf.float32)

    with tf.control_dependencies(checks):
        flat = tf.switch_case(
            tf.cast(kind, tf.int32),
            [
                lambda: (tf.cast(tf.io.decode_raw(data, tf.uint8), tf.float32) - 128.0) / 128.0,
                lambda: tf.cast(tf.io.decode_raw(data, tf.int16, little_endian=True), tf.float32) / 32768.0,
                pcm24,
                lambda: tf.cast(tf.io.decode_raw(data, tf.int32, little_endian=True), tf.float32) / 2.0**31,
                lambda: tf.io.decode_raw(data, tf.float32, little_endian=True),
                lambda: tf.cast(tf.io.decode_raw(data, tf.float64, little_endian=True), tf.float32),
                empty,
            ],
        )
    return tf.reshape(flat, [-1, tf.cast(channels, tf.int32)]), rate


# --- waveform stages ------------------------------------------------------------------------


# For tf.data maps: one trace per process, which every map that decodes WAVs calls instead of tracing the parser
# again (a third of a second each: a data set's splits are several maps). Eager callers keep decode_wav itself,
# whose errors read better outside a graph.
decode_wav_in_graph = tf.function(decode_wav, input_signature=[tf.TensorSpec([], tf.string)])


def to_mono(samples: tf.Tensor) -> tf.Tensor:
    """[samples, channels] -> [samples]: the channels' mean."""
    return tf.reduce_mean(samples, axis=-1)


def resample(wave: tf.Tensor, rate_in, rate_out: int) -> tf.Tensor:
    """Band-limited resampling of one mono clip by zero-padding or truncating its spectrum.

    The method of ``scipy.signal.resample`` (without its halving of the Nyquist bin): any pair
    of rates, one FFT each way, which is cheap at clip lengths. Like any FFT method it treats
    the clip as periodic, so the first and last few samples can ring. Clips already at
    ``rate_out`` pass through untouched.
    """
    rate_in = tf.cast(rate_in, tf.int64)
    n_in = tf.shape(wave, out_type=tf.int64)[0]
    n_out = resampled_length(n_in, rate_in, rate_out)

    def convert():
        spectrum = tf.signal.rfft(wave)
        keep = tf.minimum(n_out // 2 + 1, n_in // 2 + 1)
        spectrum = tf.pad(spectrum[:keep], [[0, n_out // 2 + 1 - keep]])
        out = tf.signal.irfft(spectrum, fft_length=tf.cast(tf.reshape(n_out, [1]), tf.int32))
        return out * tf.cast(n_out, tf.float32) / tf.cast(n_in, tf.float32)

    unchanged = tf.logical_or(tf.equal(rate_in, rate_out), tf.less(n_in, 2))
    too_short = tf.less(n_out, 2)  # nothing left to transform (an FFT of length 0 aborts the process)
    return tf.cond(unchanged, lambda: wave, lambda: tf.cond(too_short, lambda: tf.zeros([n_out], wave.dtype), convert))


def resampled_length(samples, rate_in, rate_out):
    """How many samples :func:`resample` makes of ``samples`` at ``rate_in`` (ints, arrays or tensors alike): the
    nearest whole number at ``rate_out``, so a source knows each file's length before decoding it again."""
    return (samples * rate_out + rate_in // 2) // rate_in


def fit_length(wave: tf.Tensor, length: int, offset=None) -> tf.Tensor:
    """Pad with silence or cut to ``length`` samples along the last axis.

    Short clips are centred in silence; long clips keep their middle, or start at
    ``offset`` (a fraction 0..1 of the spare length) when training crops at random.
    """
    n = tf.shape(wave)[-1]
    spare = tf.maximum(n - length, 0)
    start = spare // 2 if offset is None else tf.cast(tf.cast(spare, tf.float32) * offset, tf.int32)
    wave = wave[..., start : start + length]
    missing = length - tf.shape(wave)[-1]
    pad = [[0, 0]] * (wave.shape.rank - 1) + [[missing // 2, missing - missing // 2]]
    # A reshape, not ensure_shape, pins the static length: TFLite has no EnsureShape op.
    return tf.reshape(tf.pad(wave, pad), [-1, length] if wave.shape.rank == 2 else [length])


MIN_RATE, MAX_RATE = 1_000, 384_000  # Hz: telephone audio to studio recordings (data.sample_rate's range too)


def wav_at_rate(contents: tf.Tensor, rate: int) -> tf.Tensor:
    """Whole WAV file -> float32 [samples] mono at ``rate``, as long as the file is.

    A header stating a rate outside MIN_RATE..MAX_RATE is refused (InvalidArgumentError), as the data sources
    refuse it: resampling "1 Hz" to 16 kHz would make gigabytes of a small file.
    """
    samples, file_rate = decode_wav(contents)
    message = f"the WAV header states a sample rate outside {MIN_RATE:,}..{MAX_RATE:,} Hz"
    checks = [
        tf.debugging.assert_greater_equal(file_rate, tf.constant(MIN_RATE, file_rate.dtype), message=message),
        tf.debugging.assert_less_equal(file_rate, tf.constant(MAX_RATE, file_rate.dtype), message=message),
    ]
    with tf.control_dependencies(checks):
        return resample(to_mono(samples), tf.identity(file_rate), rate)


def wav_to_waveform(contents: tf.Tensor, rate: int, length: int) -> tf.Tensor:
    """Whole WAV file -> float32 [length] mono at ``rate``: what serving's ``wav_bytes`` does per file."""
    return fit_length(wav_at_rate(contents, rate), length)


# --- features -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Frontend:
    """Fixed-length waveforms [batch, samples] -> model input, the one definition of the features.

    ``kind``: ``logmel`` -> [batch, frames, mels]; ``mfcc`` -> [batch, frames, mfccs];
    ``waveform`` -> the samples themselves, [batch, samples].
    """

    kind: str
    sample_rate: int
    samples: int
    window_ms: float = 32.0
    hop_ms: float = 16.0
    mel_bins: int = 40
    mfccs: int = 13
    fmin: float = 20.0
    peak_normalize: bool = False
    mean_normalize: bool = False

    @property
    def window(self) -> int:
        return int(round(self.sample_rate * self.window_ms / 1000))

    @property
    def hop(self) -> int:
        return int(round(self.sample_rate * self.hop_ms / 1000))

    @property
    def frames(self) -> int:
        return 1 + (self.samples - self.window) // self.hop

    @property
    def output_shape(self) -> tuple[int, ...]:
        if self.kind == "waveform":
            return (self.samples,)
        return (self.frames, self.mel_bins if self.kind == "logmel" else self.mfccs)

    def __call__(self, waves: tf.Tensor) -> tf.Tensor:
        if self.peak_normalize:
            # Every clip as loud as the next: a speaker's distance to the microphone stops mattering.
            waves = waves / tf.maximum(tf.reduce_max(tf.abs(waves), axis=-1, keepdims=True), 1e-4)
        if self.kind == "waveform":
            return waves
        log_mel = self.log_mel(waves)
        if self.mean_normalize:
            log_mel = subtract_voiced_mean(log_mel)
        if self.kind == "logmel":
            return log_mel
        return tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., : self.mfccs]

    def log_mel(self, waves: tf.Tensor) -> tf.Tensor:
        fft_length = 1 << (self.window - 1).bit_length()
        stft = tf.signal.stft(waves, self.window, self.hop, fft_length=fft_length, pad_end=False)
        power = tf.math.square(tf.abs(stft))
        mel = tf.tensordot(power, self.mel_matrix(fft_length), 1)
        return tf.math.log(mel + SILENCE_FLOOR)

    def mel_matrix(self, fft_length: int) -> tf.Tensor:
        return tf.signal.linear_to_mel_weight_matrix(
            num_mel_bins=self.mel_bins,
            num_spectrogram_bins=fft_length // 2 + 1,
            sample_rate=self.sample_rate,
            lower_edge_hertz=self.fmin,
            upper_edge_hertz=self.sample_rate / 2,
        )


def subtract_voiced_mean(log_mel: tf.Tensor) -> tf.Tensor:
    """Cepstral mean normalisation on the frames that hold sound: each clip's average spectrum
    (its microphone and room, mostly) is removed; padded silence stays at the floor."""
    floor = tf.math.log(SILENCE_FLOOR)
    voiced = tf.cast(tf.reduce_max(log_mel, axis=-1, keepdims=True) > floor + 1e-3, log_mel.dtype)
    mean = tf.reduce_sum(log_mel * voiced, axis=-2, keepdims=True) / tf.maximum(
        tf.reduce_sum(voiced, -2, keepdims=True), 1.0
    )
    return log_mel - mean * voiced
