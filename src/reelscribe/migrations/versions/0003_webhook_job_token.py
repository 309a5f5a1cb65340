"""webhook_deliveries.job_token: one delivery per end of a job, not per (job, event)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21

A failed job retried by hand that failed again got no second ``job.failed``: the
outbox was unique on (job, event). The job's lease token at its end tells its ends
apart. Existing rows take their job's current token, which is the token of the end
they were written for (a job's token only moves when it is claimed again).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "webhook_deliveries",
        sa.Column("job_token", sa.Integer(), nullable=False, server_default="0"),
    )
    op.execute(
        "UPDATE webhook_deliveries SET job_token = "
        "(SELECT lease_token FROM jobs WHERE jobs.id = webhook_deliveries.job_id)"
    )
    op.drop_index("uq_webhook_deliveries_job_id_event", table_name="webhook_deliveries")
    op.create_index(
        "uq_webhook_deliveries_job_id_event_job_token",
        "webhook_deliveries",
        ["job_id", "event", "job_token"],
        unique=True,
    )


def downgrade() -> None:
    # Keeps the first delivery of each (job, event), as the old index allowed.
    op.execute(
        "DELETE FROM webhook_deliveries WHERE job_token <> "
        "(SELECT MIN(d.job_token) FROM webhook_deliveries d "
        "WHERE d.job_id = webhook_deliveries.job_id AND d.event = webhook_deliveries.event)"
    )
    op.drop_index("uq_webhook_deliveries_job_id_event_job_token", table_name="webhook_deliveries")
    op.create_index(
        "uq_webhook_deliveries_job_id_event",
        "webhook_deliveries",
        ["job_id", "event"],
        unique=True,
    )
    # Plain ALTER TABLE … DROP COLUMN (SQLite ≥ 3.35): no table rebuild needed.
    op.drop_column("webhook_deliveries", "job_token")
