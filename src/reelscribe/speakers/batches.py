"""Running the networks over batches on several cores at once.

Each batch runs single-threaded inside torch, and batches run side by side in a small
thread pool (torch releases the GIL inside its kernels). The usual alternative, one
batch at a time with torch's own intra-op threads, splits every tiny LSTM step across
threads and waits at a barrier after each: when other programs keep a core busy, every
barrier waits for a descheduled thread. On our 2-core machine under load that made
2 threads 5-15x *slower* than 1; independent batches just finish a little later.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def run_batches(
    fn: Callable[[T], R],
    batches: Sequence[T],
    workers: int,
    on_done: Callable[[int], None] | None = None,
) -> list[R]:
    """``fn`` over ``batches``, ``workers`` at a time; results in order.

    ``on_done(count)`` is called in the caller's thread as results arrive, so a
    progress callback never runs on a pool thread.
    """
    results: list[R] = []
    if workers <= 1 or len(batches) <= 1:
        for batch in batches:
            results.append(fn(batch))
            if on_done is not None:
                on_done(len(results))
        return results
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="diarize") as pool:
        for result in pool.map(fn, batches):
            results.append(result)
            if on_done is not None:
                on_done(len(results))
    return results
