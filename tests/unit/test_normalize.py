"""Pipeline normalization: what a raw ingest event looks like once it is a `LogEvent`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from mintlog.domain.events import (
    LogEvent,
    ParsedBatch,
    RawBatch,
    event_id,
)
from mintlog.domain.normalize import normalize_batch, normalize_event
from mintlog.domain.streams import decode_parsed_batch, encode_bus_message
from mintlog.settings import IngestSettings

RECEIVED_AT = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def normalize(raw: dict[str, Any], limits: IngestSettings | None = None) -> LogEvent:
    return normalize_event(
        raw,
        tenant_id="acme",
        event_id="b1-00000",
        received_at=RECEIVED_AT,
        source="http",
        default_service="unknown-service",
        default_host="unknown-host",
        limits=limits or IngestSettings(),
    )


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_typical_event() -> None:
    event = normalize(
        {
            "service": "api",
            "level": "info",
            "message": "GET /users 200 12ms",
            "timestamp": "2026-11-26T10:00:00.123Z",
            "fields": {"user_id": "u123", "status": 200},
        }
    )

    assert event == LogEvent(
        id="b1-00000",
        tenant_id="acme",
        timestamp=utc(2026, 11, 26, 10, 0, 0, 123000),
        received_at=RECEIVED_AT,
        service="api",
        level="info",
        message="GET /users 200 12ms",
        host="unknown-host",
        fields={"user_id": "u123", "status": 200},
        source="http",
    )


LEVELS: list[tuple[str, str, Any, str]] = [
    ("info", "level", "info", "info"),
    ("uppercase WARNING", "level", "WARNING", "warn"),
    ("mixed case and spaces", "level", "  Error ", "error"),
    ("warning", "level", "warning", "warn"),
    ("wrn", "level", "wrn", "warn"),
    ("err", "level", "err", "error"),
    ("eror", "level", "eror", "error"),
    ("crit", "level", "crit", "fatal"),
    ("critical", "level", "CRITICAL", "fatal"),
    ("alert", "level", "alert", "fatal"),
    ("emerg", "level", "emerg", "fatal"),
    ("emergency", "level", "Emergency", "fatal"),
    ("panic", "level", "panic", "fatal"),
    ("fatal", "level", "FATAL", "fatal"),
    ("notice", "level", "notice", "info"),
    ("informational", "level", "informational", "info"),
    ("information (.NET)", "level", "Information", "info"),
    ("inf", "level", "INF", "info"),
    ("verbose", "level", "verbose", "debug"),
    ("dbg", "level", "dbg", "debug"),
    ("debug", "level", "DEBUG", "debug"),
    ("trc", "level", "trc", "trace"),
    ("trace", "level", "trace", "trace"),
    ("syslog 0 emerg", "level", 0, "fatal"),
    ("syslog 1 alert", "level", 1, "fatal"),
    ("syslog 2 crit", "level", 2, "fatal"),
    ("syslog 3 err", "level", 3, "error"),
    ("syslog 4 warning", "level", 4, "warn"),
    ("syslog 5 notice", "level", 5, "info"),
    ("syslog 6 info", "level", 6, "info"),
    ("syslog 7 debug", "level", 7, "debug"),
    ("syslog number as string", "level", "3", "error"),
    ("pino 30", "level", 30, "info"),
    ("pino 50", "level", 50, "error"),
    ("severity alias", "severity", "WARN", "warn"),
    ("severity alias numeric is syslog", "severity", 4, "warn"),
    ("lvl alias", "lvl", "e", "error"),
    ("severity_text alias", "severity_text", "Fatal", "fatal"),
    ("otel 1 trace", "severity_number", 1, "trace"),
    ("otel 4 trace", "severity_number", 4, "trace"),
    ("otel 5 debug", "severity_number", 5, "debug"),
    ("otel 9 info", "severity_number", 9, "info"),
    ("otel 12 info", "severity_number", 12, "info"),
    ("otel 13 warn", "severity_number", 13, "warn"),
    ("otel 17 error", "severity_number", 17, "error"),
    ("otel 20 error", "severity_number", 20, "error"),
    ("otel 21 fatal", "severity_number", 21, "fatal"),
    ("otel 24 fatal", "severity_number", 24, "fatal"),
    ("otel number as string", "severity_number", "17", "error"),
    ("otel number given a name", "severity_number", "warn", "warn"),
]


@pytest.mark.parametrize(("key", "value", "expected"), [case[1:] for case in LEVELS], ids=[case[0] for case in LEVELS])
def test_level(key: str, value: Any, expected: str) -> None:
    event = normalize({"message": "m", key: value})

    assert event.level == expected
    assert "level_original" not in event.fields


UNKNOWN_LEVELS: list[tuple[str, str, Any]] = [
    ("unknown name", "level", "LOUD"),
    ("syslog number out of range", "level", 8),
    ("otel number out of range", "severity_number", 25),
    ("otel unspecified", "severity_number", 0),
    ("negative number", "level", -1),
    ("not ASCII digits", "level", "³"),
]


@pytest.mark.parametrize(
    ("key", "value"), [case[1:] for case in UNKNOWN_LEVELS], ids=[case[0] for case in UNKNOWN_LEVELS]
)
def test_unknown_level_becomes_info_and_keeps_the_original(key: str, value: Any) -> None:
    event = normalize({"message": "m", key: value})

    assert event.level == "info"
    assert event.fields["level_original"] == value


def test_missing_level_is_info_without_an_original() -> None:
    event = normalize({"message": "m"})

    assert event.level == "info"
    assert event.fields == {}


def test_level_original_never_overwrites_an_explicit_field() -> None:
    event = normalize({"message": "m", "level": "LOUD", "fields": {"level_original": "mine"}})

    assert event.fields == {"level_original": "mine"}


TIMESTAMPS: list[tuple[str, Any, datetime]] = [
    ("RFC 3339 with Z", "2026-11-26T10:00:00Z", utc(2026, 11, 26, 10)),
    ("milliseconds", "2026-11-26T10:00:00.123Z", utc(2026, 11, 26, 10, 0, 0, 123000)),
    ("nanoseconds truncated", "2026-11-26T10:00:00.123456789Z", utc(2026, 11, 26, 10, 0, 0, 123456)),
    ("positive offset", "2026-11-26T12:00:00+02:00", utc(2026, 11, 26, 10)),
    ("negative offset", "2026-11-26T05:30:00-04:30", utc(2026, 11, 26, 10)),
    ("offset without colon", "2026-11-26T12:00:00+0200", utc(2026, 11, 26, 10)),
    ("+00:00", "2026-11-26T10:00:00+00:00", utc(2026, 11, 26, 10)),
    ("no offset means UTC", "2026-11-26T10:00:00", utc(2026, 11, 26, 10)),
    ("space separator", "2026-11-26 10:00:00", utc(2026, 11, 26, 10)),
    ("space separator with fraction", "2026-11-26 10:00:00.250", utc(2026, 11, 26, 10, 0, 0, 250000)),
    ("comma fraction (Python logging)", "2026-11-26 10:00:00,250", utc(2026, 11, 26, 10, 0, 0, 250000)),
    ("lowercase t and z", "2026-11-26t10:00:00z", utc(2026, 11, 26, 10)),
    ("date only", "2026-11-26", utc(2026, 11, 26)),
    ("basic ISO form", "20261126T100000Z", utc(2026, 11, 26, 10)),
    ("slashes", "2026/11/26 10:00:00.5", utc(2026, 11, 26, 10, 0, 0, 500000)),
    ("RFC 2822", "Thu, 26 Nov 2026 12:00:00 +0200", utc(2026, 11, 26, 10)),
    ("RFC 1123 GMT", "Thu, 26 Nov 2026 10:00:00 GMT", utc(2026, 11, 26, 10)),
    ("Apache access log", "26/Nov/2026:12:00:00 +0200", utc(2026, 11, 26, 10)),
    ("surrounding spaces", " 2026-11-26T10:00:00Z ", utc(2026, 11, 26, 10)),
    ("trailing UTC", "2026-11-26 10:00:00.5 UTC", utc(2026, 11, 26, 10, 0, 0, 500000)),
    ("Go time.String", "2026-11-26 12:00:00.123456789 +0200 UTC", utc(2026, 11, 26, 10, 0, 0, 123456)),
    ("epoch seconds", 1_700_000_000, utc(2023, 11, 14, 22, 13, 20)),
    ("epoch seconds float", 1_700_000_000.25, utc(2023, 11, 14, 22, 13, 20, 250000)),
    ("epoch milliseconds", 1_700_000_000_123, utc(2023, 11, 14, 22, 13, 20, 123000)),
    ("epoch milliseconds float", 1_700_000_000_123.5, utc(2023, 11, 14, 22, 13, 20, 123500)),
    ("epoch microseconds", 1_700_000_000_123_456, utc(2023, 11, 14, 22, 13, 20, 123456)),
    ("epoch nanoseconds", 1_700_000_000_123_456_789, utc(2023, 11, 14, 22, 13, 20, 123456)),
    ("epoch nanoseconds float", 1.7e18, utc(2023, 11, 14, 22, 13, 20)),
    ("epoch zero", 0, utc(1970, 1, 1)),
    ("epoch seconds as string", "1700000000", utc(2023, 11, 14, 22, 13, 20)),
    ("epoch float as string", "1700000000.5", utc(2023, 11, 14, 22, 13, 20, 500000)),
    ("epoch milliseconds as string", "1700000000123", utc(2023, 11, 14, 22, 13, 20, 123000)),
    ("epoch nanoseconds as string", "1700000000123456789", utc(2023, 11, 14, 22, 13, 20, 123456)),
    ("syslog date, year of arrival", "Nov 26 10:00:00", utc(2026, 11, 26, 10)),
    ("syslog date a day ahead of arrival is last year's", "Nov 28 10:00:00", utc(2025, 11, 28, 10)),
    ("HDFS yyMMdd HHmmss", "081109 203615", utc(2008, 11, 9, 20, 36, 15)),
    ("Spark yy/MM/dd", "17/06/09 20:10:40", utc(2017, 6, 9, 20, 10, 40)),
    ("Android MM-dd with milliseconds", "03-17 16:13:38.811", utc(2026, 3, 17, 16, 13, 38, 811000)),
    ("Proxifier [MM.dd HH:mm:ss]", "[10.30 16:49:06]", utc(2026, 10, 30, 16, 49, 6)),
    ("ctime (Apache error log)", "Sun Dec 04 04:47:44 2005", utc(2005, 12, 4, 4, 47, 44)),
]


@pytest.mark.parametrize(("value", "expected"), [case[1:] for case in TIMESTAMPS], ids=[case[0] for case in TIMESTAMPS])
def test_timestamp(value: Any, expected: datetime) -> None:
    event = normalize({"message": "m", "timestamp": value})

    assert event.timestamp == expected
    assert event.timestamp.tzinfo is UTC
    assert "timestamp_original" not in event.fields


@pytest.mark.parametrize("key", ["ts", "time", "@timestamp"])
def test_timestamp_aliases(key: str) -> None:
    assert normalize({"message": "m", key: "2026-11-26T10:00:00Z"}).timestamp == utc(2026, 11, 26, 10)


UNPARSABLE_TIMESTAMPS: list[tuple[str, Any]] = [
    ("words", "yesterday"),
    ("hour 24", "2026-11-26T24:00:00Z"),
    ("epoch beyond year 9999", 10**30),
    ("float epoch beyond year 9999", 1e30),
    ("not a number", "nan"),
    ("infinity", "inf"),
    ("only spaces", "   "),
    ("partial date", "2026-11-"),
]


@pytest.mark.parametrize(
    "value", [case[1] for case in UNPARSABLE_TIMESTAMPS], ids=[case[0] for case in UNPARSABLE_TIMESTAMPS]
)
def test_unparsable_timestamp_becomes_received_at_and_keeps_the_original(value: Any) -> None:
    event = normalize({"message": "m", "timestamp": value})

    assert event.timestamp == RECEIVED_AT
    assert event.fields["timestamp_original"] == value


def test_missing_timestamp_is_received_at_without_an_original() -> None:
    event = normalize({"message": "m"})

    assert event.timestamp == RECEIVED_AT
    assert event.fields == {}


def test_naive_received_at_is_taken_as_utc() -> None:
    event = normalize_event(
        {"message": "m"},
        tenant_id="acme",
        event_id="b1-00000",
        received_at=datetime(2026, 11, 26, 12),
        source="http",
        default_service="s",
        default_host="h",
    )

    assert event.received_at == RECEIVED_AT
    assert event.timestamp.tzinfo is UTC


def test_received_at_with_an_offset_is_converted_to_utc() -> None:
    received_at = datetime(2026, 11, 26, 14, tzinfo=timezone(timedelta(hours=2)))

    event = normalize_event(
        {"message": "m"},
        tenant_id="acme",
        event_id="b1-00000",
        received_at=received_at,
        source="http",
        default_service="s",
        default_host="h",
    )

    assert event.received_at.tzinfo is UTC
    assert event.received_at == RECEIVED_AT


MESSAGES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "JSON message lifted, msg becomes the message",
        {"message": '{"msg": "user logged in", "user": {"id": "u1"}, "ok": true}'},
        {"message": "user logged in", "fields": {"user.id": "u1", "ok": True}},
    ),
    (
        "JSON message without a message keeps the text",
        {"message": '{"user": "u1"}'},
        {"message": '{"user": "u1"}', "fields": {"user": "u1"}},
    ),
    (
        "JSON message gives level, service, host, timestamp and trace ids when absent",
        {
            "log": '{"level": "error", "service": "db", "hostname": "h1", "ts": 1700000000, '
            '"trace_id": "t1", "message": "boom"}\n'
        },
        {
            "message": "boom",
            "level": "error",
            "service": "db",
            "host": "h1",
            "timestamp": utc(2023, 11, 14, 22, 13, 20),
            "trace_id": "t1",
            "fields": {},
        },
    ),
    (
        "JSON message attributes never replace the event's own",
        {
            "message": '{"level": "error", "service": "db", "message": "boom"}',
            "level": "warn",
            "service": "api",
        },
        {"message": "boom", "level": "warn", "service": "api", "fields": {"level": "error", "service": "db"}},
    ),
    (
        "lifted keys never overwrite explicit fields",
        {"message": '{"user": "lifted", "other": 1}', "fields": {"user": "explicit"}},
        {"fields": {"user": "explicit", "other": 1}},
    ),
    (
        "JSON fields object merges at the root",
        {"message": '{"message": "m", "fields": {"a": 1}}'},
        {"message": "m", "fields": {"a": 1}},
    ),
    (
        "JSON array is not lifted",
        {"message": '[{"a": 1}]'},
        {"message": '[{"a": 1}]', "fields": {}},
    ),
    (
        "broken JSON is not lifted",
        {"message": '{"a": 1'},
        {"message": '{"a": 1', "fields": {}},
    ),
    (
        "JSON with a lone surrogate escape is not lifted",
        {"message": '{"a": "\\ud800"}'},
        {"message": '{"a": "\\ud800"}', "fields": {}},
    ),
    (
        "logfmt lifted, msg becomes the message, unquoted numbers become numbers",
        {"message": 'level=warn msg="disk almost full" pct=93 load=0.75 mount=/var'},
        {"message": "disk almost full", "level": "warn", "fields": {"pct": 93, "load": 0.75, "mount": "/var"}},
    ),
    (
        "logfmt without a message keeps the text",
        {"message": "user=u1 action=login"},
        {"message": "user=u1 action=login", "fields": {"user": "u1", "action": "login"}},
    ),
    (
        "logfmt escapes and empty values",
        {"message": 'msg="say \\"hi\\"\\nbye" path="C:\\\\tmp" empty= quoted=""'},
        {"message": 'say "hi"\nbye', "fields": {"path": "C:\\tmp", "empty": "", "quoted": ""}},
    ),
    (
        "logfmt quoted values first, between and last",
        {"message": 'a="x y" b=1 c="" d="k=v"'},
        {"message": 'a="x y" b=1 c="" d="k=v"', "fields": {"a": "x y", "b": 1, "c": "", "d": "k=v"}},
    ),
    (
        "text glued to a closing quote is not logfmt",
        {"message": 'a="x"y b=1'},
        {"message": 'a="x"y b=1', "fields": {}},
    ),
    (
        "quoted word without a key is not logfmt",
        {"message": 'said "hi" a=1 b=2'},
        {"message": 'said "hi" a=1 b=2', "fields": {}},
    ),
    (
        "key glued to a quote without = is not logfmt",
        {"message": 'a"x" b=1 c=2'},
        {"message": 'a"x" b=1 c=2', "fields": {}},
    ),
    (
        "unbalanced quotes are not logfmt",
        {"message": 'a="x b=1 c="y'},
        {"message": 'a="x b=1 c="y', "fields": {}},
    ),
    (
        "logfmt time key is the timestamp",
        {"message": "time=2026-11-26T10:00:00Z msg=started"},
        {"message": "started", "timestamp": utc(2026, 11, 26, 10), "fields": {}},
    ),
    (
        "a single pair is not logfmt",
        {"message": "retry=3"},
        {"message": "retry=3", "fields": {}},
    ),
    (
        "text with a pair is not logfmt",
        {"message": "GET /search?q=1 took 5ms"},
        {"message": "GET /search?q=1 took 5ms", "fields": {}},
    ),
    (
        "unterminated quote is not logfmt",
        {"message": 'a=1 msg="open'},
        {"message": 'a=1 msg="open', "fields": {}},
    ),
    (
        "trailing newline removed",
        {"log": "container started\r\n"},
        {"message": "container started", "fields": {}},
    ),
    (
        "no message with fields",
        {"fields": {"a": 1}},
        {"message": "", "fields": {"a": 1}},
    ),
]


@pytest.mark.parametrize(("raw", "expected"), [case[1:] for case in MESSAGES], ids=[case[0] for case in MESSAGES])
def test_message(raw: dict[str, Any], expected: dict[str, Any]) -> None:
    event = normalize(raw)

    assert {name: getattr(event, name) for name in expected} == expected


SMALL_LIMITS = IngestSettings(max_fields_per_event=3, max_key_length=8, max_value_bytes=16)

NOT_LIFTED: list[tuple[str, str]] = [
    ("too many fields together with the event's own", '{"b": 1, "c": 2, "d": 3}'),
    ("field name too long", '{"abcdefghi": 1}'),
    ("value too long", '{"a": "0123456789abcdefg"}'),
    ("level of a wrong type", '{"level": 1.5, "b": 1}'),
    ("logfmt value too long", "a=0123456789abcdefg b=1"),
]


@pytest.mark.parametrize("message", [case[1] for case in NOT_LIFTED], ids=[case[0] for case in NOT_LIFTED])
def test_message_that_would_break_the_limits_stays_text(message: str) -> None:
    event = normalize({"message": message, "fields": {"a": 0}}, SMALL_LIMITS)

    assert event.message == message
    assert event.fields == {"a": 0}
    assert event.level == "info"


FIELDS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "nested objects flattened",
        {"fields": {"http": {"status": 500, "req": {"method": "GET"}}}},
        {"http.status": 500, "http.req.method": "GET"},
    ),
    (
        "array of scalars kept",
        {"fields": {"tags": ["a", "b"], "ids": [1, 2]}},
        {"tags": ["a", "b"], "ids": [1, 2]},
    ),
    (
        "array of objects as JSON",
        {"fields": {"items": [{"sku": "x", "qty": 2}]}},
        {"items": '[{"sku":"x","qty":2}]'},
    ),
    ("array of arrays as JSON", {"fields": {"matrix": [[1, 2], [3]]}}, {"matrix": "[[1,2],[3]]"}),
    ("empty object vanishes", {"fields": {"a": {}, "b": 1}}, {"b": 1}),
    ("null value kept", {"fields": {"a": None}}, {"a": None}),
    (
        "unknown top-level keys moved into fields",
        {"user": "u1", "http": {"status": 200}},
        {"user": "u1", "http.status": 200},
    ),
    ("fields wins over a top-level key", {"user": "top", "fields": {"user": "fields"}}, {"user": "fields"}),
    ("source kept as a field", {"source": "worker-3"}, {"source": "worker-3"}),
    ("shadowed alias kept as a field", {"message": "m", "msg": "other"}, {"msg": "other"}),
    (
        "severity_text kept when severity_number wins",
        {"severity_text": "Err", "severity_number": 17},
        {"severity_text": "Err"},
    ),
    (
        "alias of another type kept as a field",
        {"log": {"file": {"path": "/var/log/app"}}},
        {"log.file.path": "/var/log/app"},
    ),
    ("canonical key of another type kept as a field", {"host": {"name": "h1"}}, {"host.name": "h1"}),
    (
        "null and empty known keys dropped",
        {"level": None, "trace_id": "", "hostname": None, "a": 1},
        {"a": 1},
    ),
]


@pytest.mark.parametrize(("raw", "expected"), [case[1:] for case in FIELDS], ids=[case[0] for case in FIELDS])
def test_fields(raw: dict[str, Any], expected: dict[str, Any]) -> None:
    assert normalize({"message": "m", **raw}).fields == expected


ATTRIBUTES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("defaults for missing service and host", {}, {"service": "unknown-service", "host": "unknown-host"}),
    (
        "defaults for blank service and host",
        {"service": "  ", "host": ""},
        {"service": "unknown-service", "host": "unknown-host"},
    ),
    (
        "service and host trimmed",
        {"service": " api ", "host": "web-1\n"},
        {"service": "api", "host": "web-1"},
    ),
    (
        "aliases service_name and hostname",
        {"service_name": "api", "hostname": "web-1"},
        {"service": "api", "host": "web-1"},
    ),
    ("canonical key wins over its alias", {"service": "api", "service_name": "other"}, {"service": "api"}),
    ("empty canonical key yields to its alias", {"service": "", "service_name": "api"}, {"service": "api"}),
    ("message wins over msg and log", {"log": "c", "msg": "b", "message": "a"}, {"message": "a"}),
    ("trace and span ids", {"trace_id": "abc", "span_id": "def"}, {"trace_id": "abc", "span_id": "def"}),
    ("no trace and span ids", {}, {"trace_id": None, "span_id": None}),
    ("source always from the endpoint", {"source": "app"}, {"source": "http"}),
]


@pytest.mark.parametrize(("raw", "expected"), [case[1:] for case in ATTRIBUTES], ids=[case[0] for case in ATTRIBUTES])
def test_attributes(raw: dict[str, Any], expected: dict[str, Any]) -> None:
    event = normalize({"message": "m", **raw})

    assert {name: getattr(event, name) for name in expected} == expected


def test_normalization_leaves_the_raw_event_unchanged() -> None:
    raw = {"message": '{"msg": "x", "a": {"b": 1}}', "level": "LOUD", "fields": {"c": [1, {"d": 2}]}, "e": 1}
    snapshot = repr(raw)

    normalize(raw)

    assert repr(raw) == snapshot


def test_batch_ids_follow_the_position_in_the_batch() -> None:
    batch = RawBatch(
        batch_id="0193a1b2c3d4",
        tenant_id="acme",
        received_at=RECEIVED_AT,
        source="otlp",
        events=[{"message": "first"}, {"message": "second"}, {"message": "third"}],
    )

    events = normalize_batch(batch, default_service="svc", default_host="host")

    assert [event.id for event in events] == [event_id("0193a1b2c3d4", index) for index in range(3)]
    assert [event.message for event in events] == ["first", "second", "third"]
    assert {(event.tenant_id, event.source, event.received_at) for event in events} == {("acme", "otlp", RECEIVED_AT)}
    assert {(event.service, event.host) for event in events} == {("svc", "host")}


ROUNDTRIP_CORPUS: list[tuple[str, dict[str, Any]]] = [
    (
        "typical",
        {
            "service": "api",
            "level": "info",
            "message": "GET /users 200 12ms",
            "timestamp": "2026-11-26T10:00:00.123Z",
            "fields": {"user_id": "u123", "status": 200},
        },
    ),
    (
        "lifted JSON with nested data",
        {"message": '{"msg": "x", "a": {"b": [1, 2]}, "c": [{"d": null}], "n": 18446744073709551615}'},
    ),
    (
        "originals of every type",
        {"message": "m", "level": 99, "timestamp": "soon", "fields": {"f": 1.5, "b": False, "n": None}},
    ),
    ("non-ASCII", {"message": "café ✓ 日本", "fields": {"ключ": ["значение", 1]}}),
    ("offset timestamp", {"message": "m", "timestamp": "2026-11-26T10:00:00.999999+05:45"}),
]


@pytest.mark.parametrize("raw", [case[1] for case in ROUNDTRIP_CORPUS], ids=[case[0] for case in ROUNDTRIP_CORPUS])
def test_events_roundtrip_through_the_bus_encoding(raw: dict[str, Any]) -> None:
    batch = RawBatch(batch_id="b1", tenant_id="acme", received_at=RECEIVED_AT, source="http", events=[raw])
    events = normalize_batch(batch, default_service="svc", default_host="host")

    message = ParsedBatch(batch_id="b1", tenant_id="acme", events=events)
    decoded = decode_parsed_batch(encode_bus_message(message))

    assert decoded.events == events
