"""Scratch folders of running jobs (``reelscribe-job-*`` in the temp directory), and
the sweep that removes those whose process died (a SIGKILLed worker leaves its job's
download and intermediate files behind).

Each folder holds an ``owner`` file: the pid of the process that made it and that
process's start time (so a reused pid is not mistaken for the owner). The sweep
removes a folder whose owner is gone, and a folder without an owner file once it is
older than ``max_age`` seconds (made by an older version, or killed before writing it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

log = logging.getLogger("reelscribe.worker")

PREFIX = "reelscribe-job-"
OWNER = "owner"


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot ('' where /proc is missing)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # The command name (field 2) may hold spaces and parentheses: split after it.
    return stat.rsplit(")", 1)[-1].split()[19]


def _alive(pid: int, started: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return not started or _start_time(pid) == started


def make(root: Path | None = None) -> Path:
    """A new scratch folder owned by this process."""
    path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=root))
    pid = os.getpid()
    (path / OWNER).write_text(f"{pid} {_start_time(pid)}\n")
    return path


def owner_alive(path: Path) -> bool | None:
    """True/False when the folder names its owner, None when it names none."""
    try:
        fields = (path / OWNER).read_text().split()
    except OSError:
        return None
    if not fields or not fields[0].isdigit():
        return None
    return _alive(int(fields[0]), fields[1] if len(fields) > 1 else "")


def sweep(root: Path | None = None, *, max_age: float = 6 * 3600.0) -> int:
    """Removes orphaned scratch folders under ``root`` (default: the temp directory);
    returns how many. Folders of live processes are never touched."""
    base = Path(root or tempfile.gettempdir())
    removed = 0
    now = time.time()
    with contextlib.suppress(OSError):
        candidates = [p for p in base.iterdir() if p.name.startswith(PREFIX) and p.is_dir()]
        for path in candidates:
            alive = owner_alive(path)
            if alive:
                continue
            if alive is None:
                try:
                    age = now - path.stat().st_mtime
                except OSError:
                    continue
                if age < max_age:
                    continue
            shutil.rmtree(path, ignore_errors=True)
            if not path.exists():
                removed += 1
                log.info("removed orphaned job folder %s", path)
    return removed
