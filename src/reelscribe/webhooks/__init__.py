"""Webhooks: ``job.completed``, ``job.failed`` and ``job.cancelled``, POSTed to a job's
``webhook_url`` from a durable outbox (the ``webhook_deliveries`` table)::

    a job ends (any process)        jobs.status: done / failed / cancelled
         │  Dispatcher.sweep()      one outbox row per end of a job; a unique index makes
         ▼                          a second sweep, or a second dispatcher, a no-op
    pending ── deliver_due() ──►    lease due rows (database clock), POST through the
         ▲                          SSRF guard, one webhook_attempts row per attempt
         │                     ├──► 2xx: delivered
         └── backoff ◄─────────┼──  anything else: due again in 5 s, 10 s, 20 s … 10 min
                               └──► failed: still failing an hour after the first
                                    attempt, or the URL is refused by the SSRF guard

Events are found by sweeping the jobs table rather than written by whoever ends a job:
a worker may die right after committing ``done``, and the sweep still sees the job, so
no event is lost and the queue code needs no hook.

Delivery is at least once: a dispatcher that dies after the receiver answered but
before it wrote the answer down leaves its lease to expire, and the delivery is sent
again. Receivers deduplicate on ``Reelscribe-Delivery`` (the body's ``id``); signatures
and replay protection are described in :mod:`reelscribe.service.webhook_signing`.

The body is described in :mod:`.events`.

One delivery per end of a job: the outbox's unique index is (job, event, the job's lease
token when it ended), so sweeps never repeat one, and a failed job retried by hand that
fails again (after a new claim, a new token) sends its second ``job.failed``.

The package, in the order a delivery goes::

    events.py       which event a job's end sends, and its body
    dispatcher.py   the loop: sweep ended jobs into the outbox, lease due deliveries
    sender.py       one signed POST through the SSRF guard
    outbox.py       what an attempt does to its delivery (the retry schedule), and the
                    API's read of a job's deliveries

The outbox's statements are :mod:`reelscribe.backends.db.outbox`'s.
"""

from reelscribe.backends.db.outbox import DeliveryState
from reelscribe.service.webhook_signing import verify_signature
from reelscribe.webhooks.dispatcher import Dispatcher
from reelscribe.webhooks.events import EVENTS
from reelscribe.webhooks.outbox import (
    DEFAULT_BACKOFF,
    DEFAULT_MAX_AGE,
    list_deliveries,
    retry_offsets,
)

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_MAX_AGE",
    "EVENTS",
    "DeliveryState",
    "Dispatcher",
    "list_deliveries",
    "retry_offsets",
    "verify_signature",
]
