"""What one check publishes: its result (and any state change) as log events of the tenant, and the alert
event of a confirmed transition.

Guarantees:
- every message id is deterministic for the fact it carries (a check result by monitor and check time; a
  transition by monitor and its `transition_seq`), so a re-publish is dropped by the bus's duplicate window;
- log events are ordinary ingest events (`logs.raw.{tenant}`, source `uptime`, service `uptime`): the pipeline
  normalizes and indexes them like any other, so they are searchable with `service:uptime monitor_id:…`;
- alert events look like an alert rule's to the notify role: `rule_id` is the monitor id, `dedup_key`
  `{monitor_id}:uptime`, so one incident per monitor is opened on `down` and resolved on `up` (when the
  monitor's `resolve_incident_on_up`).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from mintlog.domain.alerting import AlertEvent
from mintlog.domain.events import RawBatch
from mintlog.domain.monitors import Monitor, Transition
from mintlog.domain.streams import encode_bus_message
from mintlog.domain.uptime_alerts import check_type, monitor_alert
from mintlog.domain.uptime_alerts import uptime_dedup_key as dedup_key
from mintlog.domain.uptime_checks import CheckOutcome

__all__ = ["UPTIME_SERVICE", "alert_event", "dedup_key", "log_batch", "log_batch_id"]

UPTIME_SERVICE = "uptime"
"""The service of the log events a monitor without its own `service` publishes."""


def log_batch_id(monitor_id: str, at: datetime) -> str:
    """The batch id of one check's log events: sorts by check time, identical on a re-publish."""
    digest = hashlib.sha256(f"{monitor_id}:{at.isoformat()}".encode()).hexdigest()[:12]
    return f"{int(at.timestamp() * 1000):012x}{digest}"


def _result_event(
    monitor: Monitor, outcome: CheckOutcome, at: datetime, location: str, *, in_maintenance: bool
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "monitor_id": monitor.id,
        "monitor_name": monitor.spec.name,
        "check_type": check_type(monitor),
        "ok": outcome.ok,
        "latency_ms": round(outcome.latency_ms, 3),
        "location": location,
        "event_kind": "check_result",
    }
    if outcome.error is not None:
        fields["error"] = outcome.error
    if outcome.status_code is not None:
        fields["status_code"] = outcome.status_code
    if in_maintenance:
        fields["in_maintenance"] = True
    verdict = "ok" if outcome.ok else f"failed: {outcome.error or 'unexpected answer'}"
    return {
        "timestamp": at.isoformat(),
        "service": monitor.spec.service or UPTIME_SERVICE,
        "level": "info" if outcome.ok else "error",
        "message": f"uptime check of {monitor.spec.name} {verdict}",
        "host": location,
        "fields": fields,
    }


def _transition_event(monitor: Monitor, transition: Transition, outcome: CheckOutcome, location: str) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "monitor_id": monitor.id,
        "monitor_name": monitor.spec.name,
        "check_type": check_type(monitor),
        "state": transition.current,
        "previous_state": transition.previous,
        "location": location,
        "event_kind": "state_change",
    }
    if outcome.error is not None:
        fields["error"] = outcome.error
    return {
        "timestamp": transition.at.isoformat(),
        "service": monitor.spec.service or UPTIME_SERVICE,
        "level": "error" if transition.current == "down" else "info",
        "message": f"monitor {monitor.spec.name} is {transition.current} (was {transition.previous})",
        "host": location,
        "fields": fields,
    }


def log_batch(
    monitor: Monitor,
    outcome: CheckOutcome,
    *,
    at: datetime,
    location: str,
    transition: Transition | None,
    in_maintenance: bool = False,
) -> tuple[str, bytes]:
    """The batch id and encoded `RawBatch` of one check: its result (`fields.in_maintenance: true` inside a
    maintenance window), then its state change when it has one."""
    events = [_result_event(monitor, outcome, at, location, in_maintenance=in_maintenance)]
    if transition is not None:
        events.append(_transition_event(monitor, transition, outcome, location))
    batch_id = log_batch_id(monitor.id, at)
    batch = RawBatch(batch_id=batch_id, tenant_id=monitor.tenant_id, received_at=at, source="uptime", events=events)
    return batch_id, encode_bus_message(batch)


def alert_event(
    monitor: Monitor,
    transition: Transition,
    outcome: CheckOutcome,
    *,
    location: str,
    window_start: datetime,
    context: dict[str, Any] | None = None,
) -> AlertEvent | None:
    """The alert event of a confirmed transition: `firing` on down, `resolved` on up after down; None for any
    other transition (pending → up opens nothing). `context` goes into the incident's timeline entry."""
    spec = monitor.spec
    if transition.current == "down":
        error = outcome.error or "unexpected answer"
        message = f"{spec.name} is down: {error} ({spec.down_after} consecutive failed checks from {location})"
        return monitor_alert(
            monitor,
            seq=transition.seq,
            state="firing",
            at=transition.at,
            window_start=window_start,
            message=message,
            error=outcome.error,
            context=context,
        )
    if transition.current == "up" and transition.previous == "down":
        message = f"{spec.name} is up again (checked from {location}, {outcome.latency_ms:.0f} ms)"
        return monitor_alert(
            monitor, seq=transition.seq, state="resolved", at=transition.at, window_start=window_start, message=message
        )
    return None
