"""Turn a `SearchQuery` into a Tantivy query with `tantivy.Query` builders, never the query parser.

No user input reaches a parser, so no text, filter value or field name can cause a syntax error: a filter
that cannot match anything (e.g. an empty field name) becomes a query that matches nothing.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import tantivy

from mintlog.ports.logstore import SearchQuery

__all__ = ["QueryPlan", "build_query", "timestamp_equals"]

_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
# What Tantivy's JSON fields index as a date rather than a string (RFC 3339, leniently).
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_I64_MIN = -(2**63)
_U64_MAX = 2**64 - 1


@dataclass(frozen=True, slots=True)
class QueryPlan:
    """What a search needs besides the partitions: message terms and the time range in microseconds."""

    message_terms: tuple[str, ...]
    start_us: int | None
    end_us: int | None


def build_query(schema: tantivy.Schema, query: SearchQuery, plan: QueryPlan) -> tantivy.Query:
    """The query matching `query`'s filters inside one partition of `query.tenant_id`."""
    clauses: list[tantivy.Query] = [
        tantivy.Query.term_query(schema, "message", term, index_option="basic") for term in plan.message_terms
    ]
    for field_name, values in (("level", query.levels), ("service", query.services), ("host", query.hosts)):
        if values:
            clauses.append(_any_of(schema, field_name, values))
    clauses.extend(_field_equals(schema, key, value) for key, value in query.fields)
    if plan.start_us is not None or plan.end_us is not None:
        clauses.append(
            tantivy.Query.range_query(
                schema,
                "ts_us",
                tantivy.FieldType.Integer,
                lower_bound=plan.start_us,
                upper_bound=plan.end_us,
                include_lower=True,
                include_upper=plan.end_us is None,
            )
        )
    return _all_of(clauses)


def timestamp_equals(schema: tantivy.Schema, query: tantivy.Query, ts_us: int) -> tantivy.Query:
    """`query` restricted to events at exactly `ts_us`."""
    return _all_of([query, tantivy.Query.term_query(schema, "ts_us", ts_us, index_option="basic")])


def _all_of(clauses: Sequence[tantivy.Query]) -> tantivy.Query:
    if not clauses:
        return tantivy.Query.all_query()
    if len(clauses) == 1:
        return clauses[0]
    return tantivy.Query.boolean_query([(tantivy.Occur.Must, clause) for clause in clauses])


def _any_of_queries(clauses: Sequence[tantivy.Query]) -> tantivy.Query:
    if len(clauses) == 1:
        return clauses[0]
    return tantivy.Query.boolean_query([(tantivy.Occur.Should, clause) for clause in clauses])


def _any_of(schema: tantivy.Schema, field_name: str, values: Sequence[str]) -> tantivy.Query:
    distinct = list(dict.fromkeys(values))
    if len(distinct) == 1:
        return tantivy.Query.term_query(schema, field_name, distinct[0], index_option="basic")
    return tantivy.Query.term_set_query(schema, field_name, distinct)


def _typed_readings(value: str) -> list[str | int | float | bool | datetime]:
    """`value` as the string it is, plus the typed term it spells, so `"500"` also finds the number 500.

    A string that looks like an RFC 3339 timestamp is indexed by Tantivy as a date at second precision,
    so it is looked up as that date (a value differing only in fractions of a second matches too).
    """
    readings: list[str | int | float | bool | datetime] = [value]
    if _RFC3339.fullmatch(value):
        with contextlib.suppress(ValueError):
            readings.append(datetime.fromisoformat(value.upper().replace("Z", "+00:00")).astimezone(UTC))
    elif value in ("true", "false"):
        readings.append(value == "true")
    elif _INTEGER.fullmatch(value):
        number = int(value)
        if _I64_MIN <= number <= _U64_MAX:
            readings.append(number)
    elif _NUMBER.fullmatch(value):
        number = float(value)
        if math.isfinite(number):
            readings.append(number)
    return readings


def _field_equals(schema: tantivy.Schema, key: str, value: str) -> tantivy.Query:
    if not key:
        return tantivy.Query.empty_query()
    try:
        alternatives = [
            tantivy.Query.term_query(schema, f"fields.{key}", reading, index_option="basic")
            for reading in _typed_readings(value)
        ]
    except ValueError:
        # A key Tantivy cannot address as a JSON path can hold no value either.
        return tantivy.Query.empty_query()
    return _any_of_queries(alternatives)
