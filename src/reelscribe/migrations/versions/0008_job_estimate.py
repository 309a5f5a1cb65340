"""jobs.estimate: the time and cost estimate made when a job was submitted

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26

A nullable JSON column (JSONB on PostgreSQL): jobs submitted before it, and jobs whose
source's duration could not be learnt at submission, have none.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    column = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    op.add_column("jobs", sa.Column("estimate", column, nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "estimate")
