"""Start-up: processes that open the same fresh PostgreSQL database together migrate
it one after the other (an advisory lock), instead of one dying on a duplicate table;
a process whose database is down waits for it (see tests/integration/chaos for the
real ``reelscribe api``/``worker`` processes)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from reelscribe.launch import open_runtime
from reelscribe.service.runtime import Runtime
from tests.integration.queue.services import temporary_postgres_database
from tests.integration.service.conftest import service_settings


def test_processes_starting_together_migrate_one_at_a_time(
    tmp_path: Path, models_dir: Path
) -> None:
    with temporary_postgres_database("startup") as url:
        settings = service_settings(tmp_path, models_dir, database_url=url)

        async def main() -> None:
            runtimes = [Runtime(settings) for _ in range(4)]
            await asyncio.gather(*(rt.__aenter__() for rt in runtimes))
            for rt in runtimes:
                await rt.__aexit__(None, None, None)

        asyncio.run(main())


def test_open_runtime_waits_for_the_database_and_stops_on_request(
    tmp_path: Path, models_dir: Path
) -> None:
    down = "postgresql://postgres@127.0.0.1:9/nowhere"  # nothing listens on port 9
    settings = service_settings(tmp_path, models_dir, database_url=down,
                                backend_retry_max_seconds=0.2)  # fmt: skip

    async def main() -> None:
        stop = asyncio.Event()
        opening = asyncio.ensure_future(open_runtime(settings, stop))
        await asyncio.sleep(1.0)
        assert not opening.done()  # still retrying, not crashed
        stop.set()
        assert await asyncio.wait_for(opening, 5) is None

    asyncio.run(main())


def test_a_worker_that_dies_is_started_again(
    tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reelscribe import launch as processes
    from reelscribe.worker import Worker

    runs: list[str] = []

    async def fake_run(self: Worker, *, burst: bool = False) -> None:
        runs.append(self.worker_id)
        if len(runs) == 1:
            raise RuntimeError("a bug in the worker")
        await self.stop.wait()

    monkeypatch.setattr(Worker, "run", fake_run)
    settings = service_settings(tmp_path, models_dir, backend_retry_max_seconds=0.2)

    async def main() -> None:
        async with Runtime(settings) as rt:
            stop = asyncio.Event()
            first = Worker(rt)
            first.stop = stop
            tasks = [asyncio.create_task(first.run())]
            supervisor = asyncio.ensure_future(processes._supervise(rt, stop, tasks))
            for _ in range(100):
                if len(runs) == 2:
                    break
                await asyncio.sleep(0.05)
            stop.set()
            await asyncio.wait_for(supervisor, 5)
            await asyncio.gather(*tasks)

    asyncio.run(main())
    assert len(runs) == 2
    assert runs[0] != runs[1]
