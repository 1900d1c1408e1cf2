"""Incidents and their timelines: the status machine, the timeline entry types, and how an alert event changes
an incident. Pure code, no I/O.

Status machine (seed): `triggered → acknowledged → resolved`, and `triggered → resolved`; an escalation
policy's acknowledgement timeout also moves `acknowledged → triggered` (never the API). Nothing leaves
`resolved`, and a change to the current status is refused too, so every change is a real step of the machine
recorded once in the timeline.

Timeline. Every change of an incident is one append-only `TimelineEntry` with its actor (an API key prefix or
`system`). Each entry carries the `IncidentEvent` it publishes (`event`), and `published_at` stays null until
that event is on the bus: the table is its own outbox, so a crash between the commit and the publish loses
nothing. An entry written for an alert event has an id derived from the alert event's id (`source_id`), so a
redelivered alert event finds its entry instead of writing a second one.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

import msgspec

from mintlog.domain.alerting import (
    AlertEvent,
    IncidentEvent,
    IncidentEventType,
    IncidentStatus,
)
from mintlog.domain.streams import decode_incident_event
from mintlog.errors import Conflict

__all__ = [
    "INCIDENT_SEVERITIES",
    "INCIDENT_STATUSES",
    "SYSTEM_ACTOR",
    "TIMELINE_EVENT_TYPES",
    "AlertPlan",
    "EntryDraft",
    "Incident",
    "IncidentSeverity",
    "TimelineEntry",
    "TimelineEventType",
    "alert_entry_id",
    "check_transition",
    "entry_event",
    "incident_event",
    "new_entry_id",
    "new_incident_id",
    "plan_alert_change",
    "seconds_between",
]

SYSTEM_ACTOR = "system"
"""The actor of changes Mintlog makes itself (an alert opened, re-fired or resolved an incident)."""

IncidentSeverity = Literal["critical", "high", "warning", "info"]
INCIDENT_SEVERITIES: tuple[IncidentSeverity, ...] = ("critical", "high", "warning", "info")
INCIDENT_STATUSES: tuple[IncidentStatus, ...] = ("triggered", "acknowledged", "resolved")

TimelineEventType = Literal[
    "triggered",  # the incident opened (by an alert or over the API)
    "alert_refired",  # its alert fired again while it was open
    "alert_resolved",  # its alert resolved; the incident stays open (rule without auto-resolve)
    "alert_nodata",  # its alert's query saw no data (a note)
    "alert_error",  # its alert could not be evaluated (a note)
    "acknowledged",
    "resolved",  # over the API, or by its alert when the rule auto-resolves incidents
    "comment",
    "escalation_started",  # its escalation policy started (data: policy_id, run_id)
    "escalation_step",  # a step fired (data: step, repeat, targets)
    "notified",  # a person or channel was notified by a step (data: target, contact method, delivery id)
    "notification_failed",  # a target could not be notified (data: target, reason)
    "delivery_failed",  # a notification's delivery failed: its first failed attempt, and when it gave up
    "escalation_stopped",  # acknowledged or resolved: no further step
    "escalation_exhausted",  # the last step of the last repetition fired
    "retriggered",  # its acknowledgement timed out: triggered again, escalation from step 1
]
TIMELINE_EVENT_TYPES: tuple[TimelineEventType, ...] = (
    "triggered",
    "alert_refired",
    "alert_resolved",
    "alert_nodata",
    "alert_error",
    "acknowledged",
    "resolved",
    "comment",
    "escalation_started",
    "escalation_step",
    "notified",
    "notification_failed",
    "delivery_failed",
    "escalation_stopped",
    "escalation_exhausted",
    "retriggered",
)

# What each timeline entry publishes; nodata and error notes go out as comments by `system`.
_EVENT_TYPE: dict[TimelineEventType, IncidentEventType] = {
    "triggered": "incident.triggered",
    "alert_refired": "incident.alert_refired",
    "alert_resolved": "incident.alert_resolved",
    "alert_nodata": "incident.commented",
    "alert_error": "incident.commented",
    "acknowledged": "incident.acknowledged",
    "resolved": "incident.resolved",
    "comment": "incident.commented",
    "escalation_started": "incident.commented",
    "escalation_step": "incident.commented",
    "notified": "incident.commented",
    "notification_failed": "incident.commented",
    "delivery_failed": "incident.commented",
    "escalation_stopped": "incident.commented",
    "escalation_exhausted": "incident.commented",
    "retriggered": "incident.retriggered",
}

_encoder = msgspec.json.Encoder()

_ALLOWED: frozenset[tuple[IncidentStatus, IncidentStatus]] = frozenset(
    {
        ("triggered", "acknowledged"),
        ("triggered", "resolved"),
        ("acknowledged", "resolved"),
        ("acknowledged", "triggered"),  # only an acknowledgement timeout (escalation) does this
    }
)


class Incident(msgspec.Struct, frozen=True, kw_only=True):
    """One incident. `dedup_key` and `rule_id` are set when an alert opened it; at most one incident per
    tenant and dedup key is not resolved at any time."""

    id: str
    tenant_id: str
    title: str
    description: str | None = None
    severity: str
    status: IncidentStatus
    dedup_key: str | None = None
    rule_id: str | None = None
    channel_ids: tuple[str, ...] = ()
    labels: dict[str, str] = msgspec.field(default_factory=lambda: {})
    created_by: str
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    escalation_policy_id: str | None = None
    """The policy named when it was opened by hand (None: its rule's or monitor's, else the tenant default)."""

    @property
    def time_to_acknowledge_seconds(self) -> float | None:
        """Seconds from opening to acknowledgement; None until acknowledged."""
        return seconds_between(self.created_at, self.acknowledged_at)

    @property
    def time_to_resolve_seconds(self) -> float | None:
        """Seconds from opening to resolution; None until resolved."""
        return seconds_between(self.created_at, self.resolved_at)


class TimelineEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One change of an incident. `event` is the `IncidentEvent` it publishes (as JSON builtins), null when it
    publishes nothing; `published_at` is when that event reached the bus."""

    id: str
    tenant_id: str
    incident_id: str
    occurred_at: datetime
    event_type: TimelineEventType
    actor: str
    content: str | None = None
    data: dict[str, Any] = msgspec.field(default_factory=lambda: {})
    source_id: str
    event: dict[str, Any] | None = None
    published_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EntryDraft:
    """A timeline entry about to be written, with what its `IncidentEvent` needs beyond the incident."""

    id: str
    source_id: str
    occurred_at: datetime
    event_type: TimelineEventType
    actor: str
    content: str | None = None
    data: Mapping[str, Any] | None = None
    notify: bool = False
    silenced_by: str | None = None
    alert: AlertEvent | None = None

    def after(self, last_change: datetime) -> EntryDraft:
        """This draft, stamped strictly after `last_change` (the incident's `updated_at`) when it was not already.

        A draft takes its time before the write that records it; of two racing writes the later-committed one can
        hold the earlier time. Stamping it after the change it follows keeps a timeline (ordered by time) in the
        order its changes were applied, so an acknowledgement never shows after the resolution that ended it.
        """
        if self.occurred_at > last_change:
            return self
        return replace(self, occurred_at=last_change + timedelta(microseconds=1))

    def entry(self, incident: Incident) -> TimelineEntry:
        """The entry as stored once `incident` (as it stands after the change) is known."""
        event = incident_event(incident, self)
        return TimelineEntry(
            id=self.id,
            tenant_id=incident.tenant_id,
            incident_id=incident.id,
            occurred_at=self.occurred_at,
            event_type=self.event_type,
            actor=self.actor,
            content=self.content,
            data=dict(self.data or {}),
            source_id=self.source_id,
            event=msgspec.to_builtins(event),
        )


@dataclass(frozen=True, slots=True)
class AlertPlan:
    """What an alert event does to the incidents of its dedup key (see `plan_alert_change`).

    Exactly one of `open` (a new incident) and `append_to` (the open incident's id) is set; `resolve` resolves
    the open incident in the same transaction.
    """

    entry: EntryDraft
    open: Incident | None = None
    append_to: str | None = None
    resolve: bool = False


def seconds_between(start: datetime, end: datetime | None) -> float | None:
    """`end - start` in seconds (never negative), or None when `end` is None."""
    if end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def check_transition(incident_id: str, current: IncidentStatus, target: IncidentStatus) -> None:
    """Raise `Conflict` (`invalid_transition`, naming both statuses) unless `current → target` is allowed."""
    if (current, target) not in _ALLOWED:
        raise Conflict(
            f"incident {incident_id!r} cannot go from {current} to {target}",
            code="invalid_transition",
            extra={"from": current, "to": target},
        )


def _sortable_suffix() -> str:
    # Milliseconds then randomness: ids of one incident's entries sort by creation within a millisecond tie.
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(6)}"


def new_incident_id() -> str:
    """A fresh incident id (`inc_` and 24 hex digits, roughly time-ordered)."""
    return f"inc_{_sortable_suffix()}"


def new_entry_id() -> str:
    """A fresh timeline entry id for a change made over the API."""
    return f"tle_{_sortable_suffix()}"


def alert_entry_id(tenant_id: str, alert_event_id: str) -> str:
    """The id of the timeline entry an alert event writes: the same for every delivery of that event."""
    digest = hashlib.sha256(f"{tenant_id}\x00{alert_event_id}".encode()).hexdigest()[:24]
    return f"tle_{digest}"


def incident_event(incident: Incident, draft: EntryDraft) -> IncidentEvent:
    """The `IncidentEvent` of one change, given the incident as it stands after it."""
    return IncidentEvent(
        id=draft.id,
        type=_EVENT_TYPE[draft.event_type],
        tenant_id=incident.tenant_id,
        incident_id=incident.id,
        title=incident.title,
        severity=incident.severity,
        status=incident.status,
        occurred_at=draft.occurred_at,
        actor=draft.actor,
        notify=draft.notify and draft.silenced_by is None,
        channel_ids=list(incident.channel_ids),
        dedup_key=incident.dedup_key,
        rule_id=incident.rule_id,
        alert=draft.alert,
        silenced_by=draft.silenced_by,
        content=draft.content,
    )


def entry_event(entry: TimelineEntry) -> IncidentEvent | None:
    """The `IncidentEvent` an entry publishes (exactly as written with it), or None when it publishes none."""
    if entry.event is None:
        return None
    return decode_incident_event(_encoder.encode(entry.event))


def _alert_title(event: AlertEvent) -> str:
    if not event.group:
        return event.rule_name
    group = ", ".join(f"{name}={value}" for name, value in sorted(event.group.items()))
    return f"{event.rule_name} ({group})"[:500]


def _alert_summary(event: AlertEvent) -> dict[str, Any]:
    return {
        "alert_event_id": event.id,
        "rule_id": event.rule_id,
        "rule_name": event.rule_name,
        "state": event.state,
        "previous_state": event.previous_state,
        "value": event.value,
        "threshold": event.threshold,
        "comparator": event.comparator,
        "window_start": msgspec.to_builtins(event.window_start),
        "window_end": msgspec.to_builtins(event.window_end),
        "group": dict(event.group),
        "sample_event_ids": list(event.sample_event_ids),
        "error": event.error,
    }


def _alert_content(event: AlertEvent, silenced_by: str | None) -> str:
    if event.state == "firing":
        text = event.message or f"{event.rule_name} fired: {event.value} {event.comparator} {event.threshold}"
    elif event.state == "resolved":
        text = f"{event.rule_name} resolved" + (f" (value {event.value})" if event.value is not None else "")
        reason = (event.context or {}).get("reason")
        if isinstance(reason, str):
            text += f": {reason}"
    elif event.state == "nodata":
        text = f"{event.rule_name}: no data in its window"
    else:
        text = f"{event.rule_name} could not be evaluated: {event.error or 'unknown error'}"
    if silenced_by is not None:
        text += f"; silenced by {silenced_by}"
    return text[:4000]


def plan_alert_change(
    event: AlertEvent,
    open_incident: Incident | None,
    *,
    silenced_by: str | None,
    now: datetime,
    new_id: Callable[[], str] = new_incident_id,
) -> AlertPlan | None:
    """What `event` does given the open incident of its dedup key (None when none is open):

    - `firing`: opens an incident (title from the rule name and group, the rule's severity, channels, labels
      and id; notified) or, when one is open, appends `alert_refired` (not notified);
    - `resolved`: appends to the open incident and resolves it when the rule auto-resolves incidents
      (`resolved`, notified), else appends `alert_resolved` (notified); nothing without an open incident;
    - `nodata` and `error`: append a note to the open incident (not notified); nothing without one;
    - any other transition: nothing.

    `silenced_by` (a matching silence's id) is recorded in the entry and turns its notification off.
    """
    draft_fields: dict[str, Any] = {
        "id": alert_entry_id(event.tenant_id, event.id),
        "source_id": event.id,
        "occurred_at": now,
        "actor": SYSTEM_ACTOR,
        "content": _alert_content(event, silenced_by),
        "data": {"alert": _alert_summary(event)}
        | ({"silenced_by": silenced_by} if silenced_by else {})
        | ({"context": event.context} if event.context is not None else {}),
        "silenced_by": silenced_by,
        "alert": event,
    }
    if event.state == "firing":
        if open_incident is None:
            incident = Incident(
                id=new_id(),
                tenant_id=event.tenant_id,
                title=_alert_title(event),
                description=event.message or None,
                severity=event.severity,
                status="triggered",
                dedup_key=event.dedup_key,
                rule_id=event.rule_id,
                channel_ids=tuple(event.channel_ids),
                labels={**event.labels, **event.group},
                created_by=SYSTEM_ACTOR,
                created_at=now,
                updated_at=now,
            )
            return AlertPlan(entry=EntryDraft(event_type="triggered", notify=True, **draft_fields), open=incident)
        entry = EntryDraft(event_type="alert_refired", notify=False, **draft_fields)
        return AlertPlan(entry=entry, append_to=open_incident.id)
    if open_incident is None:
        return None
    if event.state == "resolved":
        if event.auto_resolve_incident:
            entry = EntryDraft(event_type="resolved", notify=True, **draft_fields)
            return AlertPlan(entry=entry, append_to=open_incident.id, resolve=True)
        entry = EntryDraft(event_type="alert_resolved", notify=True, **draft_fields)
        return AlertPlan(entry=entry, append_to=open_incident.id)
    if event.state in ("nodata", "error"):
        event_type: TimelineEventType = "alert_nodata" if event.state == "nodata" else "alert_error"
        return AlertPlan(entry=EntryDraft(event_type=event_type, **draft_fields), append_to=open_incident.id)
    return None
