"""Ingest validation: which events are accepted, and the reason given for each refused one."""

from __future__ import annotations

from typing import Any

import pytest

from mintlog.domain.validation import MAX_ATTRIBUTE_CHARS, Rejection, check_event, validate_events
from mintlog.settings import IngestSettings

# Small limits keep the examples readable; the rules do not depend on the sizes.
LIMITS = IngestSettings(
    max_message_bytes=64,
    max_fields_per_event=4,
    max_field_depth=3,
    max_key_length=16,
    max_value_bytes=16,
)

TYPICAL = {
    "service": "api",
    "level": "info",
    "message": "GET /users 200 12ms",
    "timestamp": "2026-11-26T10:00:00.123Z",
    "fields": {"user_id": "u123", "status": 200},
}


def reason_for(event: object, limits: IngestSettings = LIMITS) -> str | None:
    reason, _ = check_event(event, limits)
    return reason


ACCEPTED: list[tuple[str, Any]] = [
    ("typical event", TYPICAL),
    ("message only", {"message": "hello"}),
    ("fields only", {"fields": {"user": "u1"}}),
    ("unknown top-level key only", {"user": "u1"}),
    (
        "aliases msg, severity, ts, service_name, hostname",
        {"msg": "hi", "severity": 3, "ts": 1.5e9, "service_name": "api", "hostname": "h"},
    ),
    ("alias log and lvl", {"log": "hi\n", "lvl": "WARN"}),
    (
        "otel severity_number and severity_text",
        {"message": "m", "severity_number": 17, "severity_text": "ERROR"},
    ),
    ("@timestamp", {"message": "m", "@timestamp": "2026-11-26T10:00:00Z"}),
    ("integer timestamp", {"message": "m", "timestamp": 1_700_000_000_000}),
    (
        "null and empty known keys count as absent",
        {"message": "m", "level": None, "host": "", "trace_id": None, "fields": None},
    ),
    ("alias with another type is an extra key", {"message": "m", "log": {"level": "info"}, "host": "h1"}),
    (
        "unparsable level and timestamp strings are left to the pipeline",
        {"message": "m", "level": "LOUD", "timestamp": "yesterday"},
    ),
    (
        "trace and span ids",
        {"message": "m", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"},
    ),
    ("message exactly at the byte limit", {"message": "x" * 64}),
    ("multi-byte message at the byte limit", {"message": "é" * 32}),
    ("field value exactly at the byte limit", {"fields": {"k": "é" * 8}}),
    ("field name exactly at the length limit (dotted)", {"fields": {"abcdefg": {"hijklmno": 1}}}),
    ("nesting exactly at the depth limit", {"fields": {"a": {"b": {"c": 1}}}}),
    (
        "exactly as many values as the limit, top-level keys included",
        {"fields": {"a": 1, "b": 2}, "c": 3, "d": None},
    ),
    ("array of scalars", {"fields": {"tags": ["a", "b", 1, 2.5]}}),
    ("array of objects counts once", {"fields": {"items": [{"a": 1}, [2]], "x": 1, "y": 2, "z": 3}}),
    ("array of arrays within the depth limit", {"fields": {"m": [[1, 2]]}}),
    ("scalar types", {"fields": {"b": True, "n": None, "f": 1.5, "i": -(2**63)}}),
    ("largest unsigned 64-bit integer", {"fields": {"i": 2**64 - 1}}),
    ("non-ASCII text", {"message": "naïve café ✓", "fields": {"ключ": "значение"}}),
    ("blank message with fields", {"message": "   ", "fields": {"a": 1}}),
    ("source is just an extra key", {"message": "m", "source": "app"}),
    ("service at the length limit", {"message": "m", "service": "s" * MAX_ATTRIBUTE_CHARS}),
]


@pytest.mark.parametrize("event", [case[1] for case in ACCEPTED], ids=[case[0] for case in ACCEPTED])
def test_accepts(event: Any) -> None:
    assert reason_for(event) is None


REJECTED: list[tuple[str, Any, str]] = [
    ("array instead of object", [1, 2], "event is not a JSON object"),
    ("string instead of object", "hello", "event is not a JSON object"),
    ("null event", None, "event is not a JSON object"),
    ("message is a number", {"message": 42}, "`message` must be a string"),
    ("message is an object", {"message": {"text": "hi"}}, "`message` must be a string"),
    ("message too long", {"message": "x" * 65}, "`message` exceeds 64 bytes"),
    ("message too long in UTF-8 bytes", {"message": "é" * 33}, "`message` exceeds 64 bytes"),
    ("level is a float", {"message": "m", "level": 3.5}, "`level` must be a string or an integer"),
    ("level is a boolean", {"message": "m", "level": True}, "`level` must be a string or an integer"),
    (
        "level is an object",
        {"message": "m", "level": {"name": "info"}},
        "`level` must be a string or an integer",
    ),
    (
        "timestamp is a boolean",
        {"message": "m", "timestamp": False},
        "`timestamp` must be a string or a number",
    ),
    (
        "timestamp is a list",
        {"message": "m", "timestamp": [2026]},
        "`timestamp` must be a string or a number",
    ),
    ("service is a number", {"message": "m", "service": 7}, "`service` must be a string"),
    ("host is an object", {"message": "m", "host": {"name": "h"}}, "`host` must be a string"),
    ("trace_id is a number", {"message": "m", "trace_id": 1}, "`trace_id` must be a string"),
    ("fields is a list", {"message": "m", "fields": [1]}, "`fields` must be an object"),
    ("fields is a string", {"message": "m", "fields": "a=1"}, "`fields` must be an object"),
    ("service too long", {"message": "m", "service": "s" * 257}, "`service` is longer than 256 characters"),
    ("span_id too long", {"message": "m", "span_id": "0" * 257}, "`span_id` is longer than 256 characters"),
    ("level string too long", {"message": "m", "level": "i" * 257}, "`level` is longer than 256 characters"),
    (
        "level integer beyond 64 bits",
        {"message": "m", "level": 2**64},
        "`level` is an integer outside the 64-bit range",
    ),
    (
        "too many fields",
        {"fields": {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}},
        "`fields` has 5 values, limit 4",
    ),
    (
        "top-level keys count as fields",
        {"fields": {"a": 1, "b": 2, "c": 3}, "d": 4, "e": 5},
        "`fields` has 5 values, limit 4",
    ),
    (
        "array elements count as values",
        {"fields": {"tags": ["a", "b", "c", "d", "e"]}},
        "`fields` has 5 values, limit 4",
    ),
    (
        "a shadowed alias counts as a field",
        {"message": "m", "msg": "n", "fields": {"a": 1, "b": 2, "c": 3, "d": 4}},
        "`fields` has 5 values, limit 4",
    ),
    ("objects nested too deep", {"fields": {"a": {"b": {"c": {"d": 1}}}}}, "`fields` nests deeper than 3"),
    ("arrays nested too deep", {"fields": {"a": [[[1]]]}}, "`fields` nests deeper than 3"),
    (
        "objects in arrays nested too deep",
        {"fields": {"a": [{"b": {"c": 1}}]}},
        "`fields` nests deeper than 3",
    ),
    ("top-level key nested too deep", {"a": {"b": {"c": {"d": 1}}}}, "`fields` nests deeper than 3"),
    (
        "field name too long",
        {"fields": {"abcdefghijklmnopq": 1}},
        "field name longer than 16 characters: `abcdefghijklmnopq`",
    ),
    (
        "dotted field name too long",
        {"fields": {"abcdefgh": {"ijklmnop": 1}}},
        "field name longer than 16 characters: `abcdefgh.ijklmnop`",
    ),
    (
        "top-level field name too long",
        {"message": "m", "abcdefghijklmnopq": 1},
        "field name longer than 16 characters: `abcdefghijklmnopq`",
    ),
    ("empty field name", {"fields": {"": 1}}, "empty field name"),
    ("empty nested field name", {"fields": {"a": {"": 1}}}, "empty field name under `a.`"),
    ("field value too long", {"fields": {"k": "v" * 17}}, "field `k` exceeds 16 bytes"),
    ("field value too long in UTF-8 bytes", {"fields": {"k": "é" * 9}}, "field `k` exceeds 16 bytes"),
    ("array element too long", {"fields": {"k": ["v" * 17]}}, "field `k` exceeds 16 bytes"),
    (
        "array of objects too large as JSON",
        {"fields": {"k": [{"a": "bcdefghijklmnop"}]}},
        "field `k` exceeds 16 bytes (an array that holds objects or arrays is stored as one JSON string)",
    ),
    ("shadowed alias checked as a field", {"message": "m", "msg": "n" * 17}, "field `msg` exceeds 16 bytes"),
    (
        "integer beyond 64 bits",
        {"fields": {"big": 2**64}},
        "field `big` is an integer outside the 64-bit range",
    ),
    (
        "negative integer beyond 64 bits",
        {"fields": {"big": -(2**63) - 1}},
        "field `big` is an integer outside the 64-bit range",
    ),
    (
        "integer beyond 64 bits in an object in an array",
        {"fields": {"k": [{"n": 2**64}]}},
        "field `k` holds an integer outside the 64-bit range",
    ),
    (
        "integer beyond 64 bits in an array in an array of a top-level key",
        {"message": "m", "k": [1, [-(2**63) - 1]]},
        "field `k` holds an integer outside the 64-bit range",
    ),
    (
        "lone surrogate in message",
        {"message": "bad \ud800"},
        "`message`: string is not valid UTF-8 (lone surrogate)",
    ),
    (
        "lone surrogate in a field value",
        {"fields": {"k": "\udc00"}},
        "field `k`: string is not valid UTF-8 (lone surrogate)",
    ),
    (
        "lone surrogate in a field name",
        {"fields": {"k\ud800": 1}},
        "field name `k\ud800`: string is not valid UTF-8 (lone surrogate)",
    ),
    (
        "lone surrogate in a top-level key",
        {"message": "m", "\ud800": 1},
        "field name `\ud800`: string is not valid UTF-8 (lone surrogate)",
    ),
    (
        "lone surrogate in service",
        {"message": "m", "service": "a\ud800"},
        "`service`: string is not valid UTF-8 (lone surrogate)",
    ),
    (
        "lone surrogate in an array",
        {"fields": {"k": ["\ud800"]}},
        "field `k`: string is not valid UTF-8 (lone surrogate)",
    ),
    (
        "lone surrogate in an array of objects",
        {"fields": {"k": [{"a": "\ud800"}]}},
        "field `k`: string is not valid UTF-8 (lone surrogate)",
    ),
    ("value that is not JSON", {"fields": {"k": b"bytes"}}, "field `k` has an unsupported type (bytes)"),
    (
        "no message and no fields",
        {"service": "api", "level": "info"},
        "event has no `message` and no `fields`",
    ),
    ("empty object", {}, "event has no `message` and no `fields`"),
    (
        "blank message and empty fields",
        {"message": " \n", "fields": {}},
        "event has no `message` and no `fields`",
    ),
    ("fields holding only empty objects", {"fields": {"a": {}}}, "event has no `message` and no `fields`"),
]


@pytest.mark.parametrize(("event", "reason"), [case[1:] for case in REJECTED], ids=[case[0] for case in REJECTED])
def test_rejects_with_reason(event: Any, reason: str) -> None:
    assert reason_for(event) == reason


def test_default_limits_match_the_documented_reasons() -> None:
    limits = IngestSettings()

    assert reason_for({"message": "x" * 65537}, limits) == "`message` exceeds 65536 bytes"
    assert reason_for({"fields": {f"f{i}": i for i in range(300)}}, limits) == "`fields` has 300 values, limit 128"
    assert reason_for({"fields": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}}, limits) == "`fields` nests deeper than 5"
    assert reason_for({"fields": {"k" * 129: 1}}, limits) == (f"field name longer than 128 characters: `{'k' * 64}…`")


def test_batch_keeps_request_order_and_reports_every_bad_index() -> None:
    good_first = {"message": "first"}
    good_last = {"message": "last"}
    events: list[object] = [good_first, "oops", {"message": 1}, good_last, {}]

    accepted, indexes, rejections = validate_events(events, LIMITS)

    assert accepted == [good_first, good_last]
    assert accepted[0] is good_first
    assert indexes == [0, 3]
    assert rejections == [
        Rejection(index=1, reason="event is not a JSON object"),
        Rejection(index=2, reason="`message` must be a string"),
        Rejection(index=4, reason="event has no `message` and no `fields`"),
    ]


def test_batch_with_every_event_valid_has_no_rejections() -> None:
    events: list[object] = [dict(TYPICAL) for _ in range(3)]

    result = validate_events(events, IngestSettings())

    assert result.events == events
    assert result.indexes == [0, 1, 2]
    assert result.rejections == []


def test_empty_batch() -> None:
    assert validate_events([], LIMITS) == ([], [], [])


def test_validation_leaves_events_unchanged() -> None:
    event = {"msg": "m", "message": "n", "x": {"y": [1, {"z": 2}]}, "level": None}
    snapshot = repr(event)

    validate_events([event], LIMITS)

    assert repr(event) == snapshot


def test_check_event_counts_field_values_and_can_skip_the_content_rule() -> None:
    assert check_event({"level": "info"}, LIMITS, require_content=False) == (None, 0)
    assert check_event({"fields": {"a": 1, "b": [1, 2]}, "c": 3}, LIMITS) == (None, 4)
