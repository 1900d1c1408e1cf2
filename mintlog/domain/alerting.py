"""The messages of the incident flow: what the alert role publishes and what the notify role reads.

Two streams carry them (seed): `ALERTS_EVENTS` and `INCIDENTS_EVENTS`, one subject per tenant, both JSON
(msgspec) so operators can read them with `nats sub`; their subjects and codecs are in `mintlog.domain.streams`.

Guarantees every producer keeps:
- `id` is deterministic for the fact it describes (one state transition; one incident change), and is the
  bus message id (`Nats-Msg-Id`), so a re-publish after a crash is dropped by the duplicate window and every
  consumer can use it as an idempotency key.
- An `AlertEvent` snapshots what the notifier needs (rule name, severity, labels, channel ids, rendered message)
  so delivery never depends on the rule still existing or being unchanged.

The flow: the evaluator publishes an `AlertEvent` per transition; the notify role's incident worker turns each
into an incident change and publishes an `IncidentEvent`; the notify role's delivery worker sends each
`IncidentEvent` whose `notify` is true to its `channel_ids` (one delivery per event and channel). So the
seed's "6 errors → one webhook" is one firing transition → one `incident.triggered` → one delivery per channel.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

__all__ = [
    "ALERT_STATES",
    "INCIDENT_EVENT_TYPES",
    "AlertEvent",
    "AlertState",
    "IncidentEvent",
    "IncidentEventType",
    "IncidentStatus",
]

AlertState = Literal["ok", "pending", "firing", "resolved", "nodata", "error"]
ALERT_STATES: tuple[AlertState, ...] = ("ok", "pending", "firing", "resolved", "nodata", "error")

IncidentStatus = Literal["triggered", "acknowledged", "resolved"]

IncidentEventType = Literal[
    "incident.triggered",  # opened (by an alert, or over the API)
    "incident.alert_refired",  # the same dedup key fired again while the incident was open
    "incident.alert_resolved",  # its alert resolved; the incident stays open (rule without auto-resolve)
    "incident.acknowledged",
    "incident.resolved",
    "incident.commented",
    "incident.retriggered",  # an acknowledgement timed out: back to triggered, escalation from step 1
]
INCIDENT_EVENT_TYPES: tuple[IncidentEventType, ...] = (
    "incident.triggered",
    "incident.alert_refired",
    "incident.alert_resolved",
    "incident.acknowledged",
    "incident.resolved",
    "incident.commented",
    "incident.retriggered",
)


class AlertEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One state transition of one alert (a rule and one value of its `group_by`).

    `id` = `alert:{rule_id}:{group_hash}:{transition_seq}` where `transition_seq` counts this group's
    transitions (persisted in `alert_states`), so the same transition always has the same id.
    `dedup_key` = `{rule_id}:{group_hash}`: one open incident per dedup key.
    `value` is the count in `[window_start, window_end)`; None for `nodata` and `error`.
    `context` (optional, JSON) is copied into the incident's timeline entry as `data.context`: uptime monitors
    put the failing check and the linked service's recent logs there, or `reason` when a pause or a delete
    resolves the incident.
    """

    id: str
    tenant_id: str
    rule_id: str
    rule_name: str
    dedup_key: str
    group: dict[str, str]
    previous_state: AlertState
    state: AlertState
    value: float | None
    threshold: float
    comparator: str
    window_start: datetime
    window_end: datetime
    evaluated_at: datetime
    severity: str
    labels: dict[str, str]
    message: str
    channel_ids: list[str]
    auto_resolve_incident: bool
    sample_event_ids: list[str] = msgspec.field(default_factory=lambda: [])
    error: str | None = None
    context: dict[str, Any] | None = None


class IncidentEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One change of one incident, published after the change is committed.

    `id` is the id of the timeline entry that records the change, so it is unique and stable.
    `notify` says whether the notifier delivers it to `channel_ids` (true for triggered, acknowledged,
    resolved and alert_resolved; false for comments and re-fires, and when `silenced_by` names a silence).
    `actor` is an API key prefix or `system`.
    """

    id: str
    type: IncidentEventType
    tenant_id: str
    incident_id: str
    title: str
    severity: str
    status: IncidentStatus
    occurred_at: datetime
    actor: str
    notify: bool
    channel_ids: list[str] = msgspec.field(default_factory=lambda: [])
    dedup_key: str | None = None
    rule_id: str | None = None
    alert: AlertEvent | None = None
    silenced_by: str | None = None
    content: str | None = None
