"""uploads.multipart_id, part_size and expected_sha256: direct-to-storage uploads

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26

A direct (presigned) upload keeps, while its parts go straight to storage, the store's
multipart upload id, the part size its parts were planned with, and the SHA-256 the
client declared, which completion checks against the stored bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (nullable, no default): no table rewrite on either database.
    op.add_column("uploads", sa.Column("multipart_id", sa.String(length=1024), nullable=True))
    op.add_column("uploads", sa.Column("part_size", sa.BigInteger(), nullable=True))
    op.add_column("uploads", sa.Column("expected_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("uploads", "expected_sha256")
    op.drop_column("uploads", "part_size")
    op.drop_column("uploads", "multipart_id")
