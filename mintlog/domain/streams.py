"""The bus on one page: every stream, its subjects, and the message type and codec each one carries.

- `LOGS_RAW`: `logs.raw.{tenant}` (`raw_subject`, `RAW_FILTER`) carries `RawBatch`, one accepted ingest batch
  (or one part of it), as MessagePack (`encode_bus_message`, `decode_raw_batch`); read by the pipeline.
- `LOGS_PARSED`: `logs.parsed.{tenant}` (`parsed_subject`, `PARSED_FILTER`) carries `ParsedBatch`, the normalized
  events of one raw message, as MessagePack (`encode_bus_message`, `decode_parsed_batch`); read by the
  indexer, and followed live by tails.
- `ALERTS_EVENTS`: `alerts.events.{tenant}` (`alerts_subject`, `ALERTS_FILTER`) carries `AlertEvent`, one alert
  state transition, as JSON (`encode_event`, `decode_alert_event`); read by notify's incident worker.
- `INCIDENTS_EVENTS`: `incidents.events.{tenant}` (`incidents_subject`, `INCIDENTS_FILTER`) carries
  `IncidentEvent`, one incident change, as JSON (`encode_event`, `decode_incident_event`); read by notify's
  delivery worker.
- `UPTIME_PINGS`: `uptime.pings.{tenant}` (`pings_subject`, `PINGS_FILTER`) carries `HeartbeatPing`, one ping
  of a heartbeat monitor accepted by ingest, as JSON (`encode_ping`, `decode_ping`); read by the uptime role.
- `DEAD_LETTERS`: `deadletter.{original subject}` (`dead_letter_subject`, `DEAD_LETTER_FILTER`) carries a
  message that could not be processed, unchanged, with why in its headers (`mintlog.roles.kit.deadletter`).

Nothing else in `mintlog/` spells a subject or a stream name: producers build subjects here, consumers bind
to a stream's `name` with its filter from here, and every bus adapter creates exactly `STREAMS`.

Guarantees of the codecs: the bytes are exactly what earlier releases wrote (msgspec MessagePack for the log
batches, which are big and only read by Mintlog; msgspec JSON for alert and incident events, so operators can
read them with `nats sub`); a decoder raises `msgspec.DecodeError` or `msgspec.ValidationError` on anything
that is not its message, never returns a partial one. Encoders and decoders are built once, here.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from mintlog.domain.alerting import AlertEvent, IncidentEvent
from mintlog.domain.events import ParsedBatch, RawBatch
from mintlog.domain.heartbeats import HeartbeatPing

__all__ = [
    "ALERTS_EVENTS",
    "ALERTS_FILTER",
    "DEAD_LETTERS",
    "DEAD_LETTER_FILTER",
    "INCIDENTS_EVENTS",
    "INCIDENTS_FILTER",
    "INDEXER_DURABLE",
    "LOGS_PARSED",
    "LOGS_RAW",
    "NORMALIZER_DURABLE",
    "PARSED_FILTER",
    "PINGS_FILTER",
    "RAW_FILTER",
    "SMALL_STREAM_MAX_BYTES",
    "STREAMS",
    "UPTIME_PINGS",
    "StreamSpec",
    "alerts_subject",
    "dead_letter_subject",
    "decode_alert_event",
    "decode_incident_event",
    "decode_parsed_batch",
    "decode_ping",
    "decode_raw_batch",
    "encode_bus_message",
    "encode_event",
    "encode_ping",
    "incidents_subject",
    "parsed_subject",
    "pings_subject",
    "raw_subject",
    "total_stream_bytes",
]


SMALL_STREAM_MAX_BYTES = 1024 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """A stream the bus creates (or updates) at start.

    A `bulk` stream carries log volume and gets the configured size limit; the others carry little and are
    capped at `SMALL_STREAM_MAX_BYTES` (or the configured limit, if smaller).

    A `work_queue` stream deletes a message once its consumer acked it (JetStream work-queue retention),
    so the space of consumed messages is freed at once: with limits retention a full `LOGS_PARSED` would
    keep refusing the pipeline until old messages age out, stalling indexing for up to `max_age`. Such a
    stream allows one consumer per subject (the pipeline's, shared by all its instances); live subscribers
    (tail) are not consumers and are unaffected. Messages published before a consumer exists are kept.
    """

    name: str
    subjects: tuple[str, ...]
    bulk: bool = False
    work_queue: bool = False

    def max_bytes(self, configured: int) -> int:
        """This stream's size limit given `MINTLOG_NATS__STREAM_MAX_BYTES`."""
        return configured if self.bulk else min(configured, SMALL_STREAM_MAX_BYTES)


# Subjects. Every builder takes a valid tenant id (`mintlog.domain.tenants`: no dots, no wildcards), so a
# tenant's subject never matches another tenant's filter.

RAW_FILTER = "logs.raw.>"
"""Every tenant's raw batches."""
PARSED_FILTER = "logs.parsed.>"
"""Every tenant's parsed batches."""
ALERTS_FILTER = "alerts.events.>"
"""Every tenant's alert events."""
INCIDENTS_FILTER = "incidents.events.>"
"""Every tenant's incident events."""
PINGS_FILTER = "uptime.pings.>"
"""Every tenant's heartbeat pings."""
DEAD_LETTER_FILTER = "deadletter.>"
"""Every dead letter, whatever stream it came from."""


def raw_subject(tenant_id: str) -> str:
    """The subject of the raw batches `tenant_id`'s ingest requests are published on."""
    return f"logs.raw.{tenant_id}"


def parsed_subject(tenant_id: str) -> str:
    """The subject of `tenant_id`'s parsed batches (what the indexer stores and a live tail follows)."""
    return f"logs.parsed.{tenant_id}"


def alerts_subject(tenant_id: str) -> str:
    """The subject an alert event of `tenant_id` is published on."""
    return f"alerts.events.{tenant_id}"


def incidents_subject(tenant_id: str) -> str:
    """The subject an incident event of `tenant_id` is published on."""
    return f"incidents.events.{tenant_id}"


def pings_subject(tenant_id: str) -> str:
    """The subject a heartbeat ping of `tenant_id`'s monitors is published on."""
    return f"uptime.pings.{tenant_id}"


def dead_letter_subject(subject: str) -> str:
    """Where a message from `subject` is parked when it cannot be processed (`deadletter.<subject>`)."""
    return f"deadletter.{subject}"


# Streams.

LOGS_RAW = StreamSpec("LOGS_RAW", (RAW_FILTER,), bulk=True, work_queue=True)
LOGS_PARSED = StreamSpec("LOGS_PARSED", (PARSED_FILTER,), bulk=True, work_queue=True)
ALERTS_EVENTS = StreamSpec("ALERTS_EVENTS", (ALERTS_FILTER,))
INCIDENTS_EVENTS = StreamSpec("INCIDENTS_EVENTS", (INCIDENTS_FILTER,))
DEAD_LETTERS = StreamSpec("DEAD_LETTERS", (DEAD_LETTER_FILTER,))
"""Messages that failed too often, with the reason in the `Mintlog-Dead-Reason` header."""
UPTIME_PINGS = StreamSpec("UPTIME_PINGS", (PINGS_FILTER,), work_queue=True)
"""Heartbeat pings, deleted once the uptime role recorded them (one consumer, shared by its instances)."""

NORMALIZER_DURABLE = "pipeline"
"""The durable consumer of `LOGS_RAW` that the pipeline's normalizer instances share."""
INDEXER_DURABLE = "indexer"
"""The durable consumer of `LOGS_PARSED` that the pipeline's indexer instances share."""

STREAMS: tuple[StreamSpec, ...] = (LOGS_RAW, LOGS_PARSED, ALERTS_EVENTS, INCIDENTS_EVENTS, DEAD_LETTERS, UPTIME_PINGS)
"""Every stream, in the order the bus creates them."""


def total_stream_bytes(configured: int) -> int:
    """What all streams may hold together: the storage a JetStream server must allow."""
    return sum(spec.max_bytes(configured) for spec in STREAMS)


# Codecs.

_msgpack_encoder = msgspec.msgpack.Encoder()
_raw_decoder = msgspec.msgpack.Decoder(RawBatch)
_parsed_decoder = msgspec.msgpack.Decoder(ParsedBatch)
_json_encoder = msgspec.json.Encoder()
_alert_decoder = msgspec.json.Decoder(AlertEvent)
_incident_decoder = msgspec.json.Decoder(IncidentEvent)
_ping_decoder = msgspec.json.Decoder(HeartbeatPing)


def encode_bus_message(message: RawBatch | ParsedBatch) -> bytes:
    """The MessagePack bytes of a raw or parsed batch, as published."""
    return _msgpack_encoder.encode(message)


def decode_raw_batch(data: bytes) -> RawBatch:
    """A `LOGS_RAW` message; raises `msgspec.DecodeError`/`ValidationError` on corrupt data."""
    return _raw_decoder.decode(data)


def decode_parsed_batch(data: bytes) -> ParsedBatch:
    """A `LOGS_PARSED` message; raises `msgspec.DecodeError`/`ValidationError` on corrupt data."""
    return _parsed_decoder.decode(data)


def encode_event(event: AlertEvent | IncidentEvent) -> bytes:
    """The JSON bytes of an alert or incident event, as published."""
    return _json_encoder.encode(event)


def decode_alert_event(data: bytes) -> AlertEvent:
    """An `ALERTS_EVENTS` message; raises `msgspec.ValidationError`/`DecodeError` when malformed."""
    return _alert_decoder.decode(data)


def decode_incident_event(data: bytes) -> IncidentEvent:
    """An `INCIDENTS_EVENTS` message; raises `msgspec.ValidationError`/`DecodeError` when malformed."""
    return _incident_decoder.decode(data)


def encode_ping(ping: HeartbeatPing) -> bytes:
    """The JSON bytes of a heartbeat ping, as published."""
    return _json_encoder.encode(ping)


def decode_ping(data: bytes) -> HeartbeatPing:
    """An `UPTIME_PINGS` message; raises `msgspec.ValidationError`/`DecodeError` when malformed."""
    return _ping_decoder.decode(data)
