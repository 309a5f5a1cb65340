"""Column types and SQL expressions that read the same on SQLite and PostgreSQL.

Leases are measured with the database's clock, never a worker's: workers on several
hosts disagree about the time, the database is one clock. ``utcnow()``,
``utc_after(seconds)`` and ``seconds_since(column)`` compile to each dialect's form:

* ``utcnow()``: PostgreSQL ``now()``; SQLite ``strftime('%Y-%m-%d %H:%M:%f', 'now')``
* ``utc_after(s)``: ``now() + make_interval(secs => s)``; ``strftime(…, 'now', '+s seconds')``
* ``seconds_since(c)``: ``extract(epoch from now() - c)``; ``(julianday('now') - julianday(c))
  * 86400``

On SQLite a timestamp is text; the expressions above pad SQLite's milliseconds to the
six fraction digits SQLAlchemy writes, so text comparison and ordering stay correct.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Float, SmallInteger
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql import ColumnElement, expression
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeDecorator

from reelscribe.backends.db.enums import Priority


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, whatever the dialect stores.

    PostgreSQL keeps ``timestamptz``; SQLite keeps naive text, so values are converted
    to UTC before they are written and marked UTC when read back.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware (UTC) datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class PriorityRank(TypeDecorator[Priority]):
    """Stores a :class:`Priority` as its rank (0 = fast, 1 = normal, 2 = bulk).

    An integer rank lets the claim query walk an index in priority order instead of
    sorting every queued row through a ``CASE`` expression.
    """

    impl = SmallInteger
    cache_ok = True

    def process_bind_param(self, value: Priority | str | None, dialect: Dialect) -> int | None:
        return None if value is None else Priority(value).rank

    def process_result_value(self, value: int | None, dialect: Dialect) -> Priority | None:
        return None if value is None else Priority.from_rank(value)


# --- the database's clock ----------------------------------------------------------

_SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now'{modifier}) || '000'"


class utcnow(expression.FunctionElement[datetime]):
    """The database's current time (transaction start on PostgreSQL)."""

    type = UtcDateTime()
    inherit_cache = True
    name = "utcnow"


class utc_after(expression.FunctionElement[datetime]):
    """The database's current time plus ``seconds`` (a float, milliseconds kept)."""

    type = UtcDateTime()
    inherit_cache = True
    name = "utc_after"

    def __init__(self, seconds: float | ColumnElement[float]) -> None:
        arg = (
            seconds
            if isinstance(seconds, ColumnElement)
            else expression.literal(float(seconds), Float())
        )
        super().__init__(arg)


class seconds_since(expression.FunctionElement[float]):
    """Seconds from a timestamp column to the database's current time."""

    type = Float()
    inherit_cache = True
    name = "seconds_since"

    def __init__(self, column: ColumnElement[Any] | QueryableAttribute[Any]) -> None:
        super().__init__(column)


def _arg(element: expression.FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(utcnow, "postgresql")
def _pg_utcnow(element: utcnow, compiler: SQLCompiler, **kw: Any) -> str:
    return "now()"


@compiles(utcnow, "sqlite")
def _sqlite_utcnow(element: utcnow, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({_SQLITE_NOW.format(modifier='')})"


@compiles(utc_after, "postgresql")
def _pg_utc_after(element: utc_after, compiler: SQLCompiler, **kw: Any) -> str:
    return f"(now() + make_interval(secs => {_arg(element, compiler, **kw)}))"


@compiles(utc_after, "sqlite")
def _sqlite_utc_after(element: utc_after, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite's modifiers take text such as '+1.500 seconds'.
    modifier = f", printf('%+.3f seconds', {_arg(element, compiler, **kw)})"
    return f"({_SQLITE_NOW.format(modifier=modifier)})"


@compiles(seconds_since, "postgresql")
def _pg_seconds_since(element: seconds_since, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(EXTRACT(EPOCH FROM (now() - {_arg(element, compiler, **kw)})) AS FLOAT)"


@compiles(seconds_since, "sqlite")
def _sqlite_seconds_since(element: seconds_since, compiler: SQLCompiler, **kw: Any) -> str:
    return f"((julianday('now') - julianday({_arg(element, compiler, **kw)})) * 86400.0)"
