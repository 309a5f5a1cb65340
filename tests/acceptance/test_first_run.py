"""A new user's first run: the README's quick start, as written, in a fresh home.

The commands come from the Makefile's ``run`` target and the README's code blocks (so a
change to either is tested), run as subprocesses with nothing but a fresh data and cache
directory (``XDG_DATA_HOME``, ``XDG_CACHE_HOME``), no ``REELSCRIBE_*`` settings, and a
free port instead of 8000 (which another process on a shared machine may hold).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pysrt
import pytest

from tests.conftest import REPO_ROOT, normalise_words

pytestmark = pytest.mark.media

CLI = str(Path(sys.executable).with_name("reelscribe"))
README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
MAKEFILE = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_run_commands() -> list[list[str]]:
    """The ``run`` target's recipe, with ``$(BIN)/`` as this venv's bin folder."""
    recipe = MAKEFILE.split("\nrun:", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    return [shlex.split(line.strip().replace("$(BIN)/reelscribe", CLI)) for line in recipe]


def readme_line(prefix: str) -> str:
    """The first line of a README code block that starts with ``prefix``."""
    for line in README.splitlines():
        if line.startswith(prefix):
            return line
    raise AssertionError(f"the README has no line starting with {prefix!r}")


@dataclass
class FirstRun:
    url: str
    env: dict[str, str]
    home: Path
    startup: str


def fresh_env(home: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELSCRIBE_")}
    env |= {
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "REELSCRIBE_PORT": str(port),
    }
    return env


def start_serve(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip


def wait_ready(proc: subprocess.Popen[str], url: str) -> str:
    """Waits for /readyz; returns what the process printed up to its access line."""
    assert proc.stdout is not None
    lines: list[str] = []
    while not any(line.startswith("access:") for line in lines):
        line = proc.stdout.readline()
        assert line, "reelscribe serve ended:\n" + "".join(lines)
        lines.append(line)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return "".join(lines)
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, "".join(lines)
        assert time.monotonic() < deadline, "reelscribe serve did not become ready"
        time.sleep(0.2)


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.wait(timeout=60)
    if proc.stdout is not None:
        proc.stdout.close()


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory, shared_media: Path) -> Iterator[FirstRun]:
    home = tmp_path_factory.mktemp("newuser")
    port = free_port()
    env = fresh_env(home, port)
    *prepare, serve = make_run_commands()
    assert serve == [CLI, "serve"], "make run starts plain `reelscribe serve`"
    for command in prepare:  # `reelscribe models`: assembles and verifies the model
        done = subprocess.run(command, env=env, cwd=home, capture_output=True, text=True,
                              timeout=300, check=False)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
    proc = start_serve(serve, env, home)
    url = f"http://127.0.0.1:{port}"
    try:
        startup = wait_ready(proc, url)
        yield FirstRun(url, env, home, startup)
    finally:
        stop(proc)


def test_quick_start_submit_waits_for_the_results(first_run: FirstRun, shared_media: Path) -> None:
    assert first_run.url in first_run.startup
    assert "keyless" in first_run.startup
    line = readme_line(".venv/bin/reelscribe submit ")
    args = shlex.split(line.replace(".venv/bin/reelscribe", CLI)
                       .replace("../shared/media", str(shared_media)))  # fmt: skip
    done = subprocess.run(args, env=first_run.env, cwd=first_run.home, capture_output=True,
                          text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = first_run.home / "out"
    assert sorted(p.suffix for p in out.iterdir()) == [".json", ".md", ".srt"]
    assert re.search(r"^srt\t.*jfk\.srt$", done.stdout, re.MULTILINE)
    subs = pysrt.open(str(out / "jfk.srt"))
    assert "country" in normalise_words(" ".join(s.text for s in subs))
    # Its state went where the README says: the fresh data directory.
    assert (first_run.home / "data" / "reelscribe" / "reelscribe.db").is_file()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_quick_start_openai_curl(first_run: FirstRun, shared_media: Path) -> None:
    line = readme_line("curl -s http://127.0.0.1:8000/v1/audio/transcriptions")
    line = line.replace("http://127.0.0.1:8000", first_run.url)
    args = shlex.split(line.replace("../shared/media", str(shared_media)))
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "country" in normalise_words(done.stdout), done.stdout


def test_submit_sends_every_option(first_run: FirstRun, shared_media: Path) -> None:
    args = [CLI, "submit", str(shared_media / "jfk.flac"), "--task", "translate",
            "--hotwords", "Kennedy", "--initial-prompt", "Inaugural address.",
            "--temperature", "0.2", "--words", "--max-line-chars", "30", "--font-size", "30",
            "--metadata", "ticket=42", "--metadata", "team=news", "--priority", "bulk",
            "--start", "1", "--end", "9", "--outputs", "txt", "--json"]  # fmt: skip
    done = subprocess.run(args, env=first_run.env, capture_output=True, text=True, timeout=120,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    job_id = json.loads(done.stdout)["id"]
    spec = httpx.get(f"{first_run.url}/api/jobs/{job_id}", timeout=30).json()["spec"]
    options = spec["options"]
    assert options["task"] == "translate"
    assert options["hotwords"] == "Kennedy"
    assert options["initial_prompt"] == "Inaugural address."
    assert options["temperature"] == pytest.approx(0.2)
    assert options["words_in_markdown"] is True
    assert options["cue_limits"]["max_chars_per_line"] == 30
    assert options["subtitle_style"]["font_size"] == 30
    assert options["subtitle_style"]["position"] == "bottom"  # unset: the default
    assert spec["metadata"] == {"ticket": "42", "team": "news"}
    assert (spec["priority"], spec["start"], spec["end"]) == ("bulk", 1, 9)
    bad = subprocess.run([*args[:3], "--metadata", "no-equals-sign"], env=first_run.env,
                         capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert bad.returncode == 2
    assert "KEY=VALUE" in bad.stderr


def test_serve_requiring_keys_says_how_to_get_one(tmp_path: Path) -> None:
    port = free_port()
    env = fresh_env(tmp_path, port)
    proc = start_serve([CLI, "serve", "--no-anonymous"], env, tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        startup = wait_ready(proc, url)
        assert "REELSCRIBE_ADMIN_API_KEY" in startup
        assert httpx.get(f"{url}/api/jobs", timeout=10).status_code == 401
    finally:
        stop(proc)
