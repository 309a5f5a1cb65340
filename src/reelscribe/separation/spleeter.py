"""Spleeter 2-stem (vocals / accompaniment), run in its own virtualenv.

The env is made by :mod:`~reelscribe.separation.spleeter_env`; each separation runs
``spleeter_runner.py`` (shipped beside this module) in it as a subprocess. Audio goes
through files, progress comes back as stdout lines, and a failure's reason is the last
line of its stderr.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections import deque
from pathlib import Path
from typing import IO

from reelscribe.errors import ProcessingError
from reelscribe.media.ffmpeg import check_abort
from reelscribe.separation.base import Fraction
from reelscribe.separation.spleeter_env import SpleeterEnv, ensure_env

RUNNER = Path(__file__).with_name("spleeter_runner.py")
_PREFIX = "reelscribe-progress "


class SpleeterSeparator:
    def __init__(self, root: Path, python: str | None = None) -> None:
        self._root = root
        self._python = python
        self._env: SpleeterEnv | None = None

    def env(self) -> SpleeterEnv:
        """The virtualenv, built on first use (minutes, once per machine)."""
        if self._env is None:
            self._env = ensure_env(self._root, self._python)
        return self._env

    def separate(self, mix: Path, vocals: Path, progress: Fraction | None = None) -> None:
        env = self.env()
        # On CPU: Spleeter runs at 0.02-0.06x real time there, and on a GPU TensorFlow
        # would reserve 70 % of the memory Whisper needs next.
        environ = {**os.environ, "PYTHONNOUSERSITE": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
                   "CUDA_VISIBLE_DEVICES": ""}  # fmt: skip
        with subprocess.Popen(
            # -I: the runner's folder must not go on sys.path (this module is named
            # spleeter.py too), nor PYTHONPATH's packages (numpy 2) before the env's.
            [str(env.python), "-I", str(RUNNER), str(mix), str(vocals)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            text=True, env=environ,
        ) as proc:  # fmt: skip
            assert proc.stdout is not None
            assert proc.stderr is not None
            errors: deque[str] = deque(maxlen=20)
            # stderr is drained on its own thread: TensorFlow can fill the pipe's
            # buffer while this one waits on stdout, and both would block.
            drain = threading.Thread(target=_collect, args=(proc.stderr, errors), daemon=True)
            drain.start()
            try:
                for line in proc.stdout:
                    check_abort()  # a cancelled job stops the subprocess too
                    if line.startswith(_PREFIX) and progress is not None:
                        progress(float(line[len(_PREFIX) :]))
            except BaseException:
                proc.kill()
                raise
            code = proc.wait()
            drain.join()
        if code != 0:
            last = next((e for e in reversed(errors) if e.strip()), f"exit code {code}")
            raise ProcessingError(f"vocal separation (spleeter) failed: {last.strip()}")


def _collect(stream: IO[str], into: deque[str]) -> None:
    for line in stream:
        into.append(line)
