"""Compile a query into a `tantivy.Query` for the Tantivy store's schema, with builders only.

No user text reaches Tantivy's query parser: every clause is a `term_query`, `phrase_query`,
`regex_query`, `range_query` or a boolean combination, built from values the parser already checked.
Regexes are made here from escaped literals and the generated patterns of `mintlog.query.patterns`,
so they always compile, and Tantivy runs them as automata (no backtracking).

The schema must have (see `mintlog.adapters.logstore.tantivy_schema`): `message` (analyzer
`mintlog_text`, positions), the raw text fields `service`, `level`, `host`, `trace_id`, `span_id`,
`source`, `id`, the i64 field `ts_us` (event time in microseconds), and the raw text field `FIELD_PAIRS`
holding `mintlog.query.values.field_pairs(event.fields)`. `fields.*` clauses are answered from that field
alone, because tantivy-py builds neither `range_query` nor `regex_query` on a JSON path.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import assert_never

import tantivy

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
from mintlog.query.patterns import decimal_range_pattern, glob_to_rust, rust_escape
from mintlog.query.timebounds import resolve_time
from mintlog.query.values import FIELD_PAIRS, pair_prefix

__all__ = ["to_tantivy"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)
_TIMESTAMP_FIELD = "ts_us"


def to_tantivy(node: Node, schema: tantivy.Schema, now: datetime) -> tantivy.Query:
    """The Tantivy query matching exactly the events `node` matches, for one partition with `schema`.

    Relative times are resolved against `now`. Raises `QuerySyntaxError` if a time bound is out of range,
    and `ValueError` if `schema` lacks a field the query needs (a store layout error, not a user error).
    """
    return _Compiler(schema, now).compile(node)


class _Compiler:
    def __init__(self, schema: tantivy.Schema, now: datetime) -> None:
        self._schema = schema
        self._now = now

    def compile(self, node: Node) -> tantivy.Query:
        schema = self._schema
        match node:
            case MatchAll():
                return tantivy.Query.all_query()
            case MatchNone():
                return tantivy.Query.empty_query()
            case Text(words=words):
                if len(words) == 1:
                    return tantivy.Query.term_query(schema, "message", words[0], index_option="basic")
                return tantivy.Query.phrase_query(schema, "message", list(words))
            case Term(field=field, value=value, number=number):
                key = field_key(field)
                if key is None:
                    return tantivy.Query.term_query(schema, field, value, index_option="basic")
                exact = tantivy.Query.term_query(schema, FIELD_PAIRS, pair_prefix(key) + value, index_option="basic")
                if number is None:
                    return exact
                return _any_of([exact, self._pairs_range(key, number, number, True, True)])
            case Wildcard(field=field, pattern=pattern):
                key = field_key(field)
                if key is None:
                    return tantivy.Query.regex_query(schema, field, glob_to_rust(pattern))
                return tantivy.Query.regex_query(schema, FIELD_PAIRS, glob_to_rust(pattern, pair_prefix(key)))
            case NumberRange(field=field, lower=lower, upper=upper):
                key = field_key(field)
                assert key is not None  # the parser only makes ranges on fields.*
                return self._pairs_range(key, lower, upper, node.include_lower, node.include_upper)
            case TimeRange():
                return self._time_range(node)
            case Exists(field=field):
                key = field_key(field)
                if key is None:
                    return tantivy.Query.regex_query(schema, field, "(?s).*")
                return tantivy.Query.regex_query(schema, FIELD_PAIRS, f"(?s){rust_escape(pair_prefix(key))}.*")
            case And(clauses=clauses):
                return self._and(clauses)
            case Or(clauses=clauses):
                return _any_of([self.compile(clause) for clause in clauses])
            case Not(clause=clause):
                return tantivy.Query.boolean_query(
                    [(tantivy.Occur.Must, tantivy.Query.all_query()), (tantivy.Occur.MustNot, self.compile(clause))]
                )
            case _:
                assert_never(node)

    def _and(self, clauses: Sequence[Node]) -> tantivy.Query:
        occurrences: list[tuple[tantivy.Occur, tantivy.Query]] = [
            (tantivy.Occur.MustNot, self.compile(clause.clause))
            if isinstance(clause, Not)
            else (tantivy.Occur.Must, self.compile(clause))
            for clause in clauses
        ]
        if all(occur is tantivy.Occur.MustNot for occur, _query in occurrences):
            # A boolean query of exclusions alone matches nothing in Tantivy.
            occurrences.insert(0, (tantivy.Occur.Must, tantivy.Query.all_query()))
        return tantivy.Query.boolean_query(occurrences)

    def _pairs_range(
        self, key: str, lower: Decimal | None, upper: Decimal | None, include_lower: bool, include_upper: bool
    ) -> tantivy.Query:
        pattern = decimal_range_pattern(lower, upper, include_lower=include_lower, include_upper=include_upper)
        if pattern is None:
            return tantivy.Query.empty_query()
        return tantivy.Query.regex_query(self._schema, FIELD_PAIRS, f"{rust_escape(pair_prefix(key))}({pattern})")

    def _time_range(self, node: TimeRange) -> tantivy.Query:
        lower = _micros(resolve_time(node.lower, self._now)) if node.lower is not None else None
        upper = _micros(resolve_time(node.upper, self._now)) if node.upper is not None else None
        if lower is None and upper is None:
            return tantivy.Query.all_query()
        return tantivy.Query.range_query(
            self._schema,
            _TIMESTAMP_FIELD,
            tantivy.FieldType.Integer,
            lower_bound=lower,
            upper_bound=upper,
            include_lower=node.include_lower,
            include_upper=node.include_upper,
        )


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _ONE_MICROSECOND


def _any_of(queries: list[tantivy.Query]) -> tantivy.Query:
    if len(queries) == 1:
        return queries[0]
    return tantivy.Query.boolean_query([(tantivy.Occur.Should, query) for query in queries])
