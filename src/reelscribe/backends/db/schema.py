"""The tables ``jobs`` and ``job_events`` (SQLAlchemy 2 declarative models).

The jobs table is the source of truth for every queue backend: status, lease, fencing
token and attempts live in the row, so a Redis stream only has to carry job ids.
Changes here need a new revision in ``reelscribe/migrations/versions``;
``tests/integration/test_migrations.py`` fails when the two drift apart.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    false,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from reelscribe.backends.db.enums import EventKind, JobStatus, Priority
from reelscribe.backends.db.types import PriorityRank, UtcDateTime, utcnow

# Deterministic constraint names, so later migrations (and SQLite's batch mode, which
# rebuilds tables) can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSONB on PostgreSQL (indexable, compact), JSON text elsewhere.
JsonDocument = JSON().with_variant(JSONB(), "postgresql")


def _enum(enum: type[StrEnum], name: str) -> Enum:
    """A VARCHAR with a CHECK constraint (no native ENUM type: adding a value to a
    PostgreSQL enum cannot run inside a transaction, a CHECK can be replaced)."""
    return Enum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        validate_strings=True,
        values_callable=lambda members: [member.value for member in members],
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class JobRow(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    status: Mapped[JobStatus] = mapped_column(
        _enum(JobStatus, "status"), default=JobStatus.QUEUED, server_default=JobStatus.QUEUED
    )
    priority: Mapped[Priority] = mapped_column(
        PriorityRank(), default=Priority.NORMAL, server_default="1"
    )

    # Attempts count claims that were not released; the lease token counts every
    # claim and is the fence: a write carrying an older token is refused.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    max_attempts: Mapped[int] = mapped_column(Integer, default=3, server_default="3")
    lease_token: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: Not claimable before this time (retry backoff).
    run_after: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow())
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    progress: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    stage: Mapped[str | None] = mapped_column(String(64))
    status_message: Mapped[str | None] = mapped_column(Text)

    #: When the current (or last) attempt was claimed, and when the job ended.
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: Seconds spent processing, summed over attempts that reported back.
    processing_seconds: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")

    #: Storage keys of the outputs, e.g. ``{"srt": "jobs/<id>/clip.srt"}``.
    result: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)

    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow(), onupdate=utcnow())
    #: A done job's outputs may be deleted after this time (``done → expired``).
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    owner_key_id: Mapped[str | None] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    #: Audio seconds charged to the owner's daily quota at submit for a job without an
    #: end, until the probed duration (``result.media.duration``) settles it.
    audio_reserved_seconds: Mapped[float | None] = mapped_column(Float)
    #: The time and cost estimate made at submission (see reelscribe.pipeline.estimate);
    #: None when the source's duration could not be learnt then.
    estimate: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)

    __table_args__ = (
        CheckConstraint("priority BETWEEN 0 AND 2", name="priority_rank"),
        CheckConstraint("progress >= 0 AND progress <= 100", name="progress_range"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        Index("ix_jobs_status_created_at", "status", "created_at"),
        Index("ix_jobs_expires_at", "expires_at"),
        # The claim query's order: status = 'queued', then rank, then age.
        Index("ix_jobs_claim_order", "status", "priority", "created_at", "id"),
        # The pruner's batches: ended jobs by status and end time.
        Index("ix_jobs_status_finished_at", "status", "finished_at"),
    )


# One job per (owner, idempotency key); jobs without an owner share the owner ''.
# (NULLs are distinct in a unique index on both databases, hence the coalesce.)
Index(
    "uq_jobs_owner_idempotency_key",
    func.coalesce(JobRow.owner_key_id, ""),
    JobRow.idempotency_key,
    unique=True,
    sqlite_where=JobRow.idempotency_key.isnot(None),
    postgresql_where=JobRow.idempotency_key.isnot(None),
)


class JobEventRow(Base):
    """Append-only history: every transition, step and progress report of a job."""

    __tablename__ = "job_events"

    # BIGINT on PostgreSQL; INTEGER on SQLite so that it aliases the rowid.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    job_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
    )
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow())
    kind: Mapped[EventKind] = mapped_column(_enum(EventKind, "kind"))
    data: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)

    __table_args__ = (Index("ix_job_events_job_id_id", "job_id", "id"),)


class ApiKeyRow(Base):
    """An API key. Only the SHA-256 of the secret is stored; the secret is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: Any of "submit", "read", "admin".
    scopes: Mapped[list[str]] = mapped_column(JsonDocument)
    rate_limit_per_minute: Mapped[int | None] = mapped_column(Integer)
    quota_audio_minutes_per_day: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class UploadRow(Base):
    """An upload: one streamed request, a resumable one sent in chunks at offsets, or a
    direct one whose parts clients send straight to storage (state "presigned")."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner_key_id: Mapped[str | None] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str | None] = mapped_column(String(255))
    #: "open" (receiving chunks), "presigned" (parts going straight to storage) or
    #: "complete".
    state: Mapped[str] = mapped_column(String(16), default="open")
    #: Declared total size for resumable uploads; bytes received so far.
    size: Mapped[int | None] = mapped_column(BigInteger)
    received: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    sha256: Mapped[str | None] = mapped_column(String(64))
    storage_key: Mapped[str | None] = mapped_column(String(1024))
    #: A direct (presigned) upload in progress: the store's multipart upload id, the
    #: part size the parts were planned with, and the SHA-256 the client declared
    #: (checked against the stored bytes at completion).
    multipart_id: Mapped[str | None] = mapped_column(String(1024))
    part_size: Mapped[int | None] = mapped_column(BigInteger)
    expected_sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow(), onupdate=utcnow())

    # The retention sweep: complete uploads not used for a while.
    __table_args__ = (Index("ix_uploads_state_updated_at", "state", "updated_at"),)


class WebhookDeliveryRow(Base):
    """The webhook outbox: one row per (job, event, end of the job) to deliver, retried
    until delivered or given up on. ``job_token`` is the job's lease token when it
    ended: a failed job retried by hand is claimed again before it can end again, so
    each end has its own token and gets its own delivery."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    job_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
    )
    event: Mapped[str] = mapped_column(String(32))
    job_token: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    url: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    #: "pending", "delivered" or "failed" (gave up).
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow())
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow())
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index(
            "uq_webhook_deliveries_job_id_event_job_token",
            "job_id",
            "event",
            "job_token",
            unique=True,
        ),
        Index("ix_webhook_deliveries_state_next", "state", "next_attempt_at"),
    )


class WebhookAttemptRow(Base):
    """One delivery attempt, kept so the API can show what happened."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    delivery_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False
    )
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow())
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)

    __table_args__ = (Index("ix_webhook_attempts_delivery_id", "delivery_id"),)


class WorkerRow(Base):
    """A worker process's heartbeat: written every few seconds by each worker, read by
    ``/readyz`` and ``/metrics``. Times are the database's clock. A row whose
    ``seen_at`` is old is a dead worker (it is deleted after a while)."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    #: Jobs it runs at once, and how many it is running now.
    slots: Mapped[int] = mapped_column(Integer, default=1)
    busy: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow())
    seen_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow())
    #: When a slot last asked the queue for a job (None: not yet).
    claim_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: The last claim failed (the queue or database was unreachable).
    claim_failing: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (Index("ix_workers_seen_at", "seen_at"),)
