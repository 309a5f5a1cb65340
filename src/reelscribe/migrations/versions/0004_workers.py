"""workers: one heartbeat row per worker process, for readiness and metrics

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

Workers that stopped taking jobs (after a database or Redis outage) went unnoticed:
``/readyz`` only pinged the servers. Each worker now writes its last heartbeat and its
last claim attempt here, so readiness and ``/metrics`` can tell live, working workers
from stuck or dead ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("busy", sa.Integer(), nullable=False),
        sa.Column("started_at", _time(), nullable=False),
        sa.Column("seen_at", _time(), nullable=False),
        sa.Column("claim_at", _time(), nullable=True),
        sa.Column("claim_failing", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("id", name="pk_workers"),
    )
    op.create_index("ix_workers_seen_at", "workers", ["seen_at"])


def downgrade() -> None:
    op.drop_index("ix_workers_seen_at", table_name="workers")
    op.drop_table("workers")
