from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mintlog.domain.timeexpr import EARLIEST_TIME, LATEST_TIME, parse_time_expression
from mintlog.errors import BadRequest
from mintlog.query import QuerySyntaxError, all_of, any_of, parse
from mintlog.query.ast import MatchAll, MatchNone
from mintlog.query.filters import equals
from mintlog.roles.api.logs.search import build_search_query, decode_search_request
from mintlog.settings import SearchSettings

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SETTINGS = SearchSettings(default_size=50, max_size=1000)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("now-15m", NOW - timedelta(minutes=15)),
        ("now-1h", NOW - timedelta(hours=1)),
        ("now+2d", NOW + timedelta(days=2)),
        ("now-500ms", NOW - timedelta(milliseconds=500)),
        ("2026-11-26T10:00:00Z", datetime(2026, 11, 26, 10, tzinfo=UTC)),
        ("2026-11-26T11:00:00+01:00", datetime(2026, 11, 26, 10, tzinfo=UTC)),
        ("2026-11-26T10:00:00", datetime(2026, 11, 26, 10, tzinfo=UTC)),
    ],
)
def test_time_expressions(text: str, expected: datetime) -> None:
    assert parse_time_expression(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "now-15x", "now-", "2026-13-01", ""])
def test_bad_time_expressions_say_why(text: str) -> None:
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_time_expression(text, NOW)


@pytest.mark.parametrize(
    "text",
    [
        "now-999999999w",
        "now+999999999d",
        # In range as written, out of `datetime`'s range in UTC (the offset moves them past year 1 or 9999).
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+14:00",
        # Representable, but a default range or an hour added to them would not be.
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "0999-12-31T23:59:59Z",
        "9999-01-01T00:00:00.000001Z",
    ],
)
def test_out_of_range_time_expressions_are_value_errors(text: str) -> None:
    with pytest.raises(ValueError, match="out of range"):
        parse_time_expression(text, NOW)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1000-01-01T00:00:00Z", EARLIEST_TIME), ("9999-01-01T00:00:00Z", LATEST_TIME)],
)
def test_the_earliest_and_latest_times_are_accepted(text: str, expected: datetime) -> None:
    assert parse_time_expression(text, NOW) == expected


@pytest.mark.parametrize(
    "body", [b'{"from": "now-999999999w"}', b'{"to": "9999-12-31T23:59:59-14:00"}', b'{"from": "0001-01-01T00:00:00Z"}']
)
def test_out_of_range_search_time_is_400(body: bytes) -> None:
    with pytest.raises(BadRequest) as error:
        build_search_query("acme", decode_search_request(body), SETTINGS, NOW)
    assert error.value.code == "invalid_time"


def test_the_seed_body_becomes_a_tenant_scoped_query() -> None:
    request = decode_search_request(b'{"query": "timeout", "level": "error", "size": 10}')
    query = build_search_query("acme", request, SETTINGS, NOW)
    assert query.tenant_id == "acme"
    assert query.node == all_of([parse("timeout"), equals("level", "error")])
    assert query.now == NOW
    assert query.size == 10
    assert query.order == "desc"


def test_filters_accept_lists_and_ranges() -> None:
    request = decode_search_request(
        b'{"service": ["api", "web"], "host": "h1", "fields": {"status": 500}, "from": "now-1h", "to": "now"}'
    )
    query = build_search_query("acme", request, SETTINGS, NOW)
    assert query.node == all_of(
        [
            any_of([equals("service", "api"), equals("service", "web")]),
            equals("host", "h1"),
            equals("fields.status", 500),
        ]
    )
    assert query.start == NOW - timedelta(hours=1)
    assert query.end == NOW


def test_an_empty_body_searches_everything() -> None:
    query = build_search_query("acme", decode_search_request(b""), SETTINGS, NOW)
    assert query.node == MatchAll()
    assert query.size == 50


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "malformed_json"),
        (b'{"size": "ten"}', "invalid_search"),
        (b'{"tenant_id": "other"}', "invalid_search"),
        (b'{"size": 1001}', "invalid_size"),
        (b'{"size": 0}', "invalid_size"),
        (b'{"from": "yesterday"}', "invalid_time"),
        (b'{"from": "now", "to": "now-1h"}', "invalid_time"),
    ],
)
def test_bad_search_bodies_are_400_with_a_code(body: bytes, code: str) -> None:
    with pytest.raises(BadRequest) as error:
        build_search_query("acme", decode_search_request(body), SETTINGS, NOW)
    assert error.value.code == code


def test_invalid_utf8_in_a_search_body_is_400() -> None:
    with pytest.raises(BadRequest) as error:
        decode_search_request(b'{"query": "caf\xe9"}')
    assert error.value.code == "malformed_json"


def test_the_query_is_parsed_and_anded_with_the_filters() -> None:
    request = decode_search_request(
        b'{"query": "fields.status:[500 TO 599] OR timeout", "level": ["ERROR", "warn"], "fields": {"ok": false}}'
    )
    query = build_search_query("acme", request, SETTINGS, NOW)
    assert query.node == all_of(
        [
            parse("fields.status:[500 TO 599] OR timeout"),
            any_of([equals("level", "error"), equals("level", "warn")]),
            parse("fields.ok:false"),
        ]
    )


def test_an_empty_field_key_matches_nothing() -> None:
    query = build_search_query("acme", decode_search_request(b'{"fields": {"": "x"}}'), SETTINGS, NOW)
    assert query.node == MatchNone()


@pytest.mark.parametrize(("text", "position"), [("level:(error", 12), ("servce:api", 0), ('"open', 0)])
def test_a_malformed_query_is_400_invalid_query_with_a_position(text: str, position: int) -> None:
    body = b'{"query": ' + f'"{text.replace(chr(34), chr(92) + chr(34))}"'.encode() + b"}"
    with pytest.raises(QuerySyntaxError) as error:
        build_search_query("acme", decode_search_request(body), SETTINGS, NOW)
    assert error.value.code == "invalid_query"
    assert error.value.extra["position"] == position
    assert error.value.position == position
