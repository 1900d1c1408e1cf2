"""Silences: time-boxed mutes of alert notifications, matching a rule and/or labels. Pure code, no I/O.

A silence matches an alert event when every matcher it has holds: its `rule_id` equals the event's, and each
of its `labels` equals the value of that name in the event's labels or group (the group wins on a clash, as it
does in the incident's labels). A silence with no matcher at all is refused at creation: it would mute every
alert of the tenant. It is active from `starts_at` (inclusive) to `ends_at` (exclusive); expiring one early
sets `ends_at` to now, and expired silences stay listed for history.

A matching silence does not stop the incident: it is opened or updated as usual, the timeline entry says
"silenced by <id>", and its `IncidentEvent` carries `silenced_by` with `notify` false.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import Literal

import msgspec

from mintlog.domain.alerting import AlertEvent

__all__ = ["SILENCE_STATES", "Silence", "SilenceState", "matching_silence", "new_silence_id"]

SilenceState = Literal["pending", "active", "expired"]
SILENCE_STATES: tuple[SilenceState, ...] = ("pending", "active", "expired")


class Silence(msgspec.Struct, frozen=True, kw_only=True):
    """One silence of one tenant."""

    id: str
    tenant_id: str
    rule_id: str | None = None
    labels: dict[str, str] = msgspec.field(default_factory=lambda: {})
    starts_at: datetime
    ends_at: datetime
    comment: str | None = None
    created_by: str
    created_at: datetime

    def state(self, now: datetime) -> SilenceState:
        """`pending` before `starts_at`, `active` until `ends_at`, then `expired`."""
        if self.ends_at <= now:
            return "expired"
        return "pending" if now < self.starts_at else "active"

    def is_active(self, now: datetime) -> bool:
        return self.state(now) == "active"

    def matches(self, event: AlertEvent) -> bool:
        """True when every matcher of this silence holds for `event` (a silence without matchers matches none)."""
        if self.rule_id is None and not self.labels:
            return False
        if self.rule_id is not None and self.rule_id != event.rule_id:
            return False
        labels = {**event.labels, **event.group}
        return all(labels.get(name) == value for name, value in self.labels.items())


def matching_silence(silences: Iterable[Silence], event: AlertEvent, now: datetime) -> Silence | None:
    """The active silence matching `event` that ends last (ties: the smallest id), or None."""
    candidates = [silence for silence in silences if silence.is_active(now) and silence.matches(event)]
    if not candidates:
        return None
    return min(candidates, key=lambda silence: (-silence.ends_at.timestamp(), silence.id))


def new_silence_id() -> str:
    """A fresh silence id (`sil_` and 20 hex digits)."""
    return f"sil_{secrets.token_hex(10)}"
