"""Turn a `SearchQuery` into one Tantivy query with `tantivy.Query` builders, never the query parser.

The query-language node is compiled by `mintlog.query.tantivy.to_tantivy` (builders only, so no user text
reaches Tantivy's parser) and AND-ed with the request's `[start, end)` range on `ts_us`. Every partition
has the same schema, so the query is built once per search and run on each partition.
"""

from __future__ import annotations

from collections.abc import Sequence

import tantivy

from mintlog.adapters.logstore.tantivy_schema import epoch_micros, to_utc
from mintlog.ports.logstore import SearchQuery
from mintlog.query.tantivy import to_tantivy

__all__ = ["beyond_timestamp", "build_query", "timestamp_equals"]


def build_query(schema: tantivy.Schema, query: SearchQuery) -> tantivy.Query:
    """The query matching `query.node` (relative times resolved at `query.now`) within `[start, end)`.

    Raises `QuerySyntaxError` when a time bound of the node cannot be resolved.
    """
    clauses = [to_tantivy(query.node, schema, query.now)]
    start_us = epoch_micros(to_utc(query.start)) if query.start is not None else None
    end_us = epoch_micros(to_utc(query.end)) if query.end is not None else None
    if start_us is not None or end_us is not None:
        clauses.append(
            tantivy.Query.range_query(
                schema,
                "ts_us",
                tantivy.FieldType.Integer,
                lower_bound=start_us,
                upper_bound=end_us,
                include_lower=True,
                include_upper=end_us is None,
            )
        )
    return _all_of(clauses)


def timestamp_equals(schema: tantivy.Schema, query: tantivy.Query, ts_us: int) -> tantivy.Query:
    """`query` restricted to events at exactly `ts_us`."""
    # `ts_us` is a fast field only: a one-value range reads its column.
    exact = tantivy.Query.range_query(
        schema,
        "ts_us",
        tantivy.FieldType.Integer,
        lower_bound=ts_us,
        upper_bound=ts_us,
        include_lower=True,
        include_upper=True,
    )
    return _all_of([query, exact])


def beyond_timestamp(schema: tantivy.Schema, query: tantivy.Query, ts_us: int, *, descending: bool) -> tantivy.Query:
    """`query` restricted to events strictly before `ts_us` (`descending`) or strictly after it."""
    if descending:
        bound = tantivy.Query.range_query(
            schema, "ts_us", tantivy.FieldType.Integer, upper_bound=ts_us, include_upper=False
        )
    else:
        bound = tantivy.Query.range_query(
            schema, "ts_us", tantivy.FieldType.Integer, lower_bound=ts_us, include_lower=False
        )
    return _all_of([query, bound])


def _all_of(clauses: Sequence[tantivy.Query]) -> tantivy.Query:
    if len(clauses) == 1:
        return clauses[0]
    return tantivy.Query.boolean_query([(tantivy.Occur.Must, clause) for clause in clauses])
