"""What a notification says, whatever carries it: read from a delivery's stored payload (an incident event's
webhook body, or a message to a person), for the email and chat senders to render. Pure code.

Times shown to a person (when the incident was triggered, when the message was sent) are in the person's time
zone, with the zone's abbreviation and name (`2026-12-06 09:03 CET (Europe/Berlin)`); the stored payload, which
is also the body of a person's plain webhook, keeps them as UTC ISO 8601.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from mintlog.domain.webhooks import TEST_EVENT_TYPE

__all__ = [
    "PERSON_EVENT_TYPE",
    "NotificationText",
    "PersonMessageData",
    "PersonNotification",
    "local_time",
    "text_of",
]

PERSON_EVENT_TYPE = "person.notification"
_SUMMARY_CHARS = 1000

_HEADLINES = {
    "incident.triggered": "Incident triggered",
    "incident.acknowledged": "Incident acknowledged",
    "incident.resolved": "Incident resolved",
    "incident.alert_resolved": "Alert resolved",
    TEST_EVENT_TYPE: "Test notification",
    PERSON_EVENT_TYPE: "Incident needs you",
}


class NotificationText(msgspec.Struct, frozen=True, kw_only=True):
    """The parts every rendering shows. Strings are as stored: renderers escape them for their format."""

    headline: str
    title: str
    severity: str
    status: str
    source: str
    summary: str = ""
    incident_id: str | None = None
    incident_url: str | None = None
    acknowledge_url: str | None = None
    resolve_url: str | None = None
    times: tuple[tuple[str, str], ...] = ()
    """(label, time as the reader reads it) pairs, shown after the other facts."""


class _Alert(msgspec.Struct, kw_only=True):
    rule_name: str = ""
    message: str = ""


class _EventData(msgspec.Struct, kw_only=True):
    incident_id: str = ""
    title: str = ""
    severity: str = ""
    status: str = ""
    alert: _Alert | None = None
    content: str | None = None
    channel_name: str = ""
    message: str = ""


class _Envelope(msgspec.Struct, kw_only=True):
    type: str
    data: _EventData


class PersonMessageData(msgspec.Struct, frozen=True, kw_only=True):
    """`PersonMessage` (`mintlog.ports.person_notify`) as stored: what a person is told about an incident."""

    incident_id: str
    title: str
    severity: str
    source: str
    summary: str = ""
    acknowledge_url: str | None = None
    resolve_url: str | None = None
    incident_url: str | None = None
    triggered_at: datetime | None = None


class PersonNotification(msgspec.Struct, frozen=True, kw_only=True):
    """The stored payload of a delivery to a person (and the body a person's plain webhook receives):
    `{"type": "person.notification", "timestamp", "person_id", "person_name", "time_zone", "data": PersonMessage}`.
    `time_zone` is the person's when the message was made; the times themselves stay UTC."""

    type: str
    timestamp: datetime
    person_id: str
    person_name: str
    data: PersonMessageData
    time_zone: str = "UTC"


_envelope_decoder = msgspec.json.Decoder(_Envelope)
_person_decoder = msgspec.json.Decoder(PersonNotification)


def _clip(text: str) -> str:
    return text if len(text) <= _SUMMARY_CHARS else text[: _SUMMARY_CHARS - 1] + "…"


def local_time(at: datetime, time_zone: str) -> str:
    """`at` in `time_zone` for a reader: `2026-12-06 09:03 CET (Europe/Berlin)`; UTC for a zone this host does
    not know (`2026-12-06 08:03 UTC`)."""
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        zone, time_zone = ZoneInfo("UTC"), "UTC"
    local = at.astimezone(zone)
    abbreviation = local.tzname() or time_zone
    named = "" if abbreviation == time_zone else f" ({time_zone})"
    return f"{local:%Y-%m-%d %H:%M} {abbreviation}{named}"


def _person_times(notification: PersonNotification) -> tuple[tuple[str, str], ...]:
    zone = notification.time_zone
    times: list[tuple[str, str]] = []
    if notification.data.triggered_at is not None:
        times.append(("Triggered", local_time(notification.data.triggered_at, zone)))
    sent = notification.timestamp if notification.timestamp.tzinfo else notification.timestamp.replace(tzinfo=UTC)
    times.append(("Sent", local_time(sent, zone)))
    return tuple(times)


def text_of(event_type: str, payload: bytes) -> NotificationText:
    """The text of a stored payload. Raises `msgspec.DecodeError`/`ValidationError` for a payload that is
    neither an incident event's body nor a person message (a bug: the delivery is then retried, logged)."""
    if event_type == PERSON_EVENT_TYPE:
        notification = _person_decoder.decode(payload)
        message = notification.data
        return NotificationText(
            headline=_HEADLINES[PERSON_EVENT_TYPE],
            title=message.title,
            severity=message.severity,
            status="triggered",
            source=message.source,
            summary=_clip(message.summary),
            incident_id=message.incident_id,
            incident_url=message.incident_url,
            acknowledge_url=message.acknowledge_url,
            resolve_url=message.resolve_url,
            times=_person_times(notification),
        )
    envelope = _envelope_decoder.decode(payload)
    data = envelope.data
    if envelope.type == TEST_EVENT_TYPE:
        return NotificationText(
            headline=_HEADLINES[TEST_EVENT_TYPE],
            title=f"Test of channel {data.channel_name}",
            severity="info",
            status="test",
            source="mintlog",
            summary=data.message,
        )
    summary = data.alert.message if data.alert is not None else (data.content or "")
    return NotificationText(
        headline=_HEADLINES.get(envelope.type, envelope.type),
        title=data.title,
        severity=data.severity,
        status=data.status,
        source=data.alert.rule_name if data.alert is not None and data.alert.rule_name else "manual",
        summary=_clip(summary),
        incident_id=data.incident_id or None,
    )
