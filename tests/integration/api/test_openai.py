"""The OpenAI-compatible ``/v1`` API, driven by the official ``openai`` package.

The client is used as its users would: unchanged but for ``base_url`` and ``api_key``,
against a real server (uvicorn on 127.0.0.1) with a real worker in the same process
(so the change notifications wake the waiting request), the packaged Whisper model
and real speech. Subtitles are read back by real parsers (pysrt, webvtt-py).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pysrt
import pytest
import webvtt

from reelscribe.media.ffmpeg import ffmpeg_exe
from tests.conftest import normalise_words
from tests.integration.api.conftest import (
    ADMIN_SECRET,
    Live,
    StartApi,
    _bound_socket,
    serve,
    settings_for,
)

pytestmark = pytest.mark.media

JFK = ["and", "so", "my", "fellow", "americans", "ask", "not", "what", "your", "country",
       "can", "do", "for", "you"]  # fmt: skip
GERMAN_WORDS = {"der", "die", "das", "und", "ist", "zu", "mit", "von"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Live]:
    from reelscribe.worker import Worker

    root = tmp_path_factory.mktemp("openai")
    sock = _bound_socket()
    with sock:
        settings = settings_for(root, sock.getsockname()[1], models_dir=models_dir,
                                openai_wait_seconds=240)  # fmt: skip
        with serve(settings, sock) as live:
            worker = Worker(live.runtime)
            running = asyncio.run_coroutine_threadsafe(worker.run(), live.loop)
            try:
                yield live
            finally:
                live.loop.call_soon_threadsafe(worker.stop.set)
                running.result(120)


@pytest.fixture(scope="module")
def client(server: Live) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=ADMIN_SECRET) as client:
        yield client


@pytest.fixture(scope="module")
def jfk(shared_media: Path) -> Path:
    return shared_media / "jfk.flac"


@pytest.fixture(scope="module")
def german(shared_media: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The German half of multilingual.mp3 (the MIT license read aloud), 14 s of it."""
    dest = tmp_path_factory.mktemp("german") / "german.mp3"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-ss", "31", "-t", "14",
                    "-i", str(shared_media / "multilingual.mp3"), "-c", "copy", str(dest)],
                   check=True)  # fmt: skip
    return dest


def assert_jfk(text: str) -> None:
    words = normalise_words(text)
    # Whisper may differ by a word across CPUs: most of the sentence, in order.
    found = [w for w in JFK if w in words]
    assert len(found) >= len(JFK) - 2, text
    assert "country" in words


def test_models_list_whisper_1_and_the_default(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids[0] == "whisper-1"
    assert "base" in ids
    assert client.models.retrieve("whisper-1").id == "whisper-1"


def test_json_and_text(client: openai.OpenAI, jfk: Path) -> None:
    with jfk.open("rb") as fh:
        result = client.audio.transcriptions.create(model="whisper-1", file=fh)
    assert_jfk(result.text)
    assert result.usage is not None
    with jfk.open("rb") as fh:
        text = client.audio.transcriptions.create(
            model="base", file=fh, response_format="text", language="en", prompt="JFK, inaugural."
        )
    assert isinstance(text, str)
    assert_jfk(text)


def test_srt_and_vtt_parse(client: openai.OpenAI, jfk: Path) -> None:
    with jfk.open("rb") as fh:
        srt = client.audio.transcriptions.create(model="whisper-1", file=fh, response_format="srt")
    subs = pysrt.from_string(srt)
    assert len(subs) >= 1
    assert subs[-1].end.ordinal <= 11_500
    assert all(a.start.ordinal <= b.start.ordinal for a, b in itertools.pairwise(subs))
    assert_jfk(" ".join(s.text for s in subs))
    with jfk.open("rb") as fh:
        vtt = client.audio.transcriptions.create(model="whisper-1", file=fh, response_format="vtt")
    captions = webvtt.from_string(vtt).captions
    assert len(captions) >= 1
    assert_jfk(" ".join(c.text for c in captions))


def test_verbose_json_with_words(client: openai.OpenAI, jfk: Path) -> None:
    with jfk.open("rb") as fh:
        result = client.audio.transcriptions.create(
            model="whisper-1", file=fh, response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
        )  # fmt: skip
    assert result.language == "english"
    assert result.duration == pytest.approx(11.0, abs=0.2)
    assert_jfk(result.text)
    assert result.words is not None
    assert result.segments is not None
    words = result.words
    assert_jfk(" ".join(w.word for w in words))
    assert all(w.start <= w.end <= result.duration + 0.05 for w in words)
    assert all(a.start <= b.start for a, b in itertools.pairwise(words))
    country = next(w for w in words if normalise_words(w.word) == ["country"])
    assert 5.0 < country.start < 11.0  # "country" is said in the second half
    for segment in result.segments:
        inside = [w for w in words if segment.start - 0.05 <= w.start < segment.end]
        assert inside, "every segment holds words"
    with jfk.open("rb") as fh:
        only_words = client.audio.transcriptions.create(
            model="whisper-1", file=fh, response_format="verbose_json",
            timestamp_granularities=["word"],
        )  # fmt: skip
    assert only_words.words
    assert only_words.segments is None


# openai 3.x marks translations deprecated (OpenAI's newer models translate otherwise);
# the endpoint is still part of its API and of ours.
@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")
def test_translation_of_german_speech(client: openai.OpenAI, server: Live, german: Path) -> None:
    with german.open("rb") as fh:
        raw = client.audio.translations.with_raw_response.create(
            model="whisper-1", file=fh, response_format="verbose_json"
        )
    result = raw.parse()
    words = set(normalise_words(result.text))
    assert result.language == "english"
    assert "software" in words
    assert len(words & {"the", "and", "of", "to", "this", "any", "or"}) >= 2, result.text
    assert len(words & GERMAN_WORDS) <= 1, result.text  # not German any more
    # The job behind it detected German.
    job_id = raw.headers["x-reelscribe-job"]
    with server.client() as admin:
        summary = admin.get(f"/api/jobs/{job_id}/result").json()["summary"]
    assert json.dumps(summary).count('"de"') >= 1


def test_streaming(client: openai.OpenAI, jfk: Path) -> None:
    with jfk.open("rb") as fh:
        events = list(client.audio.transcriptions.create(model="whisper-1", file=fh, stream=True))
    assert [e.type for e in events[:-1]] == ["transcript.text.delta"] * (len(events) - 1)
    assert len(events) >= 2
    done = events[-1]
    assert done.type == "transcript.text.done"
    deltas = "".join(e.delta for e in events[:-1])  # type: ignore[union-attr]
    assert deltas == done.text
    assert_jfk(done.text)


def test_same_text_as_the_jobs_api(client: openai.OpenAI, server: Live, jfk: Path) -> None:
    with jfk.open("rb") as fh:
        via_v1 = client.audio.transcriptions.create(model="whisper-1", file=fh, language="en")
    with server.client() as api, jfk.open("rb") as fh:
        upload = api.post("/api/uploads", content=fh, headers={"X-Filename": "jfk.flac"}).json()
        spec = {"source": {"upload_id": upload["id"]}, "outputs": ["json"],
                "options": {"language": "en"}}  # fmt: skip
        job = api.post("/api/jobs", json=spec)
        assert job.status_code == 202, job.text
        deadline = time.monotonic() + 240
        while (status := api.get(f"/api/jobs/{job.json()['id']}").json()["status"]) != "done":
            assert status in ("queued", "processing"), status
            assert time.monotonic() < deadline
            time.sleep(0.3)
        transcript = api.get(f"/api/jobs/{job.json()['id']}/result").json()["transcript"]
    via_jobs = " ".join(s["text"].strip() for s in transcript["segments"] if s["text"].strip())
    assert via_v1.text == via_jobs
    assert_jfk(via_jobs)


def test_v1_requests_are_jobs_in_the_list(client: openai.OpenAI, server: Live) -> None:
    with server.client() as admin:
        jobs = admin.get("/api/jobs", params={"limit": 200}).json()["items"]
    from_v1 = [j for j in jobs if j["spec"]["metadata"].get("api") == "openai"]
    assert from_v1, "the /v1 requests show in the job list (and so in the web UI)"
    assert all(j["status"] == "done" for j in from_v1)
    assert {j["spec"]["priority"] for j in from_v1} == {"fast"}


def test_wrong_key_and_unknown_model(server: Live, jfk: Path) -> None:
    with openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="rsk_wrong") as wrong:
        with pytest.raises(openai.AuthenticationError) as denied, jfk.open("rb") as fh:
            wrong.audio.transcriptions.create(model="whisper-1", file=fh)
        assert denied.value.code == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            wrong.models.list()
    with openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=ADMIN_SECRET) as client:
        with pytest.raises(openai.NotFoundError) as missing, jfk.open("rb") as fh:
            client.audio.transcriptions.create(model="no-such-model", file=fh)
        assert missing.value.code == "model_not_found"
        assert missing.value.body["type"] == "invalid_request_error"  # type: ignore[index]
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve("no-such-model")


def test_bad_requests_get_openai_errors(client: openai.OpenAI, server: Live, jfk: Path) -> None:
    with pytest.raises(openai.BadRequestError) as bad, jfk.open("rb") as fh:
        client.audio.transcriptions.create(model="whisper-1", file=fh,
                                           response_format="pdf")  # type: ignore[arg-type]  # fmt: skip
    assert bad.value.param == "response_format"
    with pytest.raises(openai.BadRequestError) as bad, jfk.open("rb") as fh:
        client.audio.transcriptions.create(model="whisper-1", file=fh, temperature=3)
    assert bad.value.param == "temperature"
    with pytest.raises(openai.BadRequestError) as bad, jfk.open("rb") as fh:
        client.audio.transcriptions.create(model="whisper-1", file=fh, language="english")
    assert bad.value.param == "language"
    assert "language" in bad.value.message
    with httpx.Client(base_url=server.base_url, timeout=30,
                      headers={"Authorization": f"Bearer {ADMIN_SECRET}"}) as http:  # fmt: skip
        no_file = http.post("/v1/audio/transcriptions", data={"model": "whisper-1"})
        assert no_file.status_code == 400
        assert no_file.json() == {"error": {
            "message": no_file.json()["error"]["message"], "type": "invalid_request_error",
            "param": "file", "code": "invalid_value"}}  # fmt: skip
        unknown = http.get("/v1/nothing-here")
        assert unknown.status_code == 404
        assert set(unknown.json()["error"]) == {"message", "type", "param", "code"}
        # /api keeps its own shape.
        ours = http.get("/api/jobs/no-such-job")
        assert ours.status_code == 404
        assert set(ours.json()["error"]) == {"code", "message", "details"}


def test_wait_past_the_limit_is_a_clear_504(start_api: StartApi, jfk: Path) -> None:
    live = start_api(openai_wait_seconds=0.5)  # no worker: the job stays queued
    with (
        openai.OpenAI(base_url=f"{live.base_url}/v1", api_key=ADMIN_SECRET) as client,
        pytest.raises(openai.APIStatusError) as late,
        jfk.open("rb") as fh,
    ):
        client.audio.transcriptions.create(model="whisper-1", file=fh)
    assert late.value.status_code == 504
    assert late.value.code == "transcription_timeout"
    assert "0.5 s" in late.value.message
    with live.client() as admin:
        jobs = admin.get("/api/jobs").json()["items"]
    # Told not to retry: one request, one job (which carries on).
    assert len(jobs) == 1
    assert jobs[0]["id"] in late.value.message
    assert jobs[0]["status"] == "queued"
    # Streamed, the same error arrives as an error event, which the client raises.
    with (
        openai.OpenAI(base_url=f"{live.base_url}/v1", api_key=ADMIN_SECRET) as client,
        pytest.raises(openai.APIError, match=r"did not finish within 0\.5 s"),
        jfk.open("rb") as fh,
    ):
        list(client.audio.transcriptions.create(model="whisper-1", file=fh, stream=True))


def test_keyless_server_takes_any_key(start_api: StartApi) -> None:
    live = start_api(allow_anonymous=True, admin_api_key=None)
    with openai.OpenAI(base_url=f"{live.base_url}/v1", api_key="anything") as client:
        assert next(m.id for m in client.models.list()) == "whisper-1"


def test_scopes_apply(server: Live, jfk: Path) -> None:
    with server.client() as admin:
        body = {"name": "reader", "scopes": ["read"]}
        secret = admin.post("/api/keys", json=body).json()["secret"]
    with openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=secret) as reader:
        assert reader.models.list().data
        with pytest.raises(openai.PermissionDeniedError), jfk.open("rb") as fh:
            reader.audio.transcriptions.create(model="whisper-1", file=fh)


def test_quota_and_rate_limit_apply(server: Live, jfk: Path) -> None:
    with server.client() as admin:
        body = {"name": "small", "scopes": ["submit", "read"], "quota_audio_minutes_per_day": 0.05}
        small = admin.post("/api/keys", json=body).json()["secret"]
        body = {"name": "slow", "scopes": ["read"], "rate_limit_per_minute": 1}
        slow = admin.post("/api/keys", json=body).json()["secret"]
    with openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=small) as client:
        with jfk.open("rb") as fh:  # the duration is known once a worker has probed it
            assert_jfk(client.audio.transcriptions.create(model="whisper-1", file=fh).text)
        with pytest.raises(openai.RateLimitError) as spent, jfk.open("rb") as fh:
            client.audio.transcriptions.create(model="whisper-1", file=fh)
    assert spent.value.code == "insufficient_quota"
    with httpx.Client(base_url=server.base_url, timeout=30,
                      headers={"Authorization": f"Bearer {slow}"}) as http:  # fmt: skip
        assert http.get("/v1/models").status_code == 200
        limited = http.get("/v1/models")
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"]["type"] == "requests"
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
