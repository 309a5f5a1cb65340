"""The audio stage: 16 kHz mono float32 of just the requested range."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from reelscribe.errors import InvalidInputError, MediaError
from reelscribe.models import TimeRange
from reelscribe.pipeline.audio import extract_audio, load_audio
from tests.integration.test_clip import make_source


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


def test_range_is_decoded_at_16k_mono(sample_av: Path) -> None:
    samples = load_audio(sample_av, TimeRange(2.0, 4.5))
    assert samples.dtype == np.float32
    assert samples.ndim == 1
    assert samples.flags.writeable
    assert abs(len(samples) - 2.5 * 16000) <= 16  # within 1 ms
    assert np.abs(samples).max() <= 1.0
    assert float(np.sqrt(np.mean(samples**2))) > 0.05  # the sine, not silence
    assert dominant_frequency(samples, 16000) == pytest.approx(440, abs=2)


def test_whole_file_and_open_ended_range(sample_av: Path) -> None:
    assert abs(len(load_audio(sample_av)) - 10 * 16000) <= 160
    assert abs(len(load_audio(sample_av, TimeRange(7.0))) - 3 * 16000) <= 160


def test_end_past_the_duration_is_clamped(sample_av: Path) -> None:
    assert abs(len(load_audio(sample_av, TimeRange(8.0, 30.0))) - 2 * 16000) <= 160


def test_range_matches_the_same_samples_of_the_whole(media_dir: Path) -> None:
    # Seeded noise lines up with itself in one place only: the range starts where asked.
    src = make_source(media_dir / "audio_noise.mp4", duration=6.0)
    whole = load_audio(src)
    part = load_audio(src, TimeRange(2.5, 3.5))
    at = 40_000
    scores = [float(np.dot(part, whole[at + lag : at + lag + len(part)])) for lag in range(-64, 64)]
    assert int(np.argmax(scores)) - 64 == 0
    # Not ~1.0: resampling after a seek may start a fraction of a sample apart.
    assert np.corrcoef(part, whole[at : at + len(part)])[0, 1] > 0.8


def test_late_audio_keeps_its_place_on_the_timeline(media_dir: Path) -> None:
    # Sample 0 is source time 0 even when the audio track starts 0.3 s in.
    src = make_source(media_dir / "audio_late.mp4", duration=4.0, audio_delay=0.3)
    whole = load_audio(src)
    assert np.abs(whole[: int(0.25 * 16000)]).max() < 1e-3
    assert np.abs(whole[int(0.35 * 16000) : int(0.5 * 16000)]).max() > 0.1
    part = load_audio(src, TimeRange(1.0, 2.0))
    scores = [float(np.dot(part, whole[16000 + lag : 32000 + lag])) for lag in range(-64, 64)]
    assert int(np.argmax(scores)) - 64 == 0


def test_other_sample_rate(sample_av: Path) -> None:
    samples = load_audio(sample_av, TimeRange(1.0, 2.0), sample_rate=8000)
    assert abs(len(samples) - 8000) <= 8


def test_no_audio_stream(sample_video_only: Path) -> None:
    with pytest.raises(MediaError, match="no audio stream"):
        load_audio(sample_video_only)


def test_start_beyond_the_end(sample_av: Path) -> None:
    with pytest.raises(InvalidInputError, match="beyond the end"):
        load_audio(sample_av, TimeRange(11.0, 12.0))


def test_extract_audio_writes_a_16k_mono_wav(sample_av: Path, tmp_path: Path) -> None:
    dest = extract_audio(sample_av, tmp_path / "sub" / "speech.wav", TimeRange(1.0, 3.0))
    assert dest == tmp_path / "sub" / "speech.wav"
    with wave.open(str(dest)) as wav:
        assert wav.getnchannels() == 1
        assert wav.getframerate() == 16000
        assert wav.getsampwidth() == 2
        assert abs(wav.getnframes() - 32000) <= 16


def test_extract_audio_from_audio_only(sample_audio_only: Path, tmp_path: Path) -> None:
    dest = extract_audio(sample_audio_only, tmp_path / "all.wav")
    with wave.open(str(dest)) as wav:
        assert abs(wav.getnframes() - 6 * 16000) <= 160
