"""What a heartbeat ping publishes: the ping as a log event of the tenant (`fields.event_kind: ping`, with its
body, exit status and run duration), then the state change it confirmed, if any.

Guarantees (as for checks, `mintlog.roles.uptime.events`): the batch id derives from the monitor and the
ping's receive time, so a redelivered ping publishes the very same message id and the bus drops the copy; the
events are ordinary ingest events (source `uptime`), searchable with `fields.event_kind:ping`.
"""

from __future__ import annotations

from typing import Any

from mintlog.domain.events import RawBatch
from mintlog.domain.heartbeats import HeartbeatPing
from mintlog.domain.monitors import Monitor, Transition
from mintlog.domain.streams import encode_bus_message
from mintlog.roles.uptime.events import UPTIME_SERVICE, log_batch_id

__all__ = ["ping_log_batch"]


def _ping_event(
    monitor: Monitor,
    ping: HeartbeatPing,
    *,
    ok: bool | None,
    error: str | None,
    duration_seconds: float | None,
    location: str,
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "monitor_id": monitor.id,
        "monitor_name": monitor.spec.name,
        "check_type": "heartbeat",
        "event_kind": "ping",
        "ping_kind": ping.kind,
        "method": ping.method,
        "location": location,
    }
    optional: dict[str, Any] = {
        "ok": ok,
        "error": error,
        "exit_status": ping.exit_status,
        "duration_seconds": None if duration_seconds is None else round(duration_seconds, 3),
        "body": ping.body or None,
        "user_agent": ping.user_agent,
        "remote_addr": ping.remote_addr,
    }
    fields.update({name: value for name, value in optional.items() if value is not None})
    if monitor.spec.paused:
        fields["paused"] = True
    took = "" if duration_seconds is None else f" after {duration_seconds:.1f}s"
    verdict = {None: "started", True: f"succeeded{took}", False: f"failed{took}: {error}"}[ok]
    return {
        "timestamp": ping.received_at.isoformat(),
        "service": monitor.spec.service or UPTIME_SERVICE,
        "level": "error" if ok is False else "info",
        "message": f"heartbeat {monitor.spec.name}: the job {verdict}",
        "host": location,
        "fields": fields,
    }


def _transition_event(monitor: Monitor, transition: Transition, error: str | None, location: str) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "monitor_id": monitor.id,
        "monitor_name": monitor.spec.name,
        "check_type": "heartbeat",
        "state": transition.current,
        "previous_state": transition.previous,
        "location": location,
        "event_kind": "state_change",
    }
    if error is not None:
        fields["error"] = error
    return {
        "timestamp": transition.at.isoformat(),
        "service": monitor.spec.service or UPTIME_SERVICE,
        "level": "error" if transition.current == "down" else "info",
        "message": f"monitor {monitor.spec.name} is {transition.current} (was {transition.previous})",
        "host": location,
        "fields": fields,
    }


def ping_log_batch(
    monitor: Monitor,
    ping: HeartbeatPing,
    *,
    ok: bool | None,
    error: str | None,
    duration_seconds: float | None,
    location: str,
    transition: Transition | None,
) -> tuple[str, bytes]:
    """The batch id and encoded `RawBatch` of one ping: its event, then its state change when it has one."""
    events = [_ping_event(monitor, ping, ok=ok, error=error, duration_seconds=duration_seconds, location=location)]
    if transition is not None:
        events.append(_transition_event(monitor, transition, error, location))
    batch_id = log_batch_id(monitor.id, ping.received_at)
    batch = RawBatch(
        batch_id=batch_id, tenant_id=monitor.tenant_id, received_at=ping.received_at, source="uptime", events=events
    )
    return batch_id, encode_bus_message(batch)
