"""What escalation sends: the webhook body of an escalation step to a channel, and the timeline entry ids of a
task. Pure code, no I/O.

A channel target gets a signed webhook (the channel's usual delivery: same signing, retries, delivery log) of
type `incident.escalated`; its `data` is the incident, the step, and one-click links to acknowledge and resolve
(made for `channel:<id>`, so the timeline names the channel as the actor).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import msgspec

from mintlog.domain.escalation import EscalationTask

__all__ = ["ESCALATED_EVENT_TYPE", "EscalationNotice", "entry_id", "escalation_payload"]

ESCALATED_EVENT_TYPE = "incident.escalated"

_encoder = msgspec.json.Encoder()


class EscalationNotice(msgspec.Struct, frozen=True, kw_only=True):
    """The `data` of an `incident.escalated` webhook."""

    incident_id: str
    tenant_id: str
    title: str
    severity: str
    status: str
    policy_id: str
    run_id: str
    step: int
    """1-based, as people count steps."""
    repeat: int
    acknowledge_url: str
    resolve_url: str
    incident_url: str


class _Message(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    timestamp: datetime
    data: EscalationNotice


def escalation_payload(notice: EscalationNotice, *, at: datetime) -> bytes:
    """The JSON body: `{"type": "incident.escalated", "timestamp", "data": notice}`."""
    return _encoder.encode(_Message(type=ESCALATED_EVENT_TYPE, timestamp=at, data=notice))


def entry_id(task: EscalationTask, *parts: str) -> str:
    """The id of a timeline entry a task writes (the same on every run of the task)."""
    digest = hashlib.sha256("\x00".join([task.id, *parts]).encode()).hexdigest()[:24]
    return f"tle_{digest}"
