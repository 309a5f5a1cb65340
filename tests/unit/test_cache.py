"""The download cache: hits, LRU eviction under the cap, touch on hit, aliases and
concurrent writers."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from reelscribe.pipeline.cache import DownloadCache, cache_key


class Clock:
    """A settable clock, so "least recently used" does not depend on timer resolution."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def tick(self) -> None:
        self.now += 10.0


def _file(directory: Path, name: str, size: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(name.encode()[:1] * size)
    return path


def _cached_fetch(cache: DownloadCache, key: str, dest: Path, produce: Callable[[], Path]) -> Path:
    """How the fetch stage uses the cache: check out on a hit, produce and store on a miss."""
    hit = cache.checkout(key, dest)
    if hit is not None:
        return hit[0]
    path = produce()
    cache.put(key, path)
    return path


def test_hit_skips_the_work(tmp_path: Path) -> None:
    cache = DownloadCache(tmp_path / "cache", 10_000)
    calls: list[int] = []

    def produce() -> Path:
        calls.append(1)
        return _file(tmp_path / "job1", "video.mp4", 100)

    first = _cached_fetch(cache, "k", tmp_path / "job1", produce)
    second = _cached_fetch(cache, "k", tmp_path / "job2", produce)
    assert len(calls) == 1
    assert second.parent == tmp_path / "job2"
    assert second.name == "video.mp4"
    assert second.read_bytes() == first.read_bytes()


def test_put_and_get_keep_meta_and_protect_the_bytes(tmp_path: Path) -> None:
    cache = DownloadCache(tmp_path / "cache", 10_000)
    src = _file(tmp_path / "job", "a.webm", 300)
    entry = cache.put("key1", src, {"title": "A title", "section_start": 1.5})
    assert entry is not None
    assert entry.size == 300
    assert entry.meta["title"] == "A title"
    assert entry.meta["section_start"] == 1.5
    assert entry.path.suffix == ".webm"
    # Read-only: a stage cannot rewrite the cached bytes through its hard link.
    assert not os.stat(entry.path).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    got = cache.get("key1")
    assert got is not None
    assert got.path == entry.path
    assert cache.get("other") is None


def test_lru_eviction_under_the_cap_with_touch_on_hit(tmp_path: Path) -> None:
    clock = Clock()
    cache = DownloadCache(tmp_path / "cache", 1000, clock=clock)
    for name in ("a", "b", "c"):
        assert cache.put(name, _file(tmp_path / "src", f"{name}.bin", 300)) is not None
        clock.tick()
    assert cache.total_bytes() == 900
    # "a" is the oldest, but using it makes "b" the least recently used.
    assert cache.get("a") is not None
    clock.tick()
    cache.put("d", _file(tmp_path / "src", "d.bin", 300))
    assert cache.get("b") is None
    assert {k for k in "acd" if cache.get(k) is not None} == set("acd")
    assert cache.total_bytes() <= 1000


def test_eviction_removes_several_to_fit_and_never_the_new_entry(tmp_path: Path) -> None:
    clock = Clock()
    cache = DownloadCache(tmp_path / "cache", 1000, clock=clock)
    for name in ("a", "b", "c"):
        cache.put(name, _file(tmp_path / "src", f"{name}.bin", 300))
        clock.tick()
    cache.put("big", _file(tmp_path / "src", "big.bin", 900))
    assert cache.get("big") is not None
    assert [k for k in "abc" if cache.get(k) is not None] == []
    assert cache.total_bytes() == 900


def test_file_larger_than_the_cap_or_disabled_cache_stores_nothing(tmp_path: Path) -> None:
    src = _file(tmp_path / "src", "x.bin", 500)
    assert DownloadCache(tmp_path / "c1", 499).put("x", src) is None
    disabled = DownloadCache(tmp_path / "c2", 0)
    assert disabled.put("x", src) is None
    assert disabled.get("x") is None
    assert not (tmp_path / "c2").exists()


def test_alias_finds_the_entry_until_it_is_evicted(tmp_path: Path) -> None:
    clock = Clock()
    cache = DownloadCache(tmp_path / "cache", 600, clock=clock)
    cache.put("canonical", _file(tmp_path / "src", "v.mp4", 300), aliases=["by-url"])
    hit = cache.checkout("by-url", tmp_path / "job")
    assert hit is not None
    assert hit[1].key == "canonical"
    clock.tick()
    cache.put("n1", _file(tmp_path / "src", "n1.bin", 300))
    clock.tick()
    cache.put("n2", _file(tmp_path / "src", "n2.bin", 300))  # evicts "canonical"
    assert cache.get("by-url") is None
    # The checked-out link outlives the evicted entry.
    assert hit[0].read_bytes() == b"v" * 300


def test_concurrent_writers_keep_entries_whole(tmp_path: Path) -> None:
    cache_root = tmp_path / "cache"
    sources = [_file(tmp_path / "src", f"f{i}.bin", 100 + i) for i in range(16)]

    def put(i: int) -> None:
        # A cache object per worker, as separate processes would have.
        cache = DownloadCache(cache_root, 1000)
        cache.put("same", sources[i])
        cache.put(f"own{i}", sources[i])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(16)))
    cache = DownloadCache(cache_root, 1000)
    same = cache.get("same")
    assert same is not None
    assert same.path.read_bytes() in {s.read_bytes() for s in sources}
    assert same.size == len(same.path.read_bytes())
    assert cache.total_bytes() <= 1000
    assert list((cache_root / "tmp").iterdir()) == []


def test_cache_key_is_stable_and_distinguishes_parts() -> None:
    assert cache_key("ytdlp", "Youtube", "abc", "251") == cache_key(
        "ytdlp", "Youtube", "abc", "251"
    )
    assert cache_key("ytdlp", "Youtube", "abc", "251") != cache_key(
        "ytdlp", "Youtube", "abc", "140"
    )
    assert cache_key("a", None) != cache_key("a", "None")
    assert len(cache_key("x")) == 40


@pytest.mark.parametrize("existing", [0, 2])
def test_checkout_never_overwrites_a_file_in_the_job_dir(tmp_path: Path, existing: int) -> None:
    cache = DownloadCache(tmp_path / "cache", 10_000)
    cache.put("k", _file(tmp_path / "src", "clip.mp4", 10))
    job = tmp_path / "job"
    job.mkdir()
    names = ["clip.mp4", *(f"clip-{i}.mp4" for i in range(1, existing))][:existing]
    for name in names:
        (job / name).write_text("mine")
    hit = cache.checkout("k", job)
    assert hit is not None
    assert hit[0].name not in names
    assert all((job / name).read_text() == "mine" for name in names)
