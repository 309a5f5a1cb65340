"""Prometheus metrics, read from the job tables at scrape time.

The table is the one place every process writes to (API, workers on any host), so a
scrape of any API process sees the whole service. Gauges: queue depth and jobs per
status. Summaries over :data:`WINDOW` (their quantiles, count and sum cover that
window, not all time): step durations from ``step_finish`` events, and claim latency,
the time from when a job became due (``run_after``) to when a worker claimed it
(``started_at``).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from reelscribe.backends.db import JobStatus, stats, workers
from reelscribe.service.runtime import Runtime

WINDOW = timedelta(hours=1)
QUANTILES = (0.5, 0.9, 0.99)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Snapshot(Collector):
    """Hands out metric families computed beforehand (collect() cannot await)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def _quantile(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def summary(name: str, doc: str, groups: dict[tuple[tuple[str, str], ...], list[float]]) -> Metric:
    metric = Metric(name, doc, "summary")
    for labels, values in sorted(groups.items()):
        base = dict(labels)
        for q in QUANTILES:
            if values:
                metric.add_sample(name, base | {"quantile": str(q)}, _quantile(values, q))
        metric.add_sample(f"{name}_count", base, float(len(values)))
        metric.add_sample(f"{name}_sum", base, float(sum(values)))
    return metric


async def collect(runtime: Runtime, now: datetime | None = None) -> list[Metric]:
    since = (now or datetime.now(UTC)) - WINDOW
    recent = await stats.activity(runtime.engine, since)
    counts = recent.counts
    durations: dict[tuple[tuple[str, str], ...], list[float]] = {}
    for data in recent.steps:
        seconds = data.get("duration")
        if isinstance(seconds, int | float):
            durations.setdefault((("step", str(data.get("step"))),), []).append(float(seconds))
    claims = recent.claims
    latencies = [
        max(0.0, (started - due).total_seconds()) for started, due in claims if started and due
    ]
    stale = runtime.settings.worker_stale_seconds
    live = await workers.live_workers(runtime.engine, within=stale)
    depth = GaugeMetricFamily("reelscribe_queue_depth", "Jobs waiting to be claimed.")
    depth.add_metric([], float(counts.get(JobStatus.QUEUED, 0)))
    jobs = GaugeMetricFamily("reelscribe_jobs", "Jobs by status.", labels=["status"])
    for status in JobStatus:
        jobs.add_metric([status.value], float(counts.get(status, 0)))
    return [
        depth,
        jobs,
        *_worker_families(live, stale),
        summary(
            "reelscribe_step_duration_seconds",
            "Duration of pipeline steps finished in the last hour.",
            durations,
        ),
        summary(
            "reelscribe_claim_latency_seconds",
            "Seconds from a job being due to a worker claiming it, claims of the last hour.",
            {(): latencies},
        ),
    ]


def _worker_families(live: list[workers.WorkerState], stale: float) -> list[Metric]:
    count = GaugeMetricFamily(
        "reelscribe_workers", "Workers with a recent heartbeat, by health.", labels=["state"]
    )
    healthy = sum(1 for w in live if w.healthy(stale))
    count.add_metric(["live"], float(len(live)))
    count.add_metric(["healthy"], float(healthy))
    claim = GaugeMetricFamily(
        "reelscribe_worker_claim_age_seconds",
        "Seconds since the worker last asked the queue for a job.",
        labels=["worker"],
    )
    seen = GaugeMetricFamily(
        "reelscribe_worker_heartbeat_age_seconds",
        "Seconds since the worker's last heartbeat.",
        labels=["worker"],
    )
    busy = GaugeMetricFamily(
        "reelscribe_worker_busy", "Jobs the worker runs now.", labels=["worker"]
    )
    for w in live:
        if w.claim_age is not None:
            claim.add_metric([w.id], w.claim_age)
        seen.add_metric([w.id], w.seen_age)
        busy.add_metric([w.id], float(w.busy))
    return [count, claim, seen, busy]


def render(families: list[Metric]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families))
    return generate_latest(registry)
