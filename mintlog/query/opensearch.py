"""Compile a query into OpenSearch 2.x query DSL (a JSON-ready dict) for the Mintlog index mapping.

The mapping this targets: `message` text (analyzed like Tantivy's `mintlog_text`, see
`MESSAGE_ANALYSIS`), `service`, `level`, `host`, `trace_id`, `span_id`, `source` and `id` keyword,
`timestamp` date (`date_nanos` for microsecond-exact ranges), and `field_pairs` keyword holding
`fields.<key>=<text>` for every value text of `event.fields` (`mintlog.query.values.field_pairs`; the
same terms a `flat_object` keeps in its `_valueAndPath` subfield, which OpenSearch 2.19 rewrites queries
on, so Mintlog writes and queries its own copy). `fields.*` clauses query `field_pairs`, so keys are
matched exactly (no prefix or sibling confusion) and numeric ranges are regexps over the texts, the same
regexps the Tantivy store runs.

Every clause is a filter (no scoring): results are sorted by time, not relevance.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, assert_never

from mintlog.query.ast import (
    And,
    Exists,
    MatchAll,
    MatchNone,
    Node,
    Not,
    NumberRange,
    Or,
    Term,
    Text,
    TimeRange,
    Wildcard,
    field_key,
)
from mintlog.query.patterns import decimal_range_pattern, lucene_escape
from mintlog.query.text import MAX_WORD_BYTES
from mintlog.query.timebounds import resolve_time
from mintlog.query.values import pair_prefix

__all__ = ["FIELD_PAIRS", "MESSAGE_ANALYSIS", "to_opensearch"]

FIELD_PAIRS = "field_pairs"
"""The keyword field holding `fields.<key>=<text>` for every value text of `fields`."""
_PATH_PREFIX = "fields."
_DATE_FORMAT = "strict_date_optional_time_nanos"

MESSAGE_ANALYSIS: dict[str, Any] = {
    "analyzer": {
        "mintlog_text": {
            "type": "custom",
            "tokenizer": "mintlog_words",
            "filter": ["mintlog_long_words", "lowercase"],
        }
    },
    "tokenizer": {"mintlog_words": {"type": "pattern", "pattern": "[^\\p{IsAlphabetic}\\p{N}]+"}},
    "filter": {"mintlog_long_words": {"type": "length", "max": MAX_WORD_BYTES}},
}
"""Index settings `analysis` giving `message` the words Tantivy's `mintlog_text` gives (use it as the
field's analyzer): split on every character that is neither alphabetic nor numeric, drop long words
(counted in UTF-16 units here, in UTF-8 bytes in Tantivy: the same for ASCII), lowercase."""


def to_opensearch(node: Node, now: datetime) -> dict[str, Any]:
    """The `query` member of a search body matching exactly the events `node` matches.

    Relative times are resolved against `now`. Raises `QuerySyntaxError` if a time bound is out of range.
    """
    return _compile(node, now)


def _compile(node: Node, now: datetime) -> dict[str, Any]:
    match node:
        case MatchAll():
            return {"match_all": {}}
        case MatchNone():
            return {"match_none": {}}
        case Text(words=words):
            if len(words) == 1:
                return {"term": {"message": words[0]}}
            return {"match_phrase": {"message": {"query": " ".join(words)}}}
        case Term(field=field, value=value, number=number):
            key = field_key(field)
            if key is None:
                return {"term": {field: value}}
            exact = {"term": {FIELD_PAIRS: _PATH_PREFIX + pair_prefix(key) + value}}
            if number is None:
                return exact
            return _any_of([exact, _pairs_range(key, number, number, True, True)])
        case Wildcard(field=field, pattern=pattern):
            key = field_key(field)
            if key is None:
                return {"wildcard": {field: {"value": pattern}}}
            prefix = _wildcard_escape(_PATH_PREFIX + pair_prefix(key))
            return {"wildcard": {FIELD_PAIRS: {"value": prefix + pattern}}}
        case NumberRange(field=field, lower=lower, upper=upper):
            key = field_key(field)
            assert key is not None  # the parser only makes ranges on fields.*
            return _pairs_range(key, lower, upper, node.include_lower, node.include_upper)
        case TimeRange():
            return _time_range(node, now)
        case Exists(field=field):
            key = field_key(field)
            if key is None:
                return {"exists": {"field": field}}
            return {"prefix": {FIELD_PAIRS: _PATH_PREFIX + pair_prefix(key)}}
        case And(clauses=clauses):
            return _and(clauses, now)
        case Or(clauses=clauses):
            return _any_of([_compile(clause, now) for clause in clauses])
        case Not(clause=clause):
            return {"bool": {"must_not": [_compile(clause, now)]}}
        case _:
            assert_never(node)


def _and(clauses: Sequence[Node], now: datetime) -> dict[str, Any]:
    required = [_compile(clause, now) for clause in clauses if not isinstance(clause, Not)]
    excluded = [_compile(clause.clause, now) for clause in clauses if isinstance(clause, Not)]
    query: dict[str, Any] = {}
    if required:
        query["filter"] = required
    if excluded:
        query["must_not"] = excluded
    return {"bool": query}


def _any_of(queries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"bool": {"should": queries, "minimum_should_match": 1}}


def _pairs_range(
    key: str, lower: Decimal | None, upper: Decimal | None, include_lower: bool, include_upper: bool
) -> dict[str, Any]:
    pattern = decimal_range_pattern(lower, upper, include_lower=include_lower, include_upper=include_upper)
    if pattern is None:
        return {"match_none": {}}
    regexp = f"{lucene_escape(_PATH_PREFIX + pair_prefix(key))}({pattern})"
    return {"regexp": {FIELD_PAIRS: {"value": regexp, "flags": "NONE"}}}


def _time_range(node: TimeRange, now: datetime) -> dict[str, Any]:
    bounds: dict[str, Any] = {}
    if node.lower is not None:
        bounds["gte" if node.include_lower else "gt"] = _instant(resolve_time(node.lower, now))
    if node.upper is not None:
        bounds["lte" if node.include_upper else "lt"] = _instant(resolve_time(node.upper, now))
    if not bounds:
        return {"match_all": {}}
    bounds["format"] = _DATE_FORMAT
    return {"range": {"timestamp": bounds}}


def _instant(moment: datetime) -> str:
    """An aware UTC datetime as RFC 3339 with microseconds and `Z`."""
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}.{moment.microsecond:06d}Z"
    )


def _wildcard_escape(text: str) -> str:
    return "".join("\\" + character if character in "*?\\" else character for character in text)
