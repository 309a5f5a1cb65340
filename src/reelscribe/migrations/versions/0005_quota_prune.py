"""jobs.audio_reserved_seconds, and indexes for pruning ended jobs and old uploads

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26

* ``jobs.audio_reserved_seconds``: the audio a job without an end was charged to its
  key's daily quota at submit (the most it may turn out to be), until a worker's probe
  settles the charge to the real duration.
* ``ix_jobs_status_finished_at``: the pruner finds ended jobs (expired, failed,
  cancelled) past ``prune_after_seconds`` by status and end time, in small batches,
  without scanning the table.
* ``ix_uploads_state_updated_at``: the upload sweep finds complete uploads past
  ``upload_retention_seconds`` the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (nullable, no default): no table rewrite on either database.
    op.add_column("jobs", sa.Column("audio_reserved_seconds", sa.Float(), nullable=True))
    op.create_index("ix_jobs_status_finished_at", "jobs", ["status", "finished_at"])
    op.create_index("ix_uploads_state_updated_at", "uploads", ["state", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_uploads_state_updated_at", table_name="uploads")
    op.drop_index("ix_jobs_status_finished_at", table_name="jobs")
    op.drop_column("jobs", "audio_reserved_seconds")
