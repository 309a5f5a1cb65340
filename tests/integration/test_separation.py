"""Vocal separation for real: the Spleeter env (built once per machine, in the settings'
place, by the first test that needs it), real speech under generated music, Whisper on
the stem, and a job whose ``separate`` step and ``vocals`` output a worker produces.

The env build takes minutes the first time (TensorFlow 2.12, ~2.4 GB); a file lock
keeps parallel sessions from building it twice, and later sessions find it ready.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from reelscribe.asr.engine import EngineOptions
from reelscribe.config import Settings
from reelscribe.media.ffmpeg import ffmpeg_exe
from reelscribe.models import TimeRange
from reelscribe.pipeline.separate import separate
from reelscribe.pipeline.transcribe import TranscribeOptions, transcribe
from reelscribe.separation.base import SeparateOptions
from reelscribe.separation.spleeter_env import SpleeterEnv, ensure_env, env_root
from tests.conftest import normalise_words

pytestmark = [pytest.mark.slow, pytest.mark.media, pytest.mark.timeout(1500)]

SR = 44_100
MUSIC_LEAD = 3.0  # seconds of music alone before the speech
JFK_WORDS = {"fellow", "americans", "ask", "country", "do"}
MIT_WORDS = {"permission", "granted", "software", "copyright", "notice", "charge"}


@pytest.fixture(scope="session")
def spleeter_env() -> SpleeterEnv:
    """The env where the settings put it (CI: inside the clone's XDG cache)."""
    root = env_root(Settings())
    return ensure_env(root, log=lambda line: print(f"spleeter env: {line}", file=sys.stderr))


def music(seconds: float, seed: int = 7) -> np.ndarray:
    """Stereo pop-like music: a chord progression of harmonic-rich notes, a bass line,
    kick, snare and hi-hat, at 110 bpm. Fills the speech band, as a song does."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    out = np.zeros((n, 2))
    chords = [(261.6, 329.6, 392.0), (196.0, 246.9, 293.7),
              (220.0, 261.6, 329.6), (174.6, 220.0, 261.6)]  # C G Am F  # fmt: skip
    for i, start in enumerate(np.arange(0, seconds, 2.0)):
        a, b = int(start * SR), min(n, int((start + 2.0) * SR))
        tt = t[a:b] - start
        env = np.minimum(1, tt / 0.02) * np.exp(-tt * 0.8)
        for j, f in enumerate(chords[i % 4]):
            note = sum(np.sin(2 * np.pi * f * k * tt) / k for k in range(1, 7)) * env
            out[a:b, 0] += note * (0.6 + 0.2 * j)
            out[a:b, 1] += note * (1.0 - 0.2 * j)
        bass = np.sin(2 * np.pi * chords[i % 4][0] / 2 * tt) * env
        out[a:b] += 0.8 * bass[:, None]
    beat = 60 / 110
    for k, start in enumerate(np.arange(0, seconds, beat / 2)):
        a = int(start * SR)
        length = min(n - a, int(0.2 * SR))
        tt = np.arange(length) / SR
        if k % 4 == 0:  # kick: a falling sine
            hit = np.sin(2 * np.pi * (45 + 75 * np.exp(-tt * 30)) * tt) * np.exp(-tt * 18) * 2
        elif k % 4 == 2:  # snare: noise and a tone
            hit = (rng.normal(size=length) + np.sin(2 * np.pi * 180 * tt)) * np.exp(-tt * 25)
        else:  # hi-hat: high-passed noise
            hit = np.diff(rng.normal(size=length + 1)) * np.exp(-tt * 80) * 0.4
        out[a : a + length] += hit[:, None]
    return out.astype(np.float32)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def decode(path: Path, rate: int, channels: int) -> np.ndarray:
    raw = subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-i", str(path), "-ac",
                          str(channels), "-ar", str(rate), "-f", "f32le", "pipe:1"],
                         check=True, capture_output=True).stdout  # fmt: skip
    return np.frombuffer(raw, "<f4").reshape(-1, channels)


@pytest.fixture(scope="module")
def song(shared_media: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s of music, then JFK (11 s) and the MIT licence read aloud (30 s) over it, at
    equal RMS while they speak: 45 s, so the separator works in more than one chunk."""
    mit = decode(shared_media / "multilingual.mp3", SR, 1)[: int(30.3 * SR), 0]
    speech = np.concatenate([decode(shared_media / "jfk.flac", SR, 1)[:, 0],
                             np.zeros(SR // 2, np.float32), mit])  # fmt: skip
    lead = int(MUSIC_LEAD * SR)
    voice = np.concatenate([np.zeros(lead, np.float32), speech])
    backing = music(len(voice) / SR + 0.01)[: len(voice)]  # +0.01: no sample short
    backing *= rms(speech) / rms(backing[lead:])
    mix = backing + voice[:, None]
    mix /= max(1.0, float(np.abs(mix).max()) / 0.95)
    dest = tmp_path_factory.mktemp("song") / "song.wav"
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-f", "f32le", "-ar", str(SR), "-ac",
                    "2", "-i", "pipe:0", "-c:a", "pcm_s16le", str(dest)],
                   input=mix.astype("<f4").tobytes(), check=True)  # fmt: skip
    return dest


def test_spleeter_keeps_the_voice_and_drops_the_music(
    spleeter_env: SpleeterEnv, song: Path, tmp_path: Path, engine_options: EngineOptions
) -> None:
    options = SeparateOptions(env_dir=spleeter_env.path.parent, write_stem=True)
    seen: list[float] = []
    result = separate(song, TimeRange(), tmp_path / "work", options,
                      lambda p: seen.append(p.fraction or 0.0),
                      stem_path=tmp_path / "song.vocals.flac")  # fmt: skip
    mix = decode(song, SR, 2)
    assert result.stem is not None
    stem = decode(result.stem, SR, 2)
    assert abs(len(stem) - len(mix)) <= 2  # same timeline as the mix
    assert seen == sorted(seen)
    assert seen[-1] == 1.0
    assert abs(len(result.samples) - len(mix) / SR * 16_000) <= 16  # 16 kHz mono for ASR

    # Where only the music plays, the stem is at least 12 dB quieter than the mix.
    lead = int(MUSIC_LEAD * SR)
    assert rms(stem[: lead - SR // 10]) < rms(mix[: lead - SR // 10]) / 4
    # Below 100 Hz (kick and bass; little of a voice) likewise, over the whole song.
    assert band_rms(stem, 20, 100) < band_rms(mix, 20, 100) / 4
    # While he speaks, the voice is kept.
    assert rms(stem[lead:]) > 0.4 * rms(mix[lead:])

    heard = transcribe(result.samples, TranscribeOptions(engine=engine_options, language="en"))
    words = set(normalise_words(heard.text))
    assert len(JFK_WORDS & words) >= 3, heard.text
    assert len(MIT_WORDS & words) >= 4, heard.text  # the second chunk is right too
    first = min(s.start for s in heard.segments)
    assert first > MUSIC_LEAD - 1.0  # timestamps on the song's timeline


def band_rms(x: np.ndarray, low: float, high: float) -> float:
    spectrum = np.fft.rfft(x.mean(axis=1))
    freqs = np.fft.rfftfreq(len(x), 1 / SR)
    keep = (freqs >= low) & (freqs < high)
    return float(np.sqrt(np.sum(np.abs(spectrum[keep]) ** 2)) / len(x))


def test_cli_vocals_output_alone_separates_without_transcribing(
    spleeter_env: SpleeterEnv, song: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "REELSCRIBE_SEPARATION_ENV_DIR": str(spleeter_env.path.parent)}
    done = subprocess.run(
        [sys.executable, "-m", "reelscribe.cli", "transcribe", str(song), "-f", "vocals",
         "-o", str(tmp_path), "--json", "--quiet"],
        capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert list(summary["timings"]) == ["fetch", "probe", "separate"]
    assert "transcript" not in summary
    vocals = Path(summary["outputs"]["vocals"])
    assert vocals.name == "song.vocals.flac"
    with av.open(str(vocals)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "flac"
        assert stream.rate == SR
        assert stream.channels == 2
        duration = float(container.duration or 0) / av.time_base
    assert abs(duration - summary["media"]["duration"]) < 0.05


@pytest.mark.anyio
async def test_separate_job_shows_the_step_and_stores_the_stem(
    spleeter_env: SpleeterEnv, song: Path, tmp_path: Path, models_dir: Path
) -> None:
    from reelscribe.backends.db.enums import EventKind, JobStatus
    from reelscribe.service.runtime import Runtime
    from reelscribe.worker import Worker
    from tests.integration.service.conftest import service_settings
    from tests.integration.service.test_worker import add_upload, events, submit

    settings = service_settings(tmp_path, models_dir, separation_env_dir=spleeter_env.path.parent)
    async with Runtime(settings) as runtime:
        upload_id = await add_upload(runtime, song)
        spec = {"source": {"upload_id": upload_id}, "outputs": ["txt", "vocals"],
                "options": {"separate": True, "language": "en"}}  # fmt: skip
        job_id = await submit(runtime, spec)
        await Worker(runtime).run(burst=True)
        job = await runtime.jobs.get(job_id)
        assert job is not None
        assert job.status == JobStatus.DONE, job.error_message
        steps = [e.data["step"] for e in await events(runtime, job_id)
                 if e.kind == EventKind.STEP_START]  # fmt: skip
        assert steps == ["fetch", "probe", "audio", "separate", "transcribe", "render", "upload"]
        stored = job.result["outputs"]["vocals"]
        assert stored["content_type"] == "audio/flac"
        blob = b"".join([c async for c in runtime.storage.get_stream(stored["key"])])
        txt_key = job.result["outputs"]["txt"]["key"]
        text = b"".join([c async for c in runtime.storage.get_stream(txt_key)]).decode()
    stem = tmp_path / "stored.flac"
    stem.write_bytes(blob)
    assert decode(stem, SR, 2).shape[0] == pytest.approx(decode(song, SR, 2).shape[0], abs=2)
    assert len(JFK_WORDS & set(normalise_words(text))) >= 3, text


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
