"""Progress reporting shared by every stage.

A stage takes an optional :data:`ProgressCallback` and calls it with
:class:`Progress` snapshots; it never knows whether a terminal bar, a log line or
a job's event log is listening.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Progress:
    stage: str
    #: 0.0–1.0, or ``None`` when the total is unknown.
    fraction: float | None = None
    message: str = ""
    #: Estimated seconds left in this stage, when it can be estimated.
    eta: float | None = None


ProgressCallback = Callable[[Progress], None]


def noop_progress(_: Progress) -> None:
    """A callback that ignores everything."""


class EtaTracker:
    """Estimates the time left from the fraction done so far (linear extrapolation)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._started = clock()

    def eta(self, fraction: float) -> float | None:
        if fraction <= 0.0:
            return None
        elapsed = self._clock() - self._started
        return max(0.0, elapsed * (1.0 - fraction) / fraction)


def report(
    callback: ProgressCallback | None,
    stage: str,
    fraction: float | None,
    message: str = "",
    eta: float | None = None,
) -> None:
    """Calls ``callback`` if there is one, clamping ``fraction`` into [0, 1]."""
    if callback is None:
        return
    if fraction is not None:
        fraction = min(1.0, max(0.0, float(fraction)))
    callback(Progress(stage, fraction, message, None if eta is None else float(eta)))
