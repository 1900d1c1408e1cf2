"""Parsing: what each construct becomes, precedence, escaping, and errors that name their position."""

from __future__ import annotations

import contextlib
import time
from decimal import Decimal

import msgspec
import pytest

from mintlog.errors import BadRequest
from mintlog.query import QueryLimits, QuerySyntaxError, parse
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
    TimeBound,
    TimeRange,
    Wildcard,
    all_of,
    any_of,
)
from mintlog.query.filters import equals


def error_of(query: str, limits: QueryLimits | None = None) -> QuerySyntaxError:
    with pytest.raises(QuerySyntaxError) as caught:
        parse(query) if limits is None else parse(query, limits=limits)
    return caught.value


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", MatchAll()),
        ("   ", MatchAll()),
        ("*", MatchAll()),
        ("*:*", MatchAll()),
        ("timeout", Text(("timeout",))),
        ("TimeOut", Text(("timeout",))),
        ('"Connection  reset!"', Text(("connection", "reset"))),
        ("user-42", Text(("user", "42"))),
        ("message:timeout", Text(("timeout",))),
        ("Größe", Text(("größe",))),
        ("service:api", Term("service", "api")),
        ("service:API", Term("service", "API")),
        ("level:ERROR", Term("level", "error")),
        ('host:"web 1"', Term("host", "web 1")),
        ("service: api", Term("service", "api")),
        ("fields.user_id:u123", Term("fields.user_id", "u123")),
        ("fields.http.status:500", Term("fields.http.status", "500", Decimal(500))),
        ("fields.ratio:-0.5", Term("fields.ratio", "-0.5", Decimal("-0.5"))),
        ('fields.status:"500"', Term("fields.status", "500")),
        ("fields.code:0500", Term("fields.code", "0500")),
        ("fields.ok:true", Term("fields.ok", "true")),
        ("fields.upstream:db\\:5432", Term("fields.upstream", "db:5432")),
        ("fields.user\\ agent:curl", Term("fields.user agent", "curl")),
        ("service:check*", Wildcard("service", "check*")),
        ("host:web-?", Wildcard("host", "web-?")),
        ("level:ERR*", Wildcard("level", "err*")),
        ("fields.path:/v1/\\*/x*", Wildcard("fields.path", "/v1/\\*/x*")),
        ("fields.path:a**b", Wildcard("fields.path", "a*b")),
        ("service:\\*", Term("service", "*")),
        ("fields.status:[500 TO 599]", NumberRange("fields.status", Decimal(500), Decimal(599))),
        ("fields.status:{500 TO 599]", NumberRange("fields.status", Decimal(500), Decimal(599), False, True)),
        ("fields.status:[* TO 10}", NumberRange("fields.status", None, Decimal(10), True, False)),
        ("fields.latency_ms:>250", NumberRange("fields.latency_ms", Decimal(250), None, False, True)),
        ("fields.latency_ms:>=2.5e2", NumberRange("fields.latency_ms", Decimal("2.5e2"), None, True, True)),
        ("fields.latency_ms:<-1", NumberRange("fields.latency_ms", None, Decimal(-1), True, False)),
        ("fields.latency_ms:<= 3", NumberRange("fields.latency_ms", None, Decimal(3), True, True)),
        ("fields.x:[5 TO 1]", MatchNone()),
        ("fields.x:{1 TO 1}", MatchNone()),
        ("timestamp:>now-1h", TimeRange(lower=TimeBound("now-1h", 11), include_lower=False)),
        (
            "timestamp:[2026-11-26T00:00:00Z TO now]",
            TimeRange(lower=TimeBound("2026-11-26T00:00:00Z", 11), upper=TimeBound("now", 35)),
        ),
        (
            'timestamp:"2026-11-26 10:00:00"',
            TimeRange(lower=TimeBound("2026-11-26 10:00:00", 10), upper=TimeBound("2026-11-26 10:00:00", 10)),
        ),
        ("_exists_:fields.user_id", Exists("fields.user_id")),
        ("_exists_:trace_id", Exists("trace_id")),
        ("_exists_:service", MatchAll()),
        ("span_id:*", Exists("span_id")),
        ("fields.x:*", Exists("fields.x")),
        ("timestamp:*", MatchAll()),
        ("a" * 256, MatchNone()),
        ("a" * 255, Text(("a" * 255,))),
    ],
)
def test_each_construct_parses_to_its_node(query: str, expected: Node) -> None:
    assert parse(query) == expected


def test_not_binds_tighter_than_and_which_binds_tighter_than_or() -> None:
    a, b, c = Text(("a",)), Text(("b",)), Text(("c",))

    assert parse("a OR b c") == Or((a, And((b, c))))
    assert parse("a OR b AND c") == parse("a || b && c") == Or((a, And((b, c))))
    assert parse("NOT a AND b") == And((Not(a), b))
    assert parse("-a b") == And((Not(a), b))
    assert parse("(a OR b) c") == And((Or((a, b)), c))
    assert parse("+a -b") == And((a, Not(b)))
    assert parse("NOT NOT a") == a
    assert parse("a AND (b AND c)") == And((a, b, c))


def test_lowercase_operators_are_words() -> None:
    assert parse("a and b") == And((Text(("a",)), Text(("and",)), Text(("b",))))


def test_a_field_group_applies_the_field_to_every_bare_value() -> None:
    assert parse("level:(ERROR OR fatal)") == Or((Term("level", "error"), Term("level", "fatal")))
    assert parse("fields.status:(>=500 -504)") == And(
        (
            NumberRange("fields.status", Decimal(500), None, True, True),
            Not(Term("fields.status", "504", Decimal(504))),
        )
    )
    assert parse("fields.x:([1 TO 2] OR 5)") == Or(
        (NumberRange("fields.x", Decimal(1), Decimal(2)), Term("fields.x", "5", Decimal(5)))
    )
    assert parse('service:(api "web app") x') == And((Term("service", "api"), Term("service", "web app"), Text(("x",))))


def test_minus_inside_values_and_ranges_is_part_of_the_value() -> None:
    assert parse("fields.x:-5") == Term("fields.x", "-5", Decimal(-5))
    assert parse("fields.x:[-5 TO -1]") == NumberRange("fields.x", Decimal(-5), Decimal(-1))
    assert parse("host:web-1") == Term("host", "web-1")
    assert parse("fields.x: -5") == Term("fields.x", "-5", Decimal(-5))
    assert parse("fields.x:> -5") == NumberRange("fields.x", Decimal(-5), None, False, True)
    assert parse("fields.x:>=\\-5") == NumberRange("fields.x", Decimal(-5), None, True, True)


def test_the_tree_round_trips_through_json_with_a_type_tag() -> None:
    node = parse('level:error AND ("connection reset" OR fields.status:[500 TO *}) -host:web-? timestamp:>now-1h')

    encoded = msgspec.json.encode(node)

    assert b'"type":"and"' in encoded
    assert msgspec.json.decode(encoded, type=Node) == node


def test_all_of_and_any_of_combine_filters_with_a_query() -> None:
    query = parse("timeout")
    level = any_of([Term("level", "error"), Term("level", "fatal")])

    assert all_of([query, level]) == And((Text(("timeout",)), Or((Term("level", "error"), Term("level", "fatal")))))
    assert all_of([]) == MatchAll()
    assert any_of([]) == MatchNone()
    assert all_of([MatchAll(), query]) == query
    assert all_of([query, MatchNone()]) == MatchNone()


@pytest.mark.parametrize(
    ("query", "position", "says"),
    [
        ("level:error AND", 15, "expected a term"),
        ("level:error OR OR x", 15, "found OR"),
        ("(level:error", 12, "expected ')' to close the '(' at position 0"),
        ("level:error)", 11, "no '(' to close"),
        ("()", 1, "a clause inside the parentheses"),
        ('service:"api', 8, "unterminated quoted phrase"),
        ("foo\\", 3, "backslash"),
        ("servce:api", 0, "unknown field 'servce'"),
        ("a fields:x", 2, "unknown field 'fields'"),
        ("fields.:x", 0, "unknown field"),
        ("service:", 8, "a value after 'service:'"),
        ("service:)", 8, "a value after 'service:'"),
        ("time*", 4, "wildcards work on keyword fields and fields.* only"),
        ("x message:ab?c", 12, "not on full text"),
        ("timestamp:2026*", 14, "do not apply to timestamp"),
        ("fields.status:[500 599]", 19, "TO between the bounds"),
        ("fields.status:[500 TO 599", 25, "']' or '}'"),
        ("fields.status:[abc TO 5]", 15, "expected a number"),
        ("fields.status:>abc", 15, "expected a number"),
        ("fields.status:>", 15, "a value after '>'"),
        ("service:[a TO b]", 8, "apply to timestamp and fields.* only"),
        ("host:>5", 5, "apply to timestamp and fields.* only"),
        ("timestamp:>yesterday", 11, "RFC 3339"),
        ("timestamp:[now-1x TO now]", 11, "RFC 3339"),
        ("timestamp:>now-999999999w", 11, "out of range"),
        ("timestamp:>9999-12-31T23:59:59-14:00", 11, "out of range"),
        ("timestamp:<0999-12-31", 11, "out of range"),
        ("_exists_:nope", 9, "unknown field 'nope'"),
        ("_exists_:message", 9, "every event has a message"),
        ("_exists_:", 9, "a field name after '_exists_:'"),
        ("...", 0, "no letter or digit"),
        ('""', 0, "empty phrase"),
        ("a -", 2, "no letter or digit"),
        ("NOT", 3, "expected a term"),
        ("id:*123", 3, "must not start with a wildcard"),
        ("trace_id:?abc", 9, "must not start with a wildcard"),
        ("fields.x:[1e99 TO *]", 10, "at most 30 digits"),
        ("fields.x:[0.0000000000000000000000000000001 TO *]", 10, "at most 30 digits"),
        ("a [1 TO 2]", 2, "AND, OR or another clause"),
    ],
)
def test_errors_name_the_position_and_what_was_expected(query: str, position: int, says: str) -> None:
    error = error_of(query)

    assert error.position == position
    assert says in error.reason
    assert error.extra["position"] == position
    assert error.extra.keys() <= {"position", "suggestion"}
    assert error.detail == f"invalid query at position {position}: {error.reason}"


def test_a_syntax_error_is_a_bad_request_with_code_invalid_query() -> None:
    error = error_of("level:")

    assert isinstance(error, BadRequest)
    assert error.status == 400
    assert error.code == "invalid_query"


def test_limits_are_refused_with_their_position() -> None:
    assert error_of("a" * 4097).position == 4096
    assert parse("a" * 4096) == MatchNone()

    deep = "(" * 33 + "a" + ")" * 33
    assert "deeper than 32" in error_of(deep).reason
    assert error_of(deep).position == 32
    assert parse("(" * 32 + "a" + ")" * 32) == Text(("a",))
    assert "deeper than 32" in error_of("NOT " * 33 + "a").reason

    many = " ".join(f"w{number}" for number in range(257))
    assert "more than 256 clauses" in error_of(many).reason
    assert error_of(many).position == many.index("w256")

    assert "longer than 256" in error_of("host:" + "a" * 256 + "*").reason
    assert "more than 16 wildcards" in error_of("host:" + "a?" * 17).reason
    assert "longer than 1024" in error_of("fields." + "k" * 1025 + ":x").reason

    tight = QueryLimits(max_length=10, max_depth=1, max_clauses=2)
    assert error_of("a" * 11, tight).position == 10
    assert "deeper than 1" in error_of("((a))", tight).reason
    assert "more than 2 clauses" in error_of("a b c", tight).reason


def test_a_range_too_complex_for_opensearch_is_refused() -> None:
    error = error_of("x fields.x:[123456789012.123456789012 TO 987654321098.987654321098]")

    assert error.position == 11
    assert "too complex" in error.reason
    assert parse("fields.x:[12345.678 TO 98765.4321]") == NumberRange(
        "fields.x", Decimal("12345.678"), Decimal("98765.4321")
    )


@pytest.mark.parametrize(
    "query",
    [
        "a" * 4096,
        "(" * 2000,
        ")" * 4000,
        "a:" * 2000,
        '"' * 4000,
        "\\" * 4001,
        "NOT " * 1000,
        "- " * 2000,
        "host:" + "*?" * 2000,
        "fields.x:[" + "9" * 4000 + " TO *]",
        "fields.x:" + "1" * 4000,
        "x " * 2048,
        "level:(" * 1000,
    ],
)
def test_hostile_input_does_not_hang_the_parser(query: str) -> None:
    # Not a performance target (see benchmarks/bench_query.py): a bound 20x above normal that only a
    # runaway (exponential backtracking, unbounded recursion) would cross, even on a busy machine.
    started = time.perf_counter()
    with contextlib.suppress(QuerySyntaxError):
        parse(query)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    ("field", "value", "query"),
    [
        ("level", "ERROR", "level:error"),
        ("service", "api", "service:api"),
        ("host", "web 1", 'host:"web 1"'),
        ("fields.status", 500, "fields.status:500"),
        ("fields.status", "500", 'fields.status:"500"'),
        ("fields.ratio", 0.5, "fields.ratio:0.5"),
        ("fields.ok", True, "fields.ok:true"),
        ("fields.big", 1e20, "fields.big:100000000000000000000.0"),
    ],
)
def test_a_structured_filter_means_what_the_same_query_means(field: str, value: str | float, query: str) -> None:
    assert equals(field, value) == parse(query)


def test_structured_filters_refuse_what_the_language_would_refuse() -> None:
    assert equals("fields.x", float("nan")) == MatchNone()
    with pytest.raises(ValueError, match="not a filterable field"):
        equals("message", "x")
    with pytest.raises(ValueError, match="takes a string"):
        equals("service", 5)
