"""The Mintlog query language: one Lucene-like syntax, parsed once, compiled for each engine.

    node = parse('level:error AND service:api fields.status:>=500')   # raises QuerySyntaxError
    parse_with_warnings(query).warnings   # valid but likely wrong: `a or b`, `status=500`
    to_matcher(node, now)            # mintlog.query.matcher   -> Callable[[LogEvent], bool] (tail)
    to_opensearch(node, now)         # mintlog.query.opensearch -> OpenSearch query DSL dict
    to_tantivy(node, schema, now)    # mintlog.query.tantivy   -> tantivy.Query

The compilers live in their own modules so that importing this package never imports an engine's client.
docs/query-language.md is the user-facing reference.
"""

from __future__ import annotations

from mintlog.query.ast import Node, all_of, any_of
from mintlog.query.errors import QuerySyntaxError
from mintlog.query.hints import QueryWarning
from mintlog.query.parser import ParsedQuery, QueryLimits, parse, parse_with_warnings
from mintlog.query.timebounds import TimeWindow, time_window

__all__ = [
    "Node",
    "ParsedQuery",
    "QueryLimits",
    "QuerySyntaxError",
    "QueryWarning",
    "TimeWindow",
    "all_of",
    "any_of",
    "parse",
    "parse_with_warnings",
    "time_window",
]
