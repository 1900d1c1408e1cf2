"""Hints for plausible query mistakes (docs/query-language.md, "Hints"): errors that suggest the query meant,
warnings on valid queries that are likely wrong, and the valid queries that stay as they were."""

from __future__ import annotations

import contextlib
import time

import pytest

from mintlog.query import QuerySyntaxError, parse, parse_with_warnings
from mintlog.query.ast import Term, Text, Wildcard, all_of, any_of
from mintlog.query.parser import MAX_WARNINGS


def refusal(query: str) -> QuerySyntaxError:
    with pytest.raises(QuerySyntaxError) as caught:
        parse_with_warnings(query)
    return caught.value


@pytest.mark.parametrize(
    ("query", "position", "says", "suggestion"),
    [
        # A level that is none of the six could never match: its synonym or nearest spelling is meant.
        ("level:eror", 6, "unknown level 'eror'; did you mean 'error'?", "level:error"),
        ("level:warning", 6, "did you mean 'warn'?", "level:warn"),
        ("level:CRITICAL", 6, "did you mean 'fatal'?", "level:fatal"),
        ('service:api level:"Err"', 18, "did you mean 'error'?", "service:api level:error"),
        ("level:(error OR eror)", 16, "did you mean 'error'?", "level:(error OR error)"),
        ("-level:dbug", 7, "did you mean 'debug'?", "-level:debug"),
        ("level:xyzzy", 6, "levels are trace, debug, info, warn, error, fatal", None),
        # A word with a colon whose name is no field: a typo, a key of `fields`, or text to quote.
        ("servce:api", 0, "did you mean 'service'?", "service:api"),
        ("Level:error", 0, "did you mean 'level'?", "level:error"),
        ("_exists_:trace_di", 9, "did you mean 'trace_id'?", "_exists_:trace_id"),
        ("status:500", 0, "did you mean fields.status?", "fields.status:500"),
        ("http.status:[500 TO 599]", 0, "did you mean fields.http.status?", "fields.http.status:[500 TO 599]"),
        ("10.0.0.1:8080", 0, 'quote the word: "10.0.0.1:8080"', '"10.0.0.1:8080"'),
        ("a:b:c", 0, 'quote the word: "a:b:c"', '"a:b:c"'),
        ("web-1:80 level:error", 0, 'quote the word: "web-1:80"', '"web-1:80" level:error'),
        ("fields:x", 0, 'quote the word: "fields:x"', '"fields:x"'),
        ("servce:", 0, "unknown field 'servce'", None),  # nothing after the colon: no query to suggest
        # A bracket inside a word starts no range: the word (or the field's value) is quoted.
        ("kernel[0]", 6, 'to search for kernel[0] quote it: "kernel[0]"', '"kernel[0]"'),
        ("oops (kernel{x} OR y)", 12, "quote it", 'oops ("kernel{x}" OR y)'),
        ("fields.path:/a[1]", 14, 'quote it: "/a[1]"', 'fields.path:"/a[1]"'),
        ("a [1 TO 2]", 2, "expected AND, OR or another clause, found '['", None),
    ],
)
def test_an_invalid_query_suggests_the_query_meant(
    query: str, position: int, says: str, suggestion: str | None
) -> None:
    error = refusal(query)
    assert error.position == position
    assert says in error.reason
    assert error.suggestion == suggestion
    assert error.extra == {"position": position} | ({"suggestion": suggestion} if suggestion else {})
    if suggestion is not None:
        parse(suggestion)  # every suggestion is a query that runs


def test_a_level_pattern_that_matches_no_level_is_refused() -> None:
    assert "the pattern 'eror*' matches no level" in refusal("level:eror*").reason
    assert parse("level:ERR*") == Wildcard("level", "err*")
    assert parse("level:?a*") == Wildcard("level", "?a*")  # warn


@pytest.mark.parametrize(
    ("query", "code", "position", "suggestion"),
    [
        ("timeout and level:error", "lowercase_operator", 8, "timeout AND level:error"),
        ("a Or b", "lowercase_operator", 2, "a OR b"),
        ("level:(error or fatal)", "lowercase_operator", 13, "level:(error OR fatal)"),
        ("(a or -b)", "lowercase_operator", 3, "(a OR -b)"),
        ("status=500", "equals_sign", 0, "fields.status:500"),
        ("service==api", "equals_sign", 0, "service:api"),
        ("level=warning", "equals_sign", 0, "level:warn"),
        ("x fields.http.status=404", "equals_sign", 2, "x fields.http.status:404"),
    ],
)
def test_a_valid_but_likely_wrong_query_warns_with_the_query_meant(
    query: str, code: str, position: int, suggestion: str
) -> None:
    parsed = parse_with_warnings(query)
    (warning,) = parsed.warnings
    assert (warning.code, warning.position, warning.suggestion) == (code, position, suggestion)
    assert parsed.node == parse(query)  # the query still means what it always did
    assert not parse_with_warnings(suggestion).warnings


def test_a_lowercase_operator_is_still_the_word_it_always_was() -> None:
    assert parse("timeout and reset") == all_of([Text(("timeout",)), Text(("and",)), Text(("reset",))])
    # In a level group it is no level value to refuse: the warning says what is wrong.
    assert parse("level:(error or fatal)") == all_of(
        [Term("level", "error"), Term("level", "or"), Term("level", "fatal")]
    )
    assert parse("level:(error OR fatal)") == any_of([Term("level", "error"), Term("level", "fatal")])


def test_each_mistake_gets_its_own_warning_in_query_order() -> None:
    warnings = parse_with_warnings("a or b and status=5").warnings
    assert [(warning.code, warning.position) for warning in warnings] == [
        ("lowercase_operator", 2),
        ("lowercase_operator", 7),
        ("equals_sign", 11),
    ]


@pytest.mark.parametrize(
    "query",
    [
        "level:error AND service:api",
        "or",  # alone: no clauses around it
        "and timeout",
        "timeout and",
        "timeout AND and",  # after an operator it is a word
        '"rock and roll"',
        "message:level=error",  # explicit full text
        "fields.url:a=b",  # a value
        "service:(a=b)",  # a value of the group's field
        "status!=500",
        "host:web-1:8080",  # a known field: the value holds the colon
        "fields.upstream:db:5432",
    ],
)
def test_queries_without_a_likely_mistake_have_no_warning(query: str) -> None:
    assert parse_with_warnings(query).warnings == ()


def test_a_query_gets_at_most_ten_warnings() -> None:
    assert len(parse_with_warnings("a or " * 20 + "b").warnings) == MAX_WARNINGS == 10


def test_hints_keep_parsing_linear() -> None:
    """Each suggestion is checked by parsing it once, without hints, for one error and at most ten warnings:
    hostile input stays cheap."""
    for query in ("a or " * 800, "x[" * 2000, "servce:" + "a:" * 2000, "a=b " * 1000):
        started = time.perf_counter()
        with contextlib.suppress(QuerySyntaxError):
            parse_with_warnings(query[:4096])
        assert time.perf_counter() - started < 0.5, query[:20]
