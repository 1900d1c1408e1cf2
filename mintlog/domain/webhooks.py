"""Standard Webhooks signing and the payloads Mintlog sends. Pure code, no I/O.

Every webhook carries three headers (https://www.standardwebhooks.com):
- `webhook-id`: the delivery id, the same on every attempt of one delivery, so a receiver can deduplicate;
- `webhook-timestamp`: the attempt's time in integer Unix seconds, so a receiver can refuse replays;
- `webhook-signature`: `v1,<base64 of HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")>`.

The HMAC key is derived from the channel secret: for a secret of the form `whsec_<base64>` (the form Mintlog
generates) it is the base64-decoded part after `whsec_`; for any other secret (such as the seed's
`"mysecret"`) it is the secret's UTF-8 bytes. Both are what the official Standard Webhooks libraries do
when given a `whsec_` secret, and what most hand-written receivers do with a plain one.

The body is JSON `{"type": …, "timestamp": RFC 3339, "data": {…}}`; see `docs/notifications.md`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from datetime import datetime

import msgspec

from mintlog.domain.alerting import IncidentEvent

__all__ = [
    "SECRET_PREFIX",
    "SIGNATURE_VERSION",
    "TEST_EVENT_TYPE",
    "ChannelTestData",
    "channel_test_payload",
    "delivery_id",
    "generate_secret",
    "incident_payload",
    "sign",
    "signature_headers",
    "signing_key",
    "verify",
]

SECRET_PREFIX = "whsec_"  # noqa: S105 (the Standard Webhooks prefix, not a secret)
SIGNATURE_VERSION = "v1"
TEST_EVENT_TYPE = "notification.test"
_SECRET_BYTES = 32
DEFAULT_TOLERANCE_SECONDS = 300


class ChannelTestData(msgspec.Struct, frozen=True, kw_only=True):
    """The `data` of a test event (`POST /v1/notifications/channels/{id}/test`)."""

    channel_id: str
    channel_name: str
    message: str


class _IncidentMessage(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    timestamp: datetime
    data: IncidentEvent


class _TestMessage(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    timestamp: datetime
    data: ChannelTestData


_encoder = msgspec.json.Encoder()


def generate_secret() -> str:
    """A new Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()


def signing_key(secret: str) -> bytes:
    """The HMAC key of a channel secret: the base64-decoded part after `whsec_`, else the UTF-8 bytes.

    A `whsec_` secret whose rest is not valid base64 is used as plain UTF-8 bytes, as a whole."""
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
        except (binascii.Error, ValueError):
            pass
    return secret.encode()


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def signature_headers(secret: str, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt."""
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, webhook_id, timestamp, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: int | None = None,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """True when `headers` carry a valid `v1` signature of `body` by `secret` (what a receiver checks).

    Header names are matched case-insensitively; `webhook-signature` may list several space-separated
    signatures (during a secret rotation), any of which may match. With `now` (Unix seconds), a timestamp
    further than `tolerance_seconds` from it fails too.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    webhook_id = lowered.get("webhook-id")
    timestamp_text = lowered.get("webhook-timestamp")
    offered = lowered.get("webhook-signature")
    if not webhook_id or not timestamp_text or not offered or not timestamp_text.isdigit():
        return False
    timestamp = int(timestamp_text)
    if now is not None and abs(now - timestamp) > tolerance_seconds:
        return False
    expected = sign(secret, webhook_id, timestamp, body).split(",", 1)[1]
    for candidate in offered.split():
        version, _, signature = candidate.partition(",")
        if version == SIGNATURE_VERSION and hmac.compare_digest(signature.encode(), expected.encode()):
            return True
    return False


def delivery_id(event_id: str, channel_id: str) -> str:
    """The id of the delivery of one event to one channel (and its `webhook-id`): deterministic, so a
    redelivered event never makes a second delivery."""
    digest = hashlib.sha256(f"{event_id}\n{channel_id}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


def incident_payload(event: IncidentEvent) -> bytes:
    """The body of the webhook of an incident event: `type` is the event's (`incident.triggered`, …),
    `timestamp` when it happened, `data` the whole event, with the alert snapshot when an alert caused it."""
    return _encoder.encode(_IncidentMessage(type=event.type, timestamp=event.occurred_at, data=event))


def channel_test_payload(channel_id: str, channel_name: str, now: datetime) -> bytes:
    """The body of a test event."""
    data = ChannelTestData(
        channel_id=channel_id,
        channel_name=channel_name,
        message="A test event from Mintlog: this channel receives signed webhooks.",
    )
    return _encoder.encode(_TestMessage(type=TEST_EVENT_TYPE, timestamp=now, data=data))
