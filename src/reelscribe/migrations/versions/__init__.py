"""Alembic revisions, one per schema change, oldest first."""
