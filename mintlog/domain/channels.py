"""Notification channels and webhook deliveries: the records, the header rules and the retry schedule.
Pure code, no I/O.

A delivery is one incident event sent to one channel. Its id (`delivery_id`) is derived from the two, and it
is the `webhook-id` of every attempt. Its life: `pending` → `sending` (claimed by one sender) → `delivered`;
or → `failed` (an attempt failed, the next is scheduled at `next_attempt_at`) → `sending` → …; or → `dead`
(the last attempt failed, the channel was disabled by a 410, or it was deleted). `POST …/retry` puts any
delivery that is not being sent back to `pending` with a fresh round of attempts.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import msgspec

__all__ = [
    "CHAT_FORMATS",
    "DELIVERY_STATUSES",
    "FORBIDDEN_HEADERS",
    "MASKED_HEADER_VALUE",
    "MAX_HEADERS",
    "MAX_RECIPIENTS",
    "Channel",
    "ChannelChanges",
    "ChannelType",
    "ChatFormat",
    "Delivery",
    "DeliveryFilter",
    "DeliveryOutcome",
    "DeliveryStatus",
    "EmailSettings",
    "PersonContact",
    "SmtpSecurity",
    "header_problem",
    "kept_header_values",
    "masked_headers",
    "new_channel_id",
    "retry_delay",
]

ChannelType = Literal["webhook", "email", "chat_webhook"]
ChatFormat = Literal["slack", "teams", "mattermost"]
CHAT_FORMATS: tuple[ChatFormat, ...] = ("slack", "teams", "mattermost")
SmtpSecurity = Literal["starttls", "tls", "none"]
ContactType = Literal["email", "webhook", "chat_webhook"]
MAX_RECIPIENTS = 50
DeliveryStatus = Literal["pending", "sending", "delivered", "failed", "dead"]
DELIVERY_STATUSES: tuple[DeliveryStatus, ...] = ("pending", "sending", "delivered", "failed", "dead")

MAX_HEADERS = 20
MAX_HEADER_VALUE_LENGTH = 2048
# What the API shows instead of every header value; sent back in an update, it keeps the stored value.
MASKED_HEADER_VALUE = "****"
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}")
# Hop-by-hop headers belong to one connection; the others Mintlog sets itself, and letting a channel set
# them would forge the signature or break the request framing.
FORBIDDEN_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "content-type",
        "content-encoding",
        "expect",
    }
)


class EmailSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Where an email channel (or the operator's relay) sends: an SMTP server and the envelope.

    `security`: `tls` is TLS from the first byte (port 465), `starttls` upgrades a plain connection and fails
    when the server does not offer it, `none` sends in clear. `verify_tls` false accepts any certificate
    (a self-signed relay); the password is not here (a channel's is its `secret`)."""

    host: str
    port: int
    security: SmtpSecurity
    from_address: str
    recipients: list[str]
    username: str | None = None
    verify_tls: bool = True


class PersonContact(msgspec.Struct, frozen=True, kw_only=True):
    """How a person delivery reaches its person: the contact method's type and address, as they were when
    the delivery was made (a later change of the person does not redirect it)."""

    person_id: str
    contact_method_id: str
    type: ContactType
    address: str


class Channel(msgspec.Struct, frozen=True, kw_only=True):
    """A channel. `secret` signs a webhook's requests, or is an email channel's SMTP password (empty for
    none); it is never shown after creation.

    By `channel_type`: `webhook` uses `url`, `headers`, `secret`; `email` uses `email` (and `secret`);
    `chat_webhook` uses `url` and `chat_format`.

    `is_active` false means nothing is sent to it: switched off over the API, or disabled because its
    receiver answered 410 Gone (`disabled_reason` and `disabled_at` say which and when).
    """

    id: str
    tenant_id: str
    name: str
    channel_type: ChannelType
    url: str
    headers: dict[str, str]
    secret: str
    is_active: bool
    created_at: datetime
    updated_at: datetime
    disabled_reason: str | None = None
    disabled_at: datetime | None = None
    email: EmailSettings | None = None
    chat_format: ChatFormat | None = None


@dataclass(frozen=True, slots=True)
class ChannelChanges:
    """What an update changes; None leaves a member as it is. Activating a channel clears why it was disabled."""

    name: str | None = None
    url: str | None = None
    headers: dict[str, str] | None = None
    secret: str | None = None
    is_active: bool | None = None
    email: EmailSettings | None = None
    chat_format: ChatFormat | None = None


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """One incident event for one channel, or one message for one person (`channel_id` None, `contact`
    naming the person and how to reach them, `dedup_key` unique per tenant), with the state of its attempts.

    `attempts` counts every attempt ever made (a sender that crashed mid-attempt counts too);
    `round_attempts` counts those since the delivery was created or last retried by hand, and drives the
    schedule and the attempt limit. `claimed_by`/`claim_expires_at` name the sender that owns the attempt in
    progress (status `sending`); once the claim expires any sender may take the delivery over.
    """

    id: str
    tenant_id: str
    channel_id: str | None
    event_id: str
    event_type: str
    incident_id: str | None
    payload: bytes
    status: DeliveryStatus
    attempts: int
    round_attempts: int
    next_attempt_at: datetime
    created_at: datetime
    claimed_by: str | None = None
    claim_expires_at: datetime | None = None
    last_attempt_at: datetime | None = None
    last_error: str | None = None
    last_status_code: int | None = None
    last_duration_ms: int | None = None
    delivered_at: datetime | None = None
    contact: PersonContact | None = None
    dedup_key: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """The result of one attempt, as the sender records it.

    `status` is `delivered`, `failed` (retry at `next_attempt_at`) or `dead`; `disable_channel` carries the
    reason when the channel must be switched off too (a 410)."""

    status: Literal["delivered", "failed", "dead"]
    attempted_at: datetime
    duration_ms: int | None
    status_code: int | None
    error: str | None
    next_attempt_at: datetime | None = None
    disable_channel: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    """A page of deliveries: filters (None matches all) and the (created_at, id) after which to start."""

    status: DeliveryStatus | None = None
    channel_id: str | None = None
    event_id: str | None = None
    person_id: str | None = None
    before: tuple[datetime, str] | None = None
    limit: int = 50


def new_channel_id() -> str:
    """A fresh, unguessable channel id (`chn_` and 16 hex digits)."""
    import secrets

    return f"chn_{secrets.token_hex(8)}"


def header_problem(headers: Mapping[str, str], stored: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(field, reason) for the first header a channel may not set, or None when all are fine.

    At most `MAX_HEADERS`; names are HTTP tokens; values at most 2048 characters without CR, LF or NUL;
    no hop-by-hop, framing or `webhook-*` header (Mintlog sets those); the value `MASKED_HEADER_VALUE` only for
    a header of `stored` (the channel's headers before an update), whose value it keeps.
    """
    if len(headers) > MAX_HEADERS:
        return "config.headers", f"at most {MAX_HEADERS} headers are allowed, got {len(headers)}"
    kept = {name.lower() for name in stored or {}}
    seen: set[str] = set()
    for name, value in headers.items():
        field = f"config.headers.{name}"
        lowered = name.lower()
        if not _HEADER_NAME.fullmatch(name):
            return field, f"header name {name!r} is not a valid HTTP header name"
        if lowered in seen:
            return field, f"header {name!r} is given twice"
        seen.add(lowered)
        if lowered in FORBIDDEN_HEADERS or lowered.startswith("webhook-"):
            return field, f"header {name!r} is set by Mintlog (or is hop-by-hop) and cannot be configured"
        if len(value) > MAX_HEADER_VALUE_LENGTH:
            return field, f"header {name!r} is longer than {MAX_HEADER_VALUE_LENGTH} characters"
        if any(char in value for char in "\r\n\0"):
            return field, f"header {name!r} contains a line break or NUL"
        if value == MASKED_HEADER_VALUE and lowered not in kept:
            return field, (
                f"header {name!r} has the masked value {MASKED_HEADER_VALUE!r}, which keeps a stored value, "
                "but the channel has no such header: send its value"
            )
    return None


def masked_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers as the API shows them: every name, every value replaced by `MASKED_HEADER_VALUE`."""
    return dict.fromkeys(headers, MASKED_HEADER_VALUE)


def kept_header_values(headers: Mapping[str, str], stored: Mapping[str, str]) -> dict[str, str]:
    """The headers an update stores: `headers` as given, except that a value equal to `MASKED_HEADER_VALUE`
    keeps the stored value of the header of that name (names compared case-insensitively), so that a
    channel read and written back unchanged keeps its secrets. Check `header_problem(headers, stored)` first."""
    stored_by_name = {name.lower(): value for name, value in stored.items()}
    return {
        name: stored_by_name[name.lower()] if value == MASKED_HEADER_VALUE else value for name, value in headers.items()
    }


def retry_delay(
    round_attempts: int,
    delays: Sequence[float],
    jitter: float,
    uniform: Callable[[float, float], float] = random.uniform,
) -> float:
    """Seconds to wait after the `round_attempts`-th failed attempt: `delays[n-1]` (the last one repeats),
    scaled by a random factor in [1 - jitter, 1 + jitter] so that retries of many deliveries spread out."""
    base = delays[min(max(round_attempts, 1), len(delays)) - 1]
    return max(0.0, base * uniform(1.0 - jitter, 1.0 + jitter)) if jitter > 0 else base
