"""`one_of`: `column IN (values)` written so that a batch of hundreds of ids costs one bound parameter."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import ColumnElement, String, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstrumentedAttribute

__all__ = ["one_of"]


def one_of(
    column: ColumnElement[str] | InstrumentedAttribute[str] | InstrumentedAttribute[str | None],
    values: Collection[str],
    *,
    postgres: bool,
) -> ColumnElement[bool]:
    """`column` is one of `values`. On PostgreSQL, `column = ANY(:values)` with the values as one text array:
    the same SQL text for any number of values, so SQLAlchemy renders nothing per call and asyncpg and
    PostgreSQL reuse one prepared statement (an `IN` list of 250 parameters is rendered, and planned, anew).
    Elsewhere (SQLite), `IN`."""
    if postgres:
        return column == any_(bindparam(None, list(values), type_=ARRAY(String())))
    return column.in_(list(values))
