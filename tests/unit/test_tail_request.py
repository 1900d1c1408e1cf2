"""The tail body (search's matching members plus `since`) and the Server-Sent Events frames it produces."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from mintlog.domain.events import LogEvent
from mintlog.errors import BadRequest
from mintlog.query import QuerySyntaxError
from mintlog.roles.api.logs.tail import build_tail_spec, decode_tail_request, sse_message, tail_request_of_parameters
from mintlog.roles.api.logs.tail_buffer import Dropped
from mintlog.roles.api.logs.tail_session import KEEPALIVE, ReplayTruncated, TailEnded

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def event(**changes: object) -> LogEvent:
    values: dict[str, object] = {
        "id": "0193-00001",
        "tenant_id": "t1",
        "timestamp": NOW,
        "received_at": NOW,
        "service": "checkout",
        "level": "error",
        "message": "payment gateway timeout\nat line 2",
        "host": "web-1",
        "fields": {"status": 503},
    }
    values.update(changes)
    return LogEvent(**values)  # type: ignore[arg-type]


def spec_of(body: str):
    return build_tail_spec("t1", decode_tail_request(body.encode()), NOW)


def test_an_empty_body_follows_every_event_without_replay() -> None:
    spec = spec_of("")
    assert spec.tenant_id == "t1"
    assert spec.since is None
    assert spec.matcher(event())
    assert spec.matcher(event(level="debug", service="other"))


def test_query_and_filters_match_as_for_search() -> None:
    spec = spec_of(
        '{"query": "gateway", "level": ["error", "fatal"], "service": "checkout", "fields": {"status": 503}}'
    )
    assert spec.matcher(event())
    assert not spec.matcher(event(level="warn"))
    assert not spec.matcher(event(service="search"))
    assert not spec.matcher(event(fields={"status": 200}))
    assert not spec.matcher(event(message="all good"))


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        ("now-15m", NOW - timedelta(minutes=15)),
        ("2026-11-26T10:30:00Z", datetime(2026, 11, 26, 10, 30, tzinfo=UTC)),
        ("2026-11-26T11:30:00+01:00", datetime(2026, 11, 26, 10, 30, tzinfo=UTC)),
    ],
)
def test_since_is_a_timestamp_or_a_relative_time(since: str, expected: datetime) -> None:
    assert spec_of(json.dumps({"since": since})).since == expected


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ('{"since": "yesterday"}', "invalid_time"),
        ('{"from": "now-1h"}', "invalid_tail"),  # search's paging members mean nothing to a tail
        ('{"cursor": "abc"}', "invalid_tail"),
        ('{"level": 3}', "invalid_tail"),
        ("{not json", "malformed_json"),
        ('{"query": "level:(error"}', "invalid_query"),
    ],
)
def test_a_bad_body_is_a_400_naming_the_problem(body: str, code: str) -> None:
    with pytest.raises(BadRequest) as refused:
        spec_of(body)
    assert refused.value.status == 400
    assert refused.value.code == code


def test_a_query_error_carries_its_position() -> None:
    with pytest.raises(QuerySyntaxError) as refused:
        spec_of('{"query": "level:error AND"}')
    assert refused.value.extra["position"] == len("level:error AND")


def test_an_event_frame_carries_the_event_id_and_the_event_as_json() -> None:
    frame = sse_message(event()).encode().decode()
    lines = frame.split("\r\n")
    assert lines[:2] == ["id: 0193-00001", "event: log"]
    assert lines[2].startswith("data: ")
    assert lines[3:] == ["", ""]  # one data line (newlines in the message are escaped), then the frame's end
    payload = json.loads(lines[2].removeprefix("data: "))
    assert payload["message"] == "payment gateway timeout\nat line 2"
    assert payload["fields"] == {"status": 503}
    assert payload["timestamp"] == "2026-11-26T12:00:00Z"


def test_control_frames() -> None:
    assert sse_message(KEEPALIVE).encode() == b": keepalive\r\n\r\n"
    assert sse_message(Dropped(7)).encode() == b'event: dropped\r\ndata: {"count":7}\r\n\r\n'
    assert sse_message(ReplayTruncated(100)).encode() == b'event: replay_truncated\r\ndata: {"replayed":100}\r\n\r\n'
    error = sse_message(TailEnded("bus_unavailable", "live events stopped")).encode().decode()
    assert error.startswith("event: error\r\ndata: ")
    assert json.loads(error.split("data: ")[1]) == {"code": "bus_unavailable", "detail": "live events stopped"}


def test_the_query_parameters_of_a_get_stand_for_the_body_members() -> None:
    request = tail_request_of_parameters(
        {
            "query": ["gateway"],
            "level": ["error", "fatal"],
            "service": ["checkout"],
            "fields": ['{"status": 503}'],
            "since": ["now-5m"],
        }
    )
    assert request == decode_tail_request(
        b'{"query": "gateway", "level": ["error", "fatal"], "service": ["checkout"], "fields": {"status": 503},'
        b' "since": "now-5m"}'
    )
    spec = build_tail_spec("t1", request, NOW)
    assert spec.matcher(event())
    assert not spec.matcher(event(fields={"status": 500}))
    assert spec.since == NOW - timedelta(minutes=5)
    assert tail_request_of_parameters({}) == decode_tail_request(b"")


@pytest.mark.parametrize(
    ("parameters", "says"),
    [
        ({"query": ["a", "b"]}, "'query' is given 2 times"),
        ({"fields": ["[1]"]}, "'fields' must be a JSON object"),
        ({"fields": ["{not json"]}, "'fields' must be a JSON object"),
    ],
)
def test_a_bad_query_parameter_is_400_invalid_tail(parameters: dict[str, list[str]], says: str) -> None:
    with pytest.raises(BadRequest) as refused:
        tail_request_of_parameters(parameters)
    assert refused.value.code == "invalid_tail"
    assert says in refused.value.detail


def test_the_query_warnings_are_sent_as_warning_frames() -> None:
    spec = spec_of('{"query": "timeout or reset"}')
    (warning,) = spec.warnings
    frame = sse_message(warning).encode().decode()
    assert frame.startswith("event: warning\r\ndata: ")
    assert json.loads(frame.split("data: ")[1]) == {
        "code": "lowercase_operator",
        "message": warning.message,
        "position": 8,
        "suggestion": "timeout OR reset",
    }
    assert spec_of('{"query": "timeout OR reset"}').warnings == ()
