"""The audio stages: WAV decoding of every supported flavour, resampling, fitting, features."""

import io
import wave

import numpy as np
import pytest
import tensorflow as tf

from pipelines.speech import audio
from pipelines.speech.audio import Frontend
from tests.helpers import tone, wav_bytes

CLIP = tone(440.0, 8000, 0.25)


@pytest.mark.parametrize(
    "bits,floating,extensible,channels,tolerance",
    [
        (8, False, False, 1, 1e-2),
        (16, False, False, 1, 1e-4),
        (16, False, False, 2, 1e-4),
        (24, False, False, 1, 1e-6),
        (32, False, False, 2, 1e-7),
        (32, True, False, 1, 1e-7),
        (64, True, False, 1, 1e-7),
        (24, False, True, 2, 1e-6),
    ],
)
def test_decode_wav_reads_every_supported_encoding(bits, floating, extensible, channels, tolerance):
    expected = np.stack([CLIP, -CLIP], 1) if channels == 2 else CLIP[:, None]
    samples, rate = audio.decode_wav(tf.constant(wav_bytes(expected, 8000, bits, floating, extensible)))
    assert int(rate) == 8000 and samples.shape == expected.shape
    np.testing.assert_allclose(samples.numpy(), expected, atol=tolerance)


def test_decode_wav_agrees_with_tensorflow_and_the_standard_library():
    data = wav_bytes(CLIP, 8000, 16)
    ours, _ = audio.decode_wav(tf.constant(data))
    np.testing.assert_array_equal(ours.numpy(), tf.audio.decode_wav(data)[0].numpy())
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:  # 24-bit stereo as Python writes it
        handle.setnchannels(2), handle.setsampwidth(3), handle.setframerate(22050)
        handle.writeframes(bytes([0x00, 0x00, 0x40, 0x00, 0x00, 0xC0]) * 10)
    samples, rate = audio.decode_wav(tf.constant(buffer.getvalue()))
    assert int(rate) == 22050 and samples.shape == (10, 2)
    np.testing.assert_allclose(samples.numpy()[0], [0.5, -0.5])


@pytest.mark.parametrize(
    "contents,message",
    [
        (b"", "not a RIFF/WAVE file"),
        (b"ID3 this is an mp3, honest", "not a RIFF/WAVE file"),
        (wav_bytes(CLIP, 8000)[:36], "no 'data' chunk"),
        (b"RIFF\0\0\0\0WAVEdata\0\0\0\0", "no 'fmt ' chunk"),
    ],
)
def test_decode_wav_rejects_what_is_not_a_wav(contents, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        audio.decode_wav(tf.constant(contents))


def test_decode_wav_works_inside_a_graph():
    decode = tf.function(
        lambda b: audio.wav_to_waveform(b, 16000, 4000), input_signature=[tf.TensorSpec([], tf.string)]
    )
    assert decode(tf.constant(wav_bytes(CLIP, 8000, 24))).shape == (4000,)


def test_resampling_keeps_a_tone_and_leaves_matching_rates_alone():
    resampled = audio.resample(tf.constant(tone(440.0, 44100, 0.5), tf.float32), 44100, 16000).numpy()
    expected = tone(440.0, 16000, 0.5)
    assert resampled.shape == expected.shape
    np.testing.assert_allclose(resampled[50:-50], expected[50:-50], atol=1e-4)
    same = tf.constant(CLIP, tf.float32)
    assert audio.resample(same, 8000, 8000) is same or np.array_equal(audio.resample(same, 8000, 8000), same)


def test_fit_length_centres_short_clips_and_crops_long_ones():
    short = audio.fit_length(tf.ones([4]), 8).numpy()
    np.testing.assert_array_equal(short, [0, 0, 1, 1, 1, 1, 0, 0])
    long = tf.range(10, dtype=tf.float32)
    np.testing.assert_array_equal(audio.fit_length(long, 4).numpy(), [3, 4, 5, 6])
    np.testing.assert_array_equal(audio.fit_length(long, 4, offset=0.0).numpy(), [0, 1, 2, 3])
    np.testing.assert_array_equal(audio.fit_length(long, 4, offset=1.0).numpy(), [6, 7, 8, 9])
    assert audio.fit_length(tf.zeros([3, 5]), 8).shape == (3, 8)


@pytest.mark.parametrize("kind,shape", [("logmel", (61, 40)), ("mfcc", (61, 13)), ("waveform", (8000,))])
def test_frontend_shapes_and_batch_independence(kind, shape):
    frontend = audio.Frontend(kind, 8000, 8000)
    waves = tf.constant(np.stack([tone(300, 8000, 1.0), tone(1200, 8000, 1.0)]), tf.float32)
    batch = frontend(waves)
    assert frontend.output_shape == shape and batch.shape == (2, *shape)
    np.testing.assert_allclose(
        frontend(waves[1])[None].numpy() if kind == "waveform" else frontend(waves[1:]).numpy(),
        batch[1:].numpy(),
        atol=1e-5,
    )


def test_log_mel_peaks_in_the_band_of_the_tone():
    frontend = audio.Frontend("logmel", 8000, 8000)
    low, high = (
        frontend(tf.constant([tone(f, 8000, 1.0)], tf.float32))[0].numpy().mean(0).argmax() for f in (300, 2500)
    )
    assert low < high
    silence = frontend(tf.zeros([1, 8000]))[0].numpy()
    np.testing.assert_allclose(silence, np.log(audio.SILENCE_FLOOR), rtol=1e-6)


def test_peak_normalisation_makes_loudness_irrelevant():
    frontend = Frontend("logmel", 8000, 8000, peak_normalize=True)
    loud = tf.constant([tone(500, 8000, 1.0)], tf.float32)
    np.testing.assert_allclose(frontend(loud * 0.05).numpy(), frontend(loud).numpy(), atol=1e-4)
    assert np.isfinite(frontend(tf.zeros([1, 8000])).numpy()).all()  # silence stays silence, no division by 0


def test_mean_normalisation_removes_a_microphone_and_leaves_padding_alone():
    plain = Frontend("logmel", 8000, 8000)
    normalised = Frontend("logmel", 8000, 8000, mean_normalize=True)
    clip = tf.constant([np.pad(tone(500, 8000, 0.5, np.random.default_rng(0)), (2000, 2000))], tf.float32)
    coloured = tf.constant([np.convolve(clip[0].numpy(), [1.0, 0.9], mode="same")], tf.float32)  # a brighter mic
    voiced = plain(clip)[0].numpy().max(axis=1) > np.log(audio.SILENCE_FLOOR) + 1e-3
    assert 0 < voiced.sum() < len(voiced)
    a, b = normalised(clip)[0].numpy(), normalised(coloured)[0].numpy()
    np.testing.assert_allclose(a[voiced].mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(a[~voiced], np.log(audio.SILENCE_FLOOR), rtol=1e-6)
    # The filter's fixed spectral tilt is gone: what is left differs far less than before.
    before = np.abs(plain(clip)[0].numpy() - plain(coloured)[0].numpy())[voiced].mean()
    assert np.abs(a - b)[voiced].mean() < 0.5 * before


def test_tiny_clips_and_late_format_chunks_are_handled():
    assert audio.resample(tf.constant([0.1, 0.2], tf.float32), 96000, 16000).shape == (0,)
    assert audio.resample(tf.constant([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], tf.float32), 96000, 16000).shape == (1,)
    data = wav_bytes(CLIP, 8000)  # RIFF header, fmt, LIST, data: move fmt to the very end
    fmt = data[12:36]
    moved = data[:4] + data[4:8] + data[8:12] + data[36:] + fmt
    samples, rate = audio.decode_wav(tf.constant(moved))
    assert int(rate) == 8000 and samples.shape == (len(CLIP), 1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="WAV"):
        audio.decode_wav(tf.constant(data[:20]))  # a header cut inside the fmt chunk
