"""The download cache: fetched media kept on disk under a size cap, least recently used
evicted first.

Layout under the cache root::

    entries/<key>/media.<ext>   the file, read-only (checkouts are hard links to it)
    entries/<key>/meta.json     what the fetch stage needs to rebuild its result;
                                its mtime is the entry's last use
    aliases/<alias>             a text file naming the entry another key points to
    tmp/                        entries being built or deleted
    .lock                       flock'ed while the index changes

An entry is built in ``tmp/`` and renamed into ``entries/`` in one step, so readers in
other processes see either nothing or a complete entry. Lookups, inserts and
evictions hold an exclusive ``flock`` so an entry cannot be evicted between a hit and
its checkout. Checked-out files are hard links (a copy across file systems), so a job
keeps its file even if the entry is evicted while it runs; cached files are made
read-only so no stage can change the cached bytes through its link.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.platform != "win32":
    import fcntl

_META = "meta.json"
#: Builds left in tmp/ by a crashed process are removed after this long (seconds).
_STALE_TMP = 6 * 3600.0


def cache_key(*parts: object) -> str:
    """A stable file-name-safe key for ``parts`` (strings, numbers, ``None``, tuples)."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:40]


@dataclass(frozen=True, slots=True)
class CacheEntry:
    key: str
    #: The cached file itself; use :meth:`DownloadCache.checkout` to get a private link.
    path: Path
    size: int
    meta: Mapping[str, Any]


class DownloadCache:
    """A size-capped LRU cache of downloaded files. ``max_bytes=0`` disables it."""

    def __init__(
        self, root: Path, max_bytes: int, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._clock = clock
        self._entries = self.root / "entries"
        self._aliases = self.root / "aliases"
        self._tmp = self.root / "tmp"

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    # --- reading --------------------------------------------------------------------

    def get(self, key: str) -> CacheEntry | None:
        """The entry under ``key`` (or an alias of it), marked as just used; ``None`` on a miss."""
        if not self.enabled:
            return None
        with self._lock():
            return self._get_locked(key)

    def checkout(self, key: str, dest_dir: Path) -> tuple[Path, CacheEntry] | None:
        """On a hit, links the cached file into ``dest_dir`` and returns the link."""
        if not self.enabled:
            return None
        with self._lock():
            entry = self._get_locked(key)
            if entry is None:
                return None
            name = str(entry.meta.get("name") or entry.path.name)
            Path(dest_dir).mkdir(parents=True, exist_ok=True)
            target = _unique_path(Path(dest_dir), name)
            _link_or_copy(entry.path, target)
            return target, entry

    def _get_locked(self, key: str) -> CacheEntry | None:
        entry_dir = self._entries / key
        if not entry_dir.is_dir():
            alias = self._aliases / key
            try:
                entry_dir = self._entries / alias.read_text().strip()
            except FileNotFoundError:
                return None
            if not entry_dir.is_dir():
                alias.unlink(missing_ok=True)  # its entry was evicted
                return None
        entry = self._load(entry_dir)
        if entry is not None:
            now = self._clock()
            os.utime(entry_dir / _META, (now, now))
        return entry

    def _load(self, entry_dir: Path) -> CacheEntry | None:
        try:
            meta = json.loads((entry_dir / _META).read_text())
            path = entry_dir / str(meta["file"])
            size = path.stat().st_size
        except (OSError, ValueError, KeyError):
            return None
        return CacheEntry(key=entry_dir.name, path=path, size=size, meta=meta)

    # --- writing --------------------------------------------------------------------

    def put(
        self,
        key: str,
        src: Path,
        meta: Mapping[str, Any] | None = None,
        *,
        aliases: Iterable[str] = (),
    ) -> CacheEntry | None:
        """Stores ``src`` (left in place: linked, or copied across file systems) under
        ``key`` and ``aliases``, then evicts down to the cap. Returns ``None`` when the
        cache is disabled or the file alone is over the cap. If another process stored
        the same key meanwhile, its entry wins and is returned."""
        size = src.stat().st_size
        if not self.enabled or size > self.max_bytes:
            return None
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._entries.mkdir(parents=True, exist_ok=True)
        build = Path(tempfile.mkdtemp(prefix="put-", dir=self._tmp))
        try:
            file_name = "media" + "".join(src.suffixes[-1:])
            _link_or_copy(src, build / file_name)
            (build / file_name).chmod(0o444)
            record = {**(meta or {}), "file": file_name, "name": src.name, "size": size}
            (build / _META).write_text(json.dumps(record, sort_keys=True, default=str))
            now = self._clock()
            os.utime(build / _META, (now, now))
            with self._lock():
                with contextlib.suppress(FileExistsError, OSError):
                    # rename(2) of a directory onto a non-empty one fails: first writer wins.
                    build.rename(self._entries / key)
                for alias in aliases:
                    self._write_alias(alias, key)
                self._evict_locked(keep=key)
                return self._get_locked(key)
        finally:
            shutil.rmtree(build, ignore_errors=True)

    def add_alias(self, alias: str, key: str) -> None:
        """Makes ``alias`` find the entry under ``key`` (e.g. a URL before extraction)."""
        if self.enabled:
            with self._lock():
                self._write_alias(alias, key)

    def _write_alias(self, alias: str, key: str) -> None:
        if alias == key:
            return
        self._aliases.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="alias-", dir=self._aliases)
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        Path(tmp).replace(self._aliases / alias)

    # --- eviction -------------------------------------------------------------------

    def total_bytes(self) -> int:
        return sum(size for _, _, size in self._scan())

    def evict(self) -> list[str]:
        """Removes least recently used entries until the cache fits its cap."""
        with self._lock():
            return self._evict_locked(keep=None)

    def _evict_locked(self, keep: str | None) -> list[str]:
        entries = sorted(self._scan(), key=lambda e: e[1])  # oldest use first
        total = sum(size for _, _, size in entries)
        evicted: list[str] = []
        for entry_dir, _, size in entries:
            if total <= self.max_bytes:
                break
            if entry_dir.name == keep:
                continue
            # Renamed away first so no reader ever sees a half-deleted entry.
            doomed = self._tmp / f"del-{entry_dir.name}-{os.getpid()}"
            entry_dir.rename(doomed)
            shutil.rmtree(doomed, ignore_errors=True)
            total -= size
            evicted.append(entry_dir.name)
        self._clean_tmp()
        return evicted

    def _scan(self) -> Iterator[tuple[Path, float, int]]:
        """(entry dir, last use, media bytes) for every complete entry."""
        if not self._entries.is_dir():
            return
        for entry_dir in self._entries.iterdir():
            try:
                used = (entry_dir / _META).stat().st_mtime
                # The cap is about media; the few hundred bytes of meta.json are not counted.
                size = sum(f.stat().st_size for f in entry_dir.iterdir() if f.name != _META)
            except OSError:
                continue
            yield entry_dir, used, size

    def _clean_tmp(self) -> None:
        if not self._tmp.is_dir():
            return
        cutoff = time.time() - _STALE_TMP
        for leftover in self._tmp.iterdir():
            with contextlib.suppress(OSError):
                if leftover.stat().st_mtime < cutoff:
                    shutil.rmtree(leftover, ignore_errors=True)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        if sys.platform == "win32":  # pragma: no cover - renames alone keep entries whole
            yield
            return
        with (self.root / ".lock").open("a") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:  # another file system, or links not supported
        shutil.copyfile(src, dest)


def _unique_path(directory: Path, name: str) -> Path:
    """``directory/name``, or ``stem-1.ext``, ``stem-2.ext`` … if taken."""
    candidate = directory / name
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 0
    while candidate.exists():
        n += 1
        candidate = directory / f"{stem}-{n}{suffix}"
    return candidate
