"""The hosted engine against a realistic OpenAI-compatible stand-in (tests/asrserver.py,
which transcribes for real with the packaged model), and the routing between it and the
local faster-whisper engine."""

from __future__ import annotations

import difflib
import itertools
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from faster_whisper import decode_audio
from pydantic import SecretStr

from reelscribe.asr.faster_whisper import (
    EngineOptions,
    FasterWhisperEngine,
    LoadedModel,
    load_model,
)
from reelscribe.asr.openai_compatible import (
    HostedOptions,
    OpenAICompatibleEngine,
    encode,
    plan_pieces,
)
from reelscribe.asr.routing import Engines
from reelscribe.errors import NetworkError, ProcessingError, ReelscribeError
from reelscribe.models import Transcript
from reelscribe.pipeline.transcribe import TranscribeOptions, transcribe
from reelscribe.progress import Progress
from tests.asrserver import AsrServer

KEY = "sk-test-9f3a0c1d5e7b2468SECRET"
SR = 16_000


@pytest.fixture(scope="module")
def model(engine_options: EngineOptions) -> LoadedModel:
    return load_model(engine_options)


@pytest.fixture
def server(model: LoadedModel) -> Iterator[AsrServer]:
    with AsrServer(model, api_key=KEY) as server:
        yield server


@pytest.fixture(scope="module")
def jfk(shared_media: Path) -> np.ndarray:
    return np.asarray(decode_audio(str(shared_media / "jfk.flac"), sampling_rate=SR), np.float32)


_made: list[OpenAICompatibleEngine] = []


@pytest.fixture(autouse=True)
def _close_engines() -> Iterator[None]:
    yield
    while _made:
        _made.pop().close()


def hosted(server: AsrServer, **changes: object) -> OpenAICompatibleEngine:
    """A hosted engine on ``server`` (closed after the test)."""
    options = HostedOptions(base_url=server.base_url, api_key=SecretStr(KEY), max_wait=10.0)
    engine = OpenAICompatibleEngine(replace(options, **changes))  # type: ignore[arg-type]
    _made.append(engine)
    return engine


def words(t: Transcript) -> list[str]:
    return ["".join(c for c in w.text.lower() if c.isalnum()) for w in t.words]


def spoken(t: Transcript) -> str:
    return " ".join(words(t))


# --- splitting and stitching --------------------------------------------------------------


@pytest.fixture(scope="module")
def long_speech(shared_media: Path) -> np.ndarray:
    """~34 s of real speech: JFK, two other speakers, JFK again, short pauses between."""
    jfk = decode_audio(str(shared_media / "jfk.flac"), sampling_rate=SR)
    stereo = decode_audio(str(shared_media / "stereo_diarization.wav"), SR, split_stereo=True)
    pause = np.zeros(int(0.7 * SR), np.float32)
    parts = [jfk, pause, stereo[0], pause, stereo[1], pause, jfk]
    return np.concatenate(parts).astype(np.float32)


def test_long_audio_is_split_under_the_limit_and_stitched_without_doubled_or_lost_words(
    model: LoadedModel, long_speech: np.ndarray
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        whole = len(encode(long_speech, Path(tmp)))
        limit = whole // 3
        pieces = plan_pieces(long_speech, limit, 1.0, Path(tmp))
    assert len(pieces) >= 3
    options = TranscribeOptions(route="hosted", language="en")
    with AsrServer(model, api_key=KEY, limit=limit) as server:
        engine = hosted(server, upload_limit=limit)
        split = transcribe(long_speech, options, engines=Engines(FasterWhisperEngine(), engine))
        sizes = [r.file_size for r in server.requests]
        unsplit = transcribe(long_speech, options,
                             engines=Engines(FasterWhisperEngine(), hosted(server)))  # fmt: skip
    # The server saw only pieces under its limit, and one per piece.
    assert len(sizes) == len(pieces)
    assert all(0 < s <= limit for s in sizes)
    # Word timestamps on one timeline: increasing, inside the audio and their segment.
    all_words = split.words
    assert all(a.start <= b.start for a, b in itertools.pairwise(all_words))
    assert all(0 <= w.start <= w.end <= split.duration for w in all_words)
    for seg in split.segments:
        assert all(seg.start <= w.start and w.end <= seg.end for w in seg.words)
    # Measured, not spread (a word the rules clamp into its segment is flagged too).
    measured = [w for w in all_words if not w.interpolated]
    assert len(measured) >= 0.9 * len(all_words), [w for w in all_words if w.interpolated]
    # Nothing doubled or lost at the seams: aligned with the run on the whole audio,
    # no word within 1.5 s of a cut is extra or missing (elsewhere Whisper may differ a
    # little with its context).
    cuts = [p.keep_from for p in pieces[1:]]
    a, b = words(split), words(unsplit)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        times = [split.words[i].start for i in range(i1, i2)]
        times += [unsplit.words[j].start for j in range(j1, j2)]
        for cut in cuts:
            assert all(abs(t - cut) >= 1.5 for t in times), (tag, a[i1:i2], b[j1:j2], cut)
    ratio = difflib.SequenceMatcher(None, words(split), words(unsplit)).ratio()
    assert ratio > 0.95
    assert spoken(split).count("ask not what your country can do for you") == 2
    assert "horizon" in spoken(split)


def test_a_413_from_a_server_with_a_lower_limit_cuts_smaller_pieces(
    model: LoadedModel, long_speech: np.ndarray
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        limit = len(encode(long_speech, Path(tmp))) // 2
    with AsrServer(model, api_key=KEY, limit=limit) as server:
        engine = hosted(server)  # believes the default 25 MB
        t = transcribe(long_speech[: 17 * SR], TranscribeOptions(route="hosted", language="en"),
                       engines=Engines(FasterWhisperEngine(), engine))  # fmt: skip
        statuses = [r.status for r in server.requests]
    assert statuses[0] == 413
    assert statuses[1:]
    assert set(statuses[1:]) == {200}
    assert "country" in spoken(t)


# --- retries --------------------------------------------------------------------------------


def test_429_and_500_are_retried_honouring_retry_after(server: AsrServer, jfk: np.ndarray) -> None:
    server.failures += [(429, {"Retry-After": "2"}), (500, {})]
    engine = hosted(server)
    t = transcribe(jfk, TranscribeOptions(route="hosted"),
                   engines=Engines(FasterWhisperEngine(), engine))  # fmt: skip
    assert [r.status for r in server.requests] == [429, 500, 200]
    # Measured by the server: the retry after the 429 came no sooner than asked.
    assert server.requests[1].at - server.requests[0].at >= 2.0
    assert "country" in spoken(t)
    assert t.made_by.name == "openai-compatible"


def test_a_retry_after_past_the_wait_limit_fails_at_once(
    server: AsrServer, jfk: np.ndarray
) -> None:
    server.failures += [(429, {"Retry-After": "3600"})]
    engine = hosted(server, max_wait=5.0)
    with pytest.raises(NetworkError, match="429"):
        engine.transcribe(jfk, TranscribeOptions(), None)
    assert [r.status for r in server.requests] == [429]


def test_words_without_timestamps_are_interpolated_and_flagged(
    server: AsrServer, jfk: np.ndarray
) -> None:
    server.words = False
    t = transcribe(jfk, TranscribeOptions(route="hosted"),
                   engines=Engines(FasterWhisperEngine(), hosted(server)))  # fmt: skip
    assert t.words
    assert all(w.interpolated for w in t.words)
    assert "country" in spoken(t)


# --- routing --------------------------------------------------------------------------------

UNLOADABLE = EngineOptions(model="/nonexistent/whisper-model")


def test_route_local_does_not_call_the_hosted_engine(
    server: AsrServer, model: LoadedModel, jfk: np.ndarray
) -> None:
    t = transcribe(jfk, TranscribeOptions(route="local"),
                   engines=Engines(FasterWhisperEngine(model), hosted(server)))  # fmt: skip
    assert t.made_by.name == "faster-whisper"
    assert t.engine is None  # the default engine, no fallback
    assert server.requests == []


def test_local_then_hosted_falls_back_when_the_local_model_cannot_load(
    server: AsrServer, jfk: np.ndarray
) -> None:
    options = TranscribeOptions(engine=UNLOADABLE, route="local-then-hosted")
    with pytest.raises(ReelscribeError):  # the real failure, on its own
        transcribe(jfk, replace(options, route="local"))
    t = transcribe(jfk, options, engines=Engines(FasterWhisperEngine(), hosted(server)))
    assert t.made_by.name == "openai-compatible"
    assert t.made_by.fallback_from == "faster-whisper"
    assert "country" in spoken(t)


class OutOfMemory(FasterWhisperEngine):
    """A test double for the local failure CUDA gives mid-decoding (no GPU here): the
    segments iterator raises what CTranslate2 raises."""

    def transcribe(self, samples, options, progress):  # type: ignore[no-untyped-def]
        result = super().transcribe(samples, options, progress)

        def fail() -> Iterator[object]:
            raise RuntimeError("CUDA failed with error out of memory")
            yield  # a generator, like faster-whisper's

        return replace(result, segments=fail())


def test_local_then_hosted_falls_back_on_cuda_out_of_memory(
    server: AsrServer, model: LoadedModel, jfk: np.ndarray
) -> None:
    t = transcribe(jfk, TranscribeOptions(route="local-then-hosted"),
                   engines=Engines(OutOfMemory(model), hosted(server)))  # fmt: skip
    assert t.made_by.name == "openai-compatible"
    assert t.made_by.fallback_from == "faster-whisper"


def test_hosted_then_local_falls_back_when_the_api_keeps_failing(
    server: AsrServer, model: LoadedModel, jfk: np.ndarray
) -> None:
    server.failures += [(500, {})] * 3
    engines = Engines(FasterWhisperEngine(model), hosted(server, max_retries=2))
    t = transcribe(jfk, TranscribeOptions(route="hosted-then-local"), engines=engines)
    assert [r.status for r in server.requests] == [500, 500, 500]
    assert t.made_by.name == "faster-whisper"
    assert t.made_by.fallback_from == "openai-compatible"
    assert t.model.name == model.info.name
    assert "country" in spoken(t)


def test_hosted_alone_does_not_fall_back(
    server: AsrServer, model: LoadedModel, jfk: np.ndarray
) -> None:
    server.failures += [(500, {})] * 2
    engines = Engines(FasterWhisperEngine(model), hosted(server, max_retries=1))
    with pytest.raises(NetworkError):
        transcribe(jfk, TranscribeOptions(route="hosted"), engines=engines)


def test_a_cancelled_job_does_not_fall_back(server: AsrServer, jfk: np.ndarray) -> None:
    class Aborted(ReelscribeError):
        code = "aborted"  # as worker.JobAborted

    def cancel(_: Progress) -> None:
        raise Aborted("cancelled")

    options = TranscribeOptions(engine=UNLOADABLE, route="hosted-then-local")
    with pytest.raises(Aborted):
        transcribe(jfk, options, cancel, engines=Engines(FasterWhisperEngine(), hosted(server)))
    assert server.requests == []


def test_a_hosted_route_without_a_hosted_engine_is_refused(jfk: np.ndarray) -> None:
    from reelscribe.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="REELSCRIBE_HOSTED_ASR_URL"):
        transcribe(jfk, TranscribeOptions(route="local-then-hosted"))


# --- the key --------------------------------------------------------------------------------


def test_the_api_key_is_in_no_log_line_nor_error(
    server: AsrServer, model: LoadedModel, jfk: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.failures += [(429, {"Retry-After": "0"}), (503, {})]
    transcribe(jfk, TranscribeOptions(route="hosted"),
               engines=Engines(FasterWhisperEngine(), hosted(server)))  # fmt: skip
    # A wrong key: OpenAI's 401 echoes it back; neither the error nor the fallback's
    # warning may repeat it.
    wrong = "sk-wrong-77aa99bbSECRET"
    bad = hosted(server, api_key=SecretStr(wrong))
    with pytest.raises(ProcessingError, match="401") as refused:
        transcribe(jfk, TranscribeOptions(route="hosted"),
                   engines=Engines(FasterWhisperEngine(), bad))  # fmt: skip
    t = transcribe(jfk, TranscribeOptions(route="hosted-then-local"),
                   engines=Engines(FasterWhisperEngine(model), bad))  # fmt: skip
    assert t.made_by.fallback_from == "openai-compatible"
    assert server.requests[-1].headers["Authorization"] == f"Bearer {wrong}"
    assert "401" in caplog.text
    assert "429" in caplog.text
    lines = [r.getMessage() for r in caplog.records] + [caplog.text, str(refused.value)]
    for secret in (KEY, wrong):
        assert not any(secret in line for line in lines)
