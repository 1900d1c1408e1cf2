"""The parsed form of a query: a tree of frozen, tagged msgspec Structs.

`parse` builds it once; `to_matcher`, `to_opensearch` and `to_tantivy` compile it. Nodes are plain data
(hashable, comparable, encodable with msgspec as JSON with a `type` tag), so structured API filters can be
turned into nodes and combined with a parsed query (`all_of`, `any_of`).

Field names are the query's own: `message`, `timestamp`, the keyword fields in `KEYWORD_FIELDS`, and
`fields.<key>` for any key of `LogEvent.fields`.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import TypeAlias

import msgspec

__all__ = [
    "ALWAYS_PRESENT_FIELDS",
    "FIELDS_PREFIX",
    "KEYWORD_FIELDS",
    "And",
    "Exists",
    "MatchAll",
    "MatchNone",
    "Node",
    "Not",
    "NumberRange",
    "Or",
    "Term",
    "Text",
    "TimeBound",
    "TimeRange",
    "Wildcard",
    "all_of",
    "any_of",
    "field_key",
]

FIELDS_PREFIX = "fields."
KEYWORD_FIELDS = frozenset({"service", "level", "host", "trace_id", "span_id", "source", "id"})
"""Fields matched exactly (case-sensitive, except `level`, which is lowercase in every event and query)."""
ALWAYS_PRESENT_FIELDS = frozenset({"service", "level", "host", "source", "id", "timestamp"})
"""Fields every event has, so `_exists_` on them matches everything."""


def field_key(field: str) -> str | None:
    """The key inside `LogEvent.fields` that `fields.<key>` names, or `None` for another field."""
    return field[len(FIELDS_PREFIX) :] if field.startswith(FIELDS_PREFIX) else None


class _Node(msgspec.Struct, frozen=True, tag_field="type", tag=str.lower):
    pass


class MatchAll(_Node, frozen=True):
    """Every event (`*`, an empty query, `_exists_` on a field every event has)."""


class MatchNone(_Node, frozen=True):
    """No event (e.g. a word longer than the index keeps: it can never be found)."""


class Text(_Node, frozen=True):
    """Full text on `message`: the words, lowercased, must occur next to each other in this order.

    One word is a term query; several (a quoted phrase, or a bare word such as `user-42` that the
    analyzer splits) are a phrase.
    """

    words: tuple[str, ...]


class Term(_Node, frozen=True):
    """`field` equals `value` (a keyword field, or the index text of a `fields.*` value).

    `number` is set only for an unquoted number on `fields.*`: then the value also matches every number,
    and every string in plain decimal notation, equal to it.
    """

    field: str
    value: str
    number: Decimal | None = None


class Wildcard(_Node, frozen=True):
    """`field` (keyword or `fields.*`) matches `pattern`: `*` any run, `?` one character, `\\` escapes."""

    field: str
    pattern: str


class NumberRange(_Node, frozen=True):
    """A value of `fields.<key>` (a number, or a string in plain decimal notation) lies in the range."""

    field: str
    lower: Decimal | None = None
    upper: Decimal | None = None
    include_lower: bool = True
    include_upper: bool = True


class TimeBound(msgspec.Struct, frozen=True):
    """A time expression (RFC 3339 or `now-15m`) resolved at compile time, and where it was in the query."""

    expression: str
    position: int


class TimeRange(_Node, frozen=True):
    """The event `timestamp` lies in the range (microsecond precision)."""

    lower: TimeBound | None = None
    upper: TimeBound | None = None
    include_lower: bool = True
    include_upper: bool = True


class Exists(_Node, frozen=True):
    """`field` has a value: `trace_id`/`span_id` not null, or `fields.<key>` with at least one index text."""

    field: str


class And(_Node, frozen=True):
    """Every clause matches."""

    clauses: tuple[Node, ...]


class Or(_Node, frozen=True):
    """At least one clause matches."""

    clauses: tuple[Node, ...]


class Not(_Node, frozen=True):
    """The clause does not match (events without the field included)."""

    clause: Node


Node: TypeAlias = MatchAll | MatchNone | Text | Term | Wildcard | NumberRange | TimeRange | Exists | And | Or | Not


def all_of(nodes: Iterable[Node]) -> Node:
    """The conjunction of `nodes`, flattened; `MatchAll` when empty, `MatchNone` if one is `MatchNone`."""
    clauses: list[Node] = []
    for node in nodes:
        if isinstance(node, MatchNone):
            return node
        if isinstance(node, And):
            clauses.extend(node.clauses)
        elif not isinstance(node, MatchAll):
            clauses.append(node)
    if not clauses:
        return MatchAll()
    return clauses[0] if len(clauses) == 1 else And(tuple(clauses))


def any_of(nodes: Iterable[Node]) -> Node:
    """The disjunction of `nodes`, flattened; `MatchNone` when empty, `MatchAll` if one is `MatchAll`."""
    clauses: list[Node] = []
    for node in nodes:
        if isinstance(node, MatchAll):
            return node
        if isinstance(node, Or):
            clauses.extend(node.clauses)
        elif not isinstance(node, MatchNone):
            clauses.append(node)
    if not clauses:
        return MatchNone()
    return clauses[0] if len(clauses) == 1 else Or(tuple(clauses))
