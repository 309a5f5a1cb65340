"""The leased-work-table pattern, shared by the jobs table and the webhook outbox.

A row of work is *leased* by one statement that picks due rows other transactions
have not locked (``FOR UPDATE SKIP LOCKED``) and stamps them with the lease (an owner,
an expiry on the database's clock, an attempt counter that fences later writes)::

    UPDATE t SET <lease> WHERE t.id = (SELECT id … FOR UPDATE SKIP LOCKED LIMIT 1)     one
    UPDATE t SET <lease> WHERE t.id IN (picked) AND <due>                               many
        WITH picked AS MATERIALIZED (SELECT id … FOR UPDATE SKIP LOCKED LIMIT n)

SQLite renders no ``FOR UPDATE`` and needs none: its write transactions begin
IMMEDIATE and so run one at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import FromClause, Table, and_, select, update
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.dml import ReturningUpdate

#: Which rows of a table (or of an alias of it) may be leased now.
Due = Callable[[FromClause], ColumnElement[bool]]
#: The order in which due rows are leased, on a table or an alias of it.
Order = Callable[[FromClause], Sequence[ColumnElement[Any]]]


def lease_due(
    table: Table,
    *,
    due: Due,
    order: Order,
    limit: int,
    values: dict[str, Any],
    returning: Sequence[ColumnElement[Any]],
) -> ReturningUpdate[Any]:
    """ONE statement that leases up to ``limit`` due rows, in ``order``, skipping rows
    another transaction has locked: sets ``values`` and returns ``returning``."""
    candidate = table.alias("candidate")
    pick = (
        select(candidate.c.id)
        .where(due(candidate))
        .order_by(*order(candidate))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if limit == 1:
        where: ColumnElement[bool] = table.c.id == pick.scalar_subquery()
    else:
        # MATERIALIZED: run the pick once. As a plain ``IN (subquery)`` PostgreSQL may
        # plan a semi-join that rescans the LIMIT … SKIP LOCKED subquery per row, and
        # every rescan skips the rows just locked: all due rows leased. ``due`` again
        # on the outer UPDATE: PostgreSQL re-checks it against the row's latest version
        # should a concurrent transaction have changed it.
        picked = pick.cte("picked").prefix_with("MATERIALIZED", dialect="postgresql")
        where = and_(table.c.id.in_(select(picked.c.id)), due(table))
    return update(table).where(where).values(values).returning(*returning)
