"""``reelscribe estimate`` in a subprocess: defaults before anything is measured (and no
job database made), the deployment's measured speeds once its database has finished
jobs, URLs probed by range, and one line with exit code 2 for bad input."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reelscribe.backends.db import JobRow, JobStatus, create_engine
from reelscribe.migrations import upgrade
from tests.rangeserver import RangeServer

CLI = str(Path(sys.executable).with_name("reelscribe"))
#: A finished job's result as a worker stores it: 11 s of media, each step's seconds.
TIMINGS = {"fetch": 0.11, "probe": 0.011, "audio": 0.22, "transcribe": 3.0, "render": 0.011}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    values = dict(os.environ)
    values["REELSCRIBE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'jobs.db'}"
    values["REELSCRIBE_DEVICE"] = "cpu"
    values["REELSCRIBE_PRICE_CPU_PER_HOUR"] = "36"
    values.pop("REELSCRIBE_ALLOWED_NETWORKS", None)
    return values


def estimate(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, "estimate", *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip


def _json(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr
    body: dict[str, Any] = json.loads(done.stdout)
    return body


def _finished_job(url: str) -> None:
    upgrade(url)
    result = {"start": 0.0, "end": None, "media": {"duration": 11.0}, "timings": TIMINGS,
              "transcript": {"model": {"name": "base", "device": "cpu"}}}  # fmt: skip

    async def insert() -> None:
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.execute(JobRow.__table__.insert().values(
                id="job-1", spec={}, status=JobStatus.DONE, result=result,
                finished_at=datetime.now(UTC),
            ))  # fmt: skip
        await engine.dispose()

    asyncio.run(insert())


def test_defaults_until_measured_then_the_deployments_speeds(
    env: dict[str, str], shared_media: Path, tmp_path: Path
) -> None:
    jfk = str(shared_media / "jfk.flac")
    first = estimate(env, jfk, "--json")
    body = _json(first)
    assert body["source_duration"] == pytest.approx(11.0, abs=0.1)
    assert [s["name"] for s in body["steps"]] == ["fetch", "probe", "audio", "transcribe", "render"]
    assert body["basis"] == "default"
    assert "default speeds" in first.stderr
    assert not (tmp_path / "jobs.db").exists()  # an estimate never makes a database

    _finished_job(env["REELSCRIBE_DATABASE_URL"])
    measured = _json(estimate(env, jfk, "--json"))
    assert measured["basis"] == "measured"
    steps = {s["name"]: s["seconds"] for s in measured["steps"]}
    assert steps["transcribe"] == pytest.approx(3.0)
    assert measured["seconds"] == pytest.approx(sum(TIMINGS.values()), abs=0.01)
    assert measured["cost"]["compute"] == pytest.approx(measured["seconds"] * 0.01, rel=0.01)

    # A range: 7 s of media; Whisper still reads one 30-second window.
    clip = _json(estimate(env, jfk, "--start", "2", "--end", "9", "--clip", "--json"))
    assert clip["media_seconds"] == pytest.approx(7.0)
    names = [s["name"] for s in clip["steps"]]
    assert names == ["fetch", "probe", "clip", "audio", "transcribe", "render"]
    assert {s["name"]: s["seconds"] for s in clip["steps"]}["transcribe"] == pytest.approx(3.0)

    table = estimate(env, jfk, "--start", "2")
    assert table.returncode == 0, table.stderr
    assert "9 s of media" in table.stdout
    assert "measured (1 jobs)" in table.stdout


@pytest.fixture
def web(shared_media: Path, tmp_path: Path) -> Iterator[RangeServer]:
    root = tmp_path / "web"
    root.mkdir()
    shutil.copy(shared_media / "jfk.flac", root / "jfk.flac")
    with RangeServer(root) as server:
        yield server


def test_a_url_is_probed_by_range(env: dict[str, str], web: RangeServer) -> None:
    env["REELSCRIBE_ALLOWED_NETWORKS"] = "127.0.0.1/32"
    body = _json(estimate(env, web.url("/jfk.flac"), "--json"))
    assert body["probe"] == "range"
    assert body["source_duration"] == pytest.approx(11.0, abs=0.1)
    assert web.bytes_sent["/jfk.flac"] < 1152693 // 4


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["/no/such/file.flac"], "no such file"),
        (["{jfk}", "--start", "20"], "beyond the end of the media"),
        (["{jfk}", "--start", "9", "--end", "2"], "end"),
        (["{url}"], "loopback"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    env: dict[str, str], shared_media: Path, web: RangeServer, args: list[str], words: str
) -> None:
    values = {"jfk": str(shared_media / "jfk.flac"), "url": web.url("/jfk.flac")}
    done = estimate(env, *(a.format(**values) for a in args))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("reelscribe: error:")
    assert words in lines[0]
    assert web.count() == 0
