"""jobs.status: a job blocked by content moderation ends ``blocked``

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26

The status column is a VARCHAR with a CHECK constraint (``ck_jobs_status``); a new value
means replacing the constraint. PostgreSQL drops and adds it in place; SQLite cannot
alter a constraint, so batch mode rebuilds the table with the new one. Downgrading turns
``blocked`` jobs into ``failed`` ones with the error code ``content_blocked`` (what the
older code can show), then restores the old constraint.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.exc import SAWarning

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = ("queued", "processing", "done", "failed", "cancelled", "expired")
NEW = (*OLD, "blocked")
NAME = "ck_jobs_status"


def _check(values: Sequence[str]) -> str:
    return "status IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def _replace(values: Sequence[str]) -> None:
    if op.get_bind().dialect.name == "sqlite":
        # The rebuilt table takes the new CHECK instead of the reflected old one. The one
        # expression index cannot be reflected (SQLAlchemy warns and skips it), so it is
        # dropped first and made again on the new table.
        op.drop_index("uq_jobs_owner_idempotency_key", table_name="jobs")
        with (
            warnings.catch_warnings(),
            op.batch_alter_table("jobs", recreate="always") as batch,
        ):
            warnings.filterwarnings("ignore", "Skipped unsupported reflection", SAWarning)
            batch.drop_constraint(op.f(NAME), type_="check")
            batch.create_check_constraint(op.f(NAME), sa.text(_check(values)))
        op.create_index(
            "uq_jobs_owner_idempotency_key",
            "jobs",
            [sa.text("coalesce(owner_key_id, '')"), "idempotency_key"],
            unique=True,
            sqlite_where=sa.text("idempotency_key IS NOT NULL"),
        )
        return
    op.drop_constraint(op.f(NAME), "jobs", type_="check")
    op.create_check_constraint(op.f(NAME), "jobs", sa.text(_check(values)))


def upgrade() -> None:
    _replace(NEW)


def downgrade() -> None:
    op.execute(
        "UPDATE jobs SET status = 'failed', error_code = 'content_blocked', "
        "error_message = COALESCE(error_message, 'blocked by content moderation') "
        "WHERE status = 'blocked'"
    )
    _replace(OLD)
