"""The OpenSearch DSL each construct compiles to (no server needed: the shapes are the contract)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from mintlog.domain.events import FieldValue, LogEvent
from mintlog.query import QuerySyntaxError, parse
from mintlog.query.matcher import to_matcher
from mintlog.query.opensearch import FIELD_PAIRS, MESSAGE_ANALYSIS, to_opensearch
from mintlog.query.values import pair_prefix, value_texts

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
VP = FIELD_PAIRS  # the keyword the store fills with `fields.<key>=<text>` (never flat_object's `_valueAndPath`)


def dsl(query: str) -> dict[str, Any]:
    return to_opensearch(parse(query), NOW)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"match_all": {}}),
        ("*", {"match_all": {}}),
        ("a" * 300, {"match_none": {}}),
        ("timeout", {"term": {"message": "timeout"}}),
        ('"Connection reset"', {"match_phrase": {"message": {"query": "connection reset"}}}),
        ("user-42", {"match_phrase": {"message": {"query": "user 42"}}}),
        ("service:api", {"term": {"service": "api"}}),
        ("level:ERROR", {"term": {"level": "error"}}),
        ("trace_id:abc", {"term": {"trace_id": "abc"}}),
        ("id:e1", {"term": {"id": "e1"}}),
        ("service:check*", {"wildcard": {"service": {"value": "check*"}}}),
        ("host:web-?", {"wildcard": {"host": {"value": "web-?"}}}),
        ("host:web\\*1*", {"wildcard": {"host": {"value": "web\\*1*"}}}),
        ("_exists_:trace_id", {"exists": {"field": "trace_id"}}),
        ("span_id:*", {"exists": {"field": "span_id"}}),
        ("_exists_:service", {"match_all": {}}),
        ("fields.user_id:u123", {"term": {VP: "fields.user_id=u123"}}),
        ('fields.status:"500"', {"term": {VP: "fields.status=500"}}),
        (
            "fields.status:500",
            {
                "bool": {
                    "should": [
                        {"term": {VP: "fields.status=500"}},
                        {"regexp": {VP: {"value": "fields\\.status\\=(500(\\.0+)?)", "flags": "NONE"}}},
                    ],
                    "minimum_should_match": 1,
                }
            },
        ),
        ("_exists_:fields.user_id", {"prefix": {VP: "fields.user_id="}}),
        ("fields.tags:eu-*", {"wildcard": {VP: {"value": "fields.tags=eu-*"}}}),
        ("fields.a\\*b:x?", {"wildcard": {VP: {"value": "fields.a\\*b=x?"}}}),
        (
            "fields.status:[500 TO 599]",
            {
                "regexp": {
                    VP: {
                        "value": "fields\\.status\\=(500(\\.[0-9]+)?|(50[1-9]|5[1-8][0-9]|59[0-8])(\\.[0-9]+)?"
                        "|599(\\.0+)?)",
                        "flags": "NONE",
                    }
                }
            },
        ),
        (
            "fields.latency_ms:>250",
            {
                "regexp": {
                    VP: {
                        "value": "fields\\.latency_ms\\=(250\\.0*[1-9][0-9]*|(25[1-9]|2[6-9][0-9]|[3-9][0-9]{2}"
                        "|[1-9][0-9]{3,})(\\.[0-9]+)?)",
                        "flags": "NONE",
                    }
                }
            },
        ),
        ("fields.x:[5 TO 1]", {"match_none": {}}),
        (
            "timestamp:>now-1h",
            {
                "range": {
                    "timestamp": {"gt": "2026-11-26T11:00:00.000000Z", "format": "strict_date_optional_time_nanos"}
                }
            },
        ),
        (
            "timestamp:[2026-11-26T00:00:00.5+01:00 TO now}",
            {
                "range": {
                    "timestamp": {
                        "gte": "2026-11-25T23:00:00.500000Z",
                        "lt": "2026-11-26T12:00:00.000000Z",
                        "format": "strict_date_optional_time_nanos",
                    }
                }
            },
        ),
        ("timestamp:[* TO *]", {"match_all": {}}),
        (
            "level:error AND service:api",
            {"bool": {"filter": [{"term": {"level": "error"}}, {"term": {"service": "api"}}]}},
        ),
        (
            "level:error -service:api",
            {"bool": {"filter": [{"term": {"level": "error"}}], "must_not": [{"term": {"service": "api"}}]}},
        ),
        ("-level:debug", {"bool": {"must_not": [{"term": {"level": "debug"}}]}}),
        (
            "-level:debug -level:info",
            {"bool": {"must_not": [{"term": {"level": "debug"}}, {"term": {"level": "info"}}]}},
        ),
        (
            "level:error OR level:fatal",
            {
                "bool": {
                    "should": [{"term": {"level": "error"}}, {"term": {"level": "fatal"}}],
                    "minimum_should_match": 1,
                }
            },
        ),
        (
            "NOT (level:error OR timeout)",
            {
                "bool": {
                    "must_not": [
                        {
                            "bool": {
                                "should": [{"term": {"level": "error"}}, {"term": {"message": "timeout"}}],
                                "minimum_should_match": 1,
                            }
                        }
                    ]
                }
            },
        ),
    ],
)
def test_each_construct_compiles_to_its_dsl(query: str, expected: dict[str, Any]) -> None:
    assert dsl(query) == expected


@pytest.mark.parametrize(
    ("query", "key", "values"),
    [
        ("fields.status:[500 TO 599]", "status", [500, 599, 599.0, "503", "500.5", 600, "5000", "abc", True, -550]),
        ("fields.a.b+c:>=-1.5", "a.b+c", [-1.5, -1.4, -2, "-1.50", 0, "x", 1e20]),
        ('fields.we\\"ird=key:{0 TO 1}', 'we"ird=key', [0, 0.5, "0.999", 1, "-0", "1.0", 0.0001]),
        ("fields.status:5e2", "status", [500, 500.0, "500", "5e2", "500.000", 5000, "0500"]),
    ],
)
def test_the_regexp_accepts_exactly_the_texts_the_language_says(query: str, key: str, values: list[FieldValue]) -> None:
    # Python's `re` reads the generated Lucene regexps the same way for the syntax they use, so the DSL can
    # be evaluated on the `fields.<key>=<text>` term `field_pairs` holds, and compared with the matcher.
    clause = dsl(query)
    alternatives = clause["bool"]["should"] if "bool" in clause else [clause]
    terms = {alternative["term"][VP] for alternative in alternatives if "term" in alternative}
    regexps = [re.compile(clause["regexp"][VP]["value"]) for clause in alternatives if "regexp" in clause]
    matches = to_matcher(parse(query), NOW)
    for value in values:
        (text,) = value_texts(value)
        indexed = f"fields.{pair_prefix(key)}{text}"
        dsl_says = indexed in terms or any(regexp.fullmatch(indexed) for regexp in regexps)
        assert dsl_says == matches(event_with({key: value})), (value, text)


def event_with(fields: dict[str, FieldValue]) -> LogEvent:
    return LogEvent(
        id="e1",
        tenant_id="acme",
        timestamp=NOW,
        received_at=NOW,
        service="api",
        level="info",
        message="m",
        host="web-1",
        fields=fields,
    )


def test_the_message_analysis_splits_like_tantivy() -> None:
    analyzer = MESSAGE_ANALYSIS["analyzer"]["mintlog_text"]

    assert analyzer["filter"] == ["mintlog_long_words", "lowercase"]
    assert MESSAGE_ANALYSIS["filter"]["mintlog_long_words"] == {"type": "length", "max": 255}
    assert MESSAGE_ANALYSIS["tokenizer"]["mintlog_words"]["pattern"] == "[^\\p{IsAlphabetic}\\p{N}]+"


def test_an_out_of_range_relative_time_is_a_syntax_error_at_compile_time() -> None:
    node = parse("timestamp:>now-5000w")

    with pytest.raises(QuerySyntaxError) as caught:
        to_opensearch(node, datetime(1, 2, 1, tzinfo=UTC))

    assert caught.value.position == 11
