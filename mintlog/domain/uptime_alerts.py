"""The alert events of uptime monitors: what a confirmed transition, a pause or a delete tells the incident flow.

Guarantees:
- one id per fact: `uptime:{monitor_id}:{transition_seq}`; the sequence moves on with every confirmed change,
  pause, resume and delete, so a re-publish has the same id (dropped by the bus's duplicate window, and the
  incident worker keys its timeline entry on it);
- the events look like an alert rule's to the notify role: `rule_id` is the monitor id, `dedup_key`
  `{monitor_id}:uptime` (one incident per monitor), `channel_ids` the monitor's, so its incident notifies
  them on opening and on resolution exactly as a rule's does;
- `context` carries what the incident's timeline shows beyond the message (the failing check, the linked
  service's logs, or the `reason` a pause or a delete resolved the incident).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from mintlog.domain.alerting import AlertEvent
from mintlog.domain.monitors import Monitor

__all__ = [
    "StopReason",
    "check_type",
    "monitor_alert",
    "stopped_alert",
    "uptime_alert_id",
    "uptime_alert_seq",
    "uptime_dedup_key",
]

StopReason = Literal["monitor paused", "monitor deleted"]


def uptime_dedup_key(monitor_id: str) -> str:
    """The incident dedup key of a monitor: one open incident per monitor."""
    return f"{monitor_id}:uptime"


def uptime_alert_id(monitor_id: str, transition_seq: int) -> str:
    """The id (and bus message id) of the alert event of a monitor's `transition_seq`-th change."""
    return f"uptime:{monitor_id}:{transition_seq}"


def uptime_alert_seq(event_id: str) -> int:
    """The transition sequence an `uptime_alert_id` carries (the order of a monitor's events)."""
    return int(event_id.rsplit(":", 1)[-1])


def check_type(monitor: Monitor) -> str:
    """The monitor's check type (`http`, `tcp`, `dns`, `tls`)."""
    return str(monitor.spec.check.__struct_config__.tag)


def monitor_alert(
    monitor: Monitor,
    *,
    seq: int,
    state: Literal["firing", "resolved"],
    at: datetime,
    window_start: datetime,
    message: str,
    error: str | None = None,
    context: dict[str, Any] | None = None,
) -> AlertEvent:
    """The alert event of `monitor` going `firing` (down) or `resolved` (up, paused or deleted)."""
    spec = monitor.spec
    return AlertEvent(
        id=uptime_alert_id(monitor.id, seq),
        tenant_id=monitor.tenant_id,
        rule_id=monitor.id,
        rule_name=f"uptime: {spec.name}",
        dedup_key=uptime_dedup_key(monitor.id),
        group={},
        previous_state="ok" if state == "firing" else "firing",
        state=state,
        value=None,
        threshold=float(spec.down_after),
        comparator="gte",
        window_start=window_start,
        window_end=at,
        evaluated_at=at,
        severity=spec.severity,
        labels={**spec.labels, "monitor_id": monitor.id, "source": "uptime", "check_type": check_type(monitor)},
        message=message,
        channel_ids=list(spec.channel_ids),
        auto_resolve_incident=spec.resolve_incident_on_up,
        error=error,
        context=context,
    )


def stopped_alert(monitor: Monitor, *, reason: StopReason, seq: int, at: datetime) -> AlertEvent | None:
    """The resolution of a `down` monitor's incident when it is paused or deleted (its `seq` the status's next
    `transition_seq`); None when the monitor is not down (no incident of its is open). The incident is resolved
    when the monitor has `resolve_incident_on_up`, else it only gets an `alert_resolved` entry."""
    if monitor.status.state != "down":
        return None
    return monitor_alert(
        monitor,
        seq=seq,
        state="resolved",
        at=at,
        window_start=monitor.status.since or at,
        message=f"{monitor.spec.name}: {reason} while down",
        context={"reason": reason},
    )
