"""Terminal progress for the CLI: rich bars on a terminal, plain lines otherwise.

Everything goes to stderr, so stdout carries only results (paths or ``--json``).
"""

from __future__ import annotations

import sys
import time
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.progress import (
    Progress as RichProgress,
)

from reelscribe.progress import Progress


class ProgressDisplay:
    """A :data:`~reelscribe.progress.ProgressCallback` that draws one bar per stage."""

    def __init__(self, *, enabled: bool = True, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._enabled = enabled
        self._fancy = enabled and self.console.is_terminal
        self._bars: RichProgress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._last_plain: dict[str, tuple[float, float]] = {}

    def __enter__(self) -> ProgressDisplay:
        if self._fancy:
            self._bars = RichProgress(
                TextColumn("[bold]{task.description:<10}"),
                BarColumn(),
                TextColumn("{task.percentage:>5.1f}%"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[message]}", style="dim"),
                console=self.console,
                transient=False,
            )
            self._bars.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bars is not None:
            self._bars.stop()

    def __call__(self, event: Progress) -> None:
        if not self._enabled:
            return
        if self._bars is not None:
            self._fancy_update(self._bars, event)
        else:
            self._plain_update(event)

    def _fancy_update(self, bars: RichProgress, event: Progress) -> None:
        task = self._tasks.get(event.stage)
        if task is None:
            task = bars.add_task(event.stage, total=1.0, message="")
            self._tasks[event.stage] = task
        completed = event.fraction if event.fraction is not None else None
        bars.update(task, completed=completed, message=event.message[:50])

    def _plain_update(self, event: Progress) -> None:
        # Not a terminal (CI logs, pipes): a line per 10 % step or per 5 s at most.
        if event.fraction is None:
            return  # a stage-start marker: nothing measurable to show yet
        now = time.monotonic()
        fraction = event.fraction
        last_fraction, last_time = self._last_plain.get(event.stage, (-1.0, 0.0))
        if fraction < 1.0 and fraction - last_fraction < 0.1 and now - last_time < 5.0:
            return
        self._last_plain[event.stage] = (fraction, now)
        eta = f" eta {event.eta:.0f}s" if event.eta is not None and fraction < 1.0 else ""
        pct = f"{fraction * 100:5.1f}%"
        print(
            f"{event.stage:<10} {pct}{eta} {event.message[:60]}".rstrip(),
            file=sys.stderr,
            flush=True,
        )
