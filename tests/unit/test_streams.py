"""The bus page (`mintlog.domain.streams`) keeps the wire format: stream names, subjects and message bytes are what
every earlier release wrote, so a Mintlog upgraded in place keeps reading its own streams (and `nats sub` users
keep their filters)."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from mintlog.domain.alerting import AlertEvent, IncidentEvent
from mintlog.domain.events import LogEvent, ParsedBatch, RawBatch
from mintlog.domain.streams import (
    STREAMS,
    alerts_subject,
    dead_letter_subject,
    decode_alert_event,
    decode_incident_event,
    decode_parsed_batch,
    decode_raw_batch,
    encode_bus_message,
    encode_event,
    incidents_subject,
    parsed_subject,
    pings_subject,
    raw_subject,
)

T = datetime(2026, 12, 5, 10, 0, 0, 123456, tzinfo=UTC)
RAW = RawBatch(
    batch_id="b1",
    tenant_id="acme",
    received_at=T,
    source="http",
    events=[{"message": "hi", "fields": {"n": 1}}],
    first_index=2,
)
PARSED = ParsedBatch(
    batch_id="b1",
    tenant_id="acme",
    events=[
        LogEvent(
            id="b1-00002",
            tenant_id="acme",
            timestamp=T,
            received_at=T,
            service="api",
            level="warn",
            message="hi",
            host="h",
            fields={"n": 1},
        )
    ],
)
ALERT = AlertEvent(
    id="alert:r1:g:1",
    tenant_id="acme",
    rule_id="r1",
    rule_name="errors",
    dedup_key="r1:g",
    group={},
    previous_state="pending",
    state="firing",
    value=6.0,
    threshold=5.0,
    comparator=">",
    window_start=T,
    window_end=T,
    evaluated_at=T,
    severity="high",
    labels={},
    message="6 errors",
    channel_ids=["c1"],
    auto_resolve_incident=True,
)
INCIDENT = IncidentEvent(
    id="e1",
    type="incident.triggered",
    tenant_id="acme",
    incident_id="i1",
    title="errors",
    severity="high",
    status="triggered",
    occurred_at=T,
    actor="system",
    notify=True,
    channel_ids=["c1"],
)

# The bytes the codecs of release 786d64e (before the bus page) wrote for the messages above.
RAW_BYTES = bytes.fromhex(
    "87a474797065a3726177a862617463685f6964a26231a974656e616e745f6964a461636d65ab72656365697665645f6174d7ff1d6f"
    "28006b13e0a0a6736f75726365a468747470a66576656e74739182a76d657373616765a26869a66669656c647381a16e01ab666972"
    "73745f696e64657802"
)
PARSED_BYTES = bytes.fromhex(
    "84a474797065a6706172736564a862617463685f6964a26231a974656e616e745f6964a461636d65a66576656e74739189a26964a8"
    "62312d3030303032a974656e616e745f6964a461636d65a974696d657374616d70d7ff1d6f28006b13e0a0ab726563656976656"
    "45f6174d7ff1d6f28006b13e0a0a773657276696365a3617069a56c6576656ca47761726ea76d657373616765a26869a4686f7374"
    "a168a66669656c647381a16e01"
)
ALERT_BYTES = (
    b'{"id":"alert:r1:g:1","tenant_id":"acme","rule_id":"r1","rule_name":"errors","dedup_key":"r1:g","group":{},'
    b'"previous_state":"pending","state":"firing","value":6.0,"threshold":5.0,"comparator":">",'
    b'"window_start":"2026-12-05T10:00:00.123456Z","window_end":"2026-12-05T10:00:00.123456Z",'
    b'"evaluated_at":"2026-12-05T10:00:00.123456Z","severity":"high","labels":{},"message":"6 errors",'
    b'"channel_ids":["c1"],"auto_resolve_incident":true,"sample_event_ids":[],"error":null,"context":null}'
)
# What an instance from before `AlertEvent.context` publishes: a rolling upgrade must still read it.
ALERT_BYTES_BEFORE_CONTEXT = ALERT_BYTES.replace(b',"context":null}', b"}")
INCIDENT_BYTES = (
    b'{"id":"e1","type":"incident.triggered","tenant_id":"acme","incident_id":"i1","title":"errors",'
    b'"severity":"high","status":"triggered","occurred_at":"2026-12-05T10:00:00.123456Z","actor":"system",'
    b'"notify":true,"channel_ids":["c1"],"dedup_key":null,"rule_id":null,"alert":null,"silenced_by":null,'
    b'"content":null}'
)


def test_streams_are_the_ones_every_release_created() -> None:
    assert [(s.name, s.subjects, s.bulk, s.work_queue) for s in STREAMS] == [
        ("LOGS_RAW", ("logs.raw.>",), True, True),
        ("LOGS_PARSED", ("logs.parsed.>",), True, True),
        ("ALERTS_EVENTS", ("alerts.events.>",), False, False),
        ("INCIDENTS_EVENTS", ("incidents.events.>",), False, False),
        ("DEAD_LETTERS", ("deadletter.>",), False, False),
        ("UPTIME_PINGS", ("uptime.pings.>",), False, True),
    ]


def test_subjects_are_the_ones_every_release_published_on() -> None:
    assert raw_subject("acme") == "logs.raw.acme"
    assert parsed_subject("acme") == "logs.parsed.acme"
    assert alerts_subject("acme") == "alerts.events.acme"
    assert incidents_subject("acme") == "incidents.events.acme"
    assert dead_letter_subject("logs.raw.acme") == "deadletter.logs.raw.acme"
    assert pings_subject("acme") == "uptime.pings.acme"


def test_every_subject_lies_in_its_own_stream_only() -> None:
    subjects = {
        "LOGS_RAW": raw_subject("t-1"),
        "LOGS_PARSED": parsed_subject("t-1"),
        "ALERTS_EVENTS": alerts_subject("t-1"),
        "INCIDENTS_EVENTS": incidents_subject("t-1"),
        "DEAD_LETTERS": dead_letter_subject(raw_subject("t-1")),
        "UPTIME_PINGS": pings_subject("t-1"),
    }
    for stream in STREAMS:
        for name, subject in subjects.items():
            in_stream = any(subject.startswith(pattern.removesuffix(">")) for pattern in stream.subjects)
            assert in_stream == (name == stream.name), (stream.name, subject)


@pytest.mark.parametrize(
    ("message", "expected"),
    [pytest.param(RAW, RAW_BYTES, id="raw"), pytest.param(PARSED, PARSED_BYTES, id="parsed")],
)
def test_log_batches_are_the_same_message_pack_bytes_and_decode_back(
    message: RawBatch | ParsedBatch, expected: bytes
) -> None:
    assert encode_bus_message(message) == expected
    decode = decode_raw_batch if isinstance(message, RawBatch) else decode_parsed_batch
    assert decode(expected) == message


def test_alert_and_incident_events_are_the_same_json_bytes_and_decode_back() -> None:
    assert encode_event(ALERT) == ALERT_BYTES
    assert encode_event(INCIDENT) == INCIDENT_BYTES
    assert decode_alert_event(ALERT_BYTES) == ALERT
    assert decode_alert_event(ALERT_BYTES_BEFORE_CONTEXT) == ALERT
    assert decode_incident_event(INCIDENT_BYTES) == INCIDENT


def test_a_decoder_refuses_another_stream_s_message() -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_raw_batch(PARSED_BYTES)
    with pytest.raises(msgspec.ValidationError):
        decode_alert_event(INCIDENT_BYTES)
