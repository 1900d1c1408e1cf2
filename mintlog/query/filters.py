"""Structured filters (the search body's `level`, `service`, `host`, `fields`) as query nodes.

They mean exactly what the same filter typed into the query string means, so a search can AND them with
the parsed query and compile the whole once: `all_of([parse(query), any_of(equals("level", v) for v in
levels), equals("fields.status", 500)])`.
"""

from __future__ import annotations

from decimal import Decimal

from mintlog.query.ast import KEYWORD_FIELDS, MatchNone, Node, Term, field_key
from mintlog.query.values import float_text

__all__ = ["equals"]


def equals(field: str, value: str | int | float | bool) -> Node:
    """The clause `field:value` on a keyword field or `fields.<key>`, normalized like the parser does.

    A string is compared exactly (like a quoted value; `level` lower-cased); on `fields.*` an int or float
    is a number (like an unquoted number: it also finds equal numbers in other notations) and a bool is
    `true`/`false`. A NaN or infinite float matches nothing. Raises `ValueError` for another field, or a
    non-string value on a keyword field.
    """
    if field in KEYWORD_FIELDS:
        if not isinstance(value, str):
            raise ValueError(f"{field} takes a string, got {type(value).__name__}")
        return Term(field, value.lower() if field == "level" else value)
    if not field_key(field):
        raise ValueError(f"not a filterable field: {field!r}")
    if isinstance(value, bool):
        return Term(field, "true" if value else "false")
    if isinstance(value, int):
        return Term(field, str(value), Decimal(value))
    if isinstance(value, float):
        text = float_text(value)
        return MatchNone() if text is None else Term(field, text, Decimal(text))
    return Term(field, value)
