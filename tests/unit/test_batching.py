"""GroupCommit: callers arriving while a batch is written share the next one."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from reelscribe.backends.db.batching import GroupCommit


class Recorder:
    def __init__(self, delay: float = 0.01) -> None:
        self.batches: list[list[int]] = []
        self.delay = delay

    async def flush(self, items: Sequence[int]) -> list[int | BaseException]:
        self.batches.append(list(items))
        await asyncio.sleep(self.delay)  # the "database"
        return [ValueError(f"bad {i}") if i < 0 else i * 10 for i in items]


def test_callers_waiting_on_a_write_share_the_next_batch() -> None:
    recorder = Recorder()

    async def main() -> list[int]:
        batcher = GroupCommit(recorder.flush)
        first = asyncio.create_task(batcher(1))
        await asyncio.sleep(0.001)  # the first batch is being written...
        rest = [asyncio.create_task(batcher(n)) for n in range(2, 12)]
        return [await first, *[await task for task in rest]]

    assert asyncio.run(main()) == [n * 10 for n in range(1, 12)]
    assert recorder.batches == [[1], list(range(2, 12))]


def test_an_item_error_fails_only_its_caller() -> None:
    async def main() -> list[object]:
        batcher = GroupCommit(Recorder().flush)
        return await asyncio.gather(batcher(1), batcher(-1), batcher(2), return_exceptions=True)

    one, bad, two = asyncio.run(main())
    assert (one, two) == (10, 20)
    assert isinstance(bad, ValueError)
    assert str(bad) == "bad -1"


def test_a_failed_flush_fails_its_batch_and_the_next_batch_still_runs() -> None:
    calls = 0

    async def flaky(items: Sequence[int]) -> list[int | BaseException]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database went away")
        return list(items)

    async def main() -> tuple[list[object], int]:
        batcher = GroupCommit(flaky)
        failed = await asyncio.gather(batcher(1), batcher(2), return_exceptions=True)
        return failed, await batcher(3)

    failed, later = asyncio.run(main())
    assert [type(e) for e in failed] == [ConnectionError, ConnectionError]
    assert later == 3


def test_a_caller_that_gives_up_does_not_interrupt_the_batch() -> None:
    recorder = Recorder(delay=0.05)

    async def main() -> int:
        batcher = GroupCommit(recorder.flush)
        quitter = asyncio.create_task(batcher(1))
        stayer = asyncio.create_task(batcher(2))
        await asyncio.sleep(0.01)
        quitter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await quitter
        return await stayer

    assert asyncio.run(main()) == 20
    assert recorder.batches == [[1, 2]]


def test_batches_are_capped() -> None:
    recorder = Recorder(delay=0.0)

    async def main() -> None:
        batcher = GroupCommit(recorder.flush, max_batch=4)
        await asyncio.gather(*[batcher(n) for n in range(10)])

    asyncio.run(main())
    assert [len(b) for b in recorder.batches] == [4, 4, 2]
