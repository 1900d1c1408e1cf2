"""Monitor routes under `/v1/uptime/monitors` (scopes `uptime:read`, `uptime:write`). docs/uptime.md is the
reference.

Guarantees:
- a body is checked whole before anything is stored: an unknown member, a bad value, a check a probe could not
  run, a target the egress policy refuses (`MINTLOG_EGRESS_ALLOW`) or an interval below
  `MINTLOG_UPTIME__MIN_INTERVAL_SECONDS` is a 422 whose `field` names it;
- `PUT` and `PATCH` merge: the members given replace the monitor's, the others keep their value; a changed
  monitor is checked again at once, its status kept (a pause or resume changes the status);
- `channel_ids` must name the caller's own channels (422 on `channel_ids[i]` otherwise, as for alert rules);
- pausing or deleting a `down` monitor commits, with the change, the alert event that resolves its incident
  ("monitor paused", "monitor deleted"; only an `alert_resolved` entry without `resolve_incident_on_up`); the
  uptime role's outbox relay publishes it within `MINTLOG_UPTIME__OUTBOX_INTERVAL_SECONDS`;
- another tenant's monitor answers 404 on every verb; every write is in the audit log, refused ones included;
- a heartbeat monitor (`check.type: heartbeat`) has a secret ping token from its creation (or from the update
  that made it one), shown only in its `ping_url`, never in the audit log; `rotate-ping-token` replaces it (the
  old one answers 404 at once). Its `next_check_at` is its deadline: counted from its last ping on an update,
  from now on creation and resume.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgspec
from litestar import Request, delete, get, post, route
from litestar.params import FromPath

from mintlog.domain.egress import EgressPolicy, EgressRefused
from mintlog.domain.heartbeat_schedule import deadline
from mintlog.domain.heartbeats import HeartbeatState, new_ping_token, ping_path
from mintlog.domain.monitors import (
    Monitor,
    MonitorSpec,
    MonitorStatus,
    MonitorUpdate,
    merge_monitor_update,
    new_monitor_id,
    paused_status,
    validate_monitor,
)
from mintlog.domain.uptime_alerts import stopped_alert
from mintlog.domain.uptime_checks import HeartbeatCheck, check_spec_egress
from mintlog.domain.uptime_sla import ResultPoint, SlaReport, StateChange, sla_report
from mintlog.errors import BadRequest, Conflict
from mintlog.http.guards import principal_of, requires
from mintlog.ports.escalation import EscalationStore
from mintlog.ports.notifications import NotificationStore
from mintlog.ports.uptime import CheckResult, MonitorStore
from mintlog.resolver import system_resolve
from mintlog.roles.api.common.auditing import AuditedWrite, audit_target
from mintlog.roles.api.common.dependencies import Clock, Injected
from mintlog.roles.api.common.pagination import (
    Cursor,
    Limit,
    Page,
    TimeWindow,
    decode_time_cursor,
    encode_time_cursor,
    parse_limit,
    refuse_undeclared_parameters,
)
from mintlog.roles.api.common.resource import UPDATE_METHODS, Resource, operation
from mintlog.roles.api.common.wire import (
    FromParameter,
    ToParameter,
    decode_body,
    invalid_field,
    read_body,
    time_parameter,
)
from mintlog.roles.api.incidents.channel_refs import check_channel_ids
from mintlog.settings import Settings

__all__ = ["MonitorView", "Monitors"]

_create_decoder = msgspec.json.Decoder(MonitorSpec)
_update_decoder = msgspec.json.Decoder(MonitorUpdate)
_DEFAULT_RESULTS_WINDOW = timedelta(days=1)
_DEFAULT_SLA_WINDOW = timedelta(days=30)
_MAX_SLA_RESULTS = 200_000


class MonitorView(MonitorSpec, frozen=True, kw_only=True):
    """A monitor as the API shows it: every member with its effective value, its id, times and status."""

    id: str
    tenant_id: str
    created_at: datetime
    updated_at: datetime
    next_check_at: datetime
    status: MonitorStatus
    ping_url: str | None = None
    """A heartbeat's success ping path on the ingest port (`/ping/{token}`); None for other monitors."""
    heartbeat: HeartbeatState | None = None
    """What a heartbeat's pings left (last ping, last start, last run's duration); None for other monitors."""
    location_states: dict[str, MonitorStatus] | None = None
    """A monitor with `locations`: the state each location's own checks confirmed (a location that has not
    checked yet is `pending`); None for other monitors."""


def _view(monitor: Monitor) -> MonitorView:
    return MonitorView(
        **msgspec.structs.asdict(monitor.spec),
        id=monitor.id,
        tenant_id=monitor.tenant_id,
        created_at=monitor.created_at,
        updated_at=monitor.updated_at,
        next_check_at=monitor.next_check_at,
        status=monitor.status,
        ping_url=None if monitor.ping_token is None else ping_path(monitor.ping_token),
        heartbeat=(monitor.heartbeat or HeartbeatState()) if isinstance(monitor.spec.check, HeartbeatCheck) else None,
        location_states=(
            {location: monitor.location_states.get(location, MonitorStatus()) for location in monitor.spec.locations}
            if monitor.spec.locations
            else None
        ),
    )


def _next_due(spec: MonitorSpec, heartbeat: HeartbeatState | None, now: datetime) -> datetime:
    """When a created or changed monitor is due: at once for a probed one; a heartbeat at its deadline,
    counted from its last ping (or from `now` when it has none)."""
    if not isinstance(spec.check, HeartbeatCheck):
        return now
    last_ping = None if heartbeat is None else heartbeat.last_ping_at
    return deadline(spec.check.schedule, last_ping, now)


def _audit_detail(spec: MonitorSpec) -> dict[str, Any]:
    return {"name": spec.name, "type": spec.check.__struct_config__.tag, "interval_seconds": spec.interval_seconds}


def _unset(update: MonitorUpdate) -> set[str]:
    return {name for name in update.__struct_fields__ if getattr(update, name) is msgspec.UNSET}


async def _checked(
    spec: MonitorSpec, settings: Settings, channels: NotificationStore, escalation: EscalationStore, tenant_id: str
) -> MonitorSpec:
    """`spec` when valid, its channels and escalation policy the tenant's, and its target passes the egress
    policy; else a 422 naming the field."""
    validate_monitor(spec, min_interval_seconds=settings.uptime.min_interval_seconds)
    await check_channel_ids(channels, tenant_id, spec.channel_ids)
    if (
        spec.escalation_policy_id is not None
        and await escalation.get_policy(tenant_id, spec.escalation_policy_id) is None
    ):
        raise invalid_field(
            "escalation_policy_id", f"`escalation_policy_id`: no escalation policy {spec.escalation_policy_id!r}"
        )
    try:
        await check_spec_egress(spec.check, EgressPolicy.from_setting(settings.egress_allow), resolve=system_resolve)
    except EgressRefused as exc:
        raise invalid_field("check", f"the target of `check` is refused: {exc.reason}") from None
    return spec


def _window(from_: str | None, to: str | None, now: datetime, default: timedelta) -> tuple[datetime, datetime]:
    end = time_parameter("to", to, now) or now
    start = time_parameter("from", from_, now) or end - default
    if start >= end:
        raise BadRequest("`from` must be earlier than `to`", code="invalid_time")
    return start, end


class Monitors(Resource):
    """`/v1/uptime/monitors`: the tenant's monitors (at most `MINTLOG_UPTIME__MAX_MONITORS_PER_TENANT`)."""

    path = "/v1/uptime/monitors"
    opt = audit_target("monitor")
    noun = "monitor"
    not_found_code = "monitor_not_found"

    @post(
        guards=[requires("uptime:write")],
        status_code=201,
        summary="Create an uptime monitor; it is checked at once, then every interval_seconds.",
        description=(
            'Body: {"name", "check": {"type": "http"|"tcp"|"dns"|"tls", …}, optional "service", '
            '"interval_seconds", "timeout_seconds", "down_after", "up_after", "paused", "resolve_incident_on_up", '
            '"severity", "labels", "channel_ids", "linked_service", "log_window_minutes"}. See docs/uptime.md.'
        ),
        opt=operation(audit="monitor.create", body=MonitorSpec, errors=(409, 422)),
    )
    async def create_monitor(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        monitors: Injected[MonitorStore],
        notifications: Injected[NotificationStore],
        escalation: Injected[EscalationStore],
        settings: Injected[Settings],
        clock: Injected[Clock],
    ) -> MonitorView:
        principal = principal_of(request)
        async with audit.record() as note:
            body = decode_body(await read_body(request.stream()), _create_decoder)
            spec = await _checked(body, settings, notifications, escalation, principal.tenant_id)
            now = clock()
            is_heartbeat = isinstance(spec.check, HeartbeatCheck)
            monitor = Monitor(
                id=new_monitor_id(),
                tenant_id=principal.tenant_id,
                spec=spec,
                created_at=now,
                updated_at=now,
                next_check_at=_next_due(spec, None, now),
                status=paused_status(MonitorStatus(since=now), paused=spec.paused, now=now),
                ping_token=new_ping_token() if is_heartbeat else None,
                heartbeat=HeartbeatState() if is_heartbeat else None,
            )
            await monitors.create_monitor(monitor, max_per_tenant=settings.uptime.max_monitors_per_tenant)
            note.target_id = monitor.id
            note.detail = _audit_detail(spec)
        return _view(monitor)

    @get(guards=[requires("uptime:read")], summary="List monitors, oldest first.", opt=operation())
    async def list_monitors(
        self,
        request: Request[Any, Any, Any],
        monitors: Injected[MonitorStore],
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> Page[MonitorView]:
        principal = principal_of(request)
        window = TimeWindow.of(request, limit, cursor)
        found = await monitors.list_monitors(principal.tenant_id, after=window.after, limit=window.fetch)
        return window.page(found, _view)

    @get(
        "/{monitor_id:str}",
        guards=[requires("uptime:read")],
        summary="Get a monitor with its current status.",
        opt=operation(),
    )
    async def get_monitor(
        self, request: Request[Any, Any, Any], monitors: Injected[MonitorStore], monitor_id: FromPath[str]
    ) -> MonitorView:
        principal = principal_of(request)
        return _view(self.found(await monitors.get_monitor(principal.tenant_id, monitor_id), monitor_id))

    @route(
        "/{monitor_id:str}",
        http_method=UPDATE_METHODS,
        guards=[requires("uptime:write")],
        status_code=200,
        summary="Update a monitor: the members given replace the monitor's, the others are kept.",
        description="PUT and PATCH are the same.",
        opt=operation(audit="monitor.update", body=MonitorUpdate, errors=(422,)),
    )
    async def update_monitor(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        monitors: Injected[MonitorStore],
        notifications: Injected[NotificationStore],
        escalation: Injected[EscalationStore],
        settings: Injected[Settings],
        clock: Injected[Clock],
        monitor_id: FromPath[str],
    ) -> MonitorView:
        principal = principal_of(request)
        tenant_id = principal.tenant_id
        async with audit.record(target_id=monitor_id) as note:
            update = decode_body(await read_body(request.stream()), _update_decoder)
            current = self.found(await monitors.get_monitor(tenant_id, monitor_id), monitor_id)
            spec = await _checked(
                merge_monitor_update(current.spec, update), settings, notifications, escalation, tenant_id
            )
            replaced = await self._replace(monitors, current, spec, clock())
            note.detail = {"changed": sorted(msgspec.structs.asdict(update).keys() - _unset(update))}
        return _view(replaced)

    @post(
        "/{monitor_id:str}/pause",
        guards=[requires("uptime:write")],
        status_code=200,
        summary="Pause a monitor: no checks run until it is resumed. A down monitor's open incident is resolved.",
        opt=operation(audit="monitor.pause"),
    )
    async def pause_monitor(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        monitors: Injected[MonitorStore],
        clock: Injected[Clock],
        monitor_id: FromPath[str],
    ) -> MonitorView:
        return await self._set_paused(request, audit, monitors, clock(), monitor_id, paused=True)

    @post(
        "/{monitor_id:str}/resume",
        guards=[requires("uptime:write")],
        status_code=200,
        summary="Resume a paused monitor: it is checked at once and starts again from the pending state.",
        opt=operation(audit="monitor.resume"),
    )
    async def resume_monitor(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        monitors: Injected[MonitorStore],
        clock: Injected[Clock],
        monitor_id: FromPath[str],
    ) -> MonitorView:
        return await self._set_paused(request, audit, monitors, clock(), monitor_id, paused=False)

    @post(
        "/{monitor_id:str}/rotate-ping-token",
        guards=[requires("uptime:write")],
        status_code=200,
        summary="Replace a heartbeat monitor's ping token; pings to the old ping_url answer 404 from now on.",
        opt=operation(audit="monitor.rotate_ping_token", errors=(409,)),
    )
    async def rotate_ping_token(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        monitors: Injected[MonitorStore],
        clock: Injected[Clock],
        monitor_id: FromPath[str],
    ) -> MonitorView:
        tenant_id = principal_of(request).tenant_id
        async with audit.record(target_id=monitor_id):
            current = self.found(await monitors.get_monitor(tenant_id, monitor_id), monitor_id)
            if not isinstance(current.spec.check, HeartbeatCheck):
                raise Conflict("only a heartbeat monitor has a ping token", code="not_a_heartbeat")
            replaced = await monitors.replace_monitor(
                tenant_id,
                monitor_id,
                current.spec,
                updated_at=clock(),
                next_check_at=current.next_check_at,
                ping_token=new_ping_token(),
            )
        return _view(self.found(replaced, monitor_id))

    @delete(
        "/{monitor_id:str}",
        guards=[requires("uptime:write")],
        status_code=204,
        summary="Delete a monitor, its results and state history. A down monitor's open incident is resolved.",
        opt=operation(audit="monitor.delete"),
    )
    async def delete_monitor(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        monitors: Injected[MonitorStore],
        clock: Injected[Clock],
        monitor_id: FromPath[str],
    ) -> None:
        principal = principal_of(request)
        async with audit.record(target_id=monitor_id):
            current = self.found(await monitors.get_monitor(principal.tenant_id, monitor_id), monitor_id)
            seq = current.status.transition_seq + 1
            alert = stopped_alert(current, reason="monitor deleted", seq=seq, at=clock())
            if not await monitors.delete_monitor(principal.tenant_id, monitor_id, alert=alert):
                raise self.not_found(monitor_id)

    @get(
        "/{monitor_id:str}/results",
        guards=[requires("uptime:read")],
        summary="List a monitor's check results in [from, to), newest first (default: the last 24 hours).",
        opt=operation(),
    )
    async def list_results(
        self,
        request: Request[Any, Any, Any],
        monitors: Injected[MonitorStore],
        clock: Injected[Clock],
        monitor_id: FromPath[str],
        from_: FromParameter = None,
        to: ToParameter = None,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> Page[CheckResult]:
        refuse_undeclared_parameters(request)
        size, before = parse_limit(limit), decode_time_cursor(cursor)
        principal = principal_of(request)
        start, end = _window(from_, to, clock(), _DEFAULT_RESULTS_WINDOW)
        self.found(await monitors.get_monitor(principal.tenant_id, monitor_id), monitor_id)
        found = await monitors.list_results(
            principal.tenant_id, monitor_id, start=start, end=end, before=before, limit=size + 1
        )
        items = list(found[:size])
        next_cursor = encode_time_cursor(items[-1].at, items[-1].id) if len(found) > size else None
        return Page(items=items, next_cursor=next_cursor)

    @get(
        "/{monitor_id:str}/sla",
        guards=[requires("uptime:read")],
        summary="A monitor's SLA report over [from, to) (default: the last 30 days).",
        description="Uptime is time-weighted over the confirmed up/down states; see docs/uptime.md.",
        opt=operation(),
    )
    async def sla(
        self,
        request: Request[Any, Any, Any],
        monitors: Injected[MonitorStore],
        clock: Injected[Clock],
        monitor_id: FromPath[str],
        from_: FromParameter = None,
        to: ToParameter = None,
    ) -> SlaReport:
        refuse_undeclared_parameters(request)
        principal = principal_of(request)
        tenant_id = principal.tenant_id
        start, end = _window(from_, to, clock(), _DEFAULT_SLA_WINDOW)
        self.found(await monitors.get_monitor(tenant_id, monitor_id), monitor_id)
        results = await monitors.list_results(tenant_id, monitor_id, start=start, end=end, limit=_MAX_SLA_RESULTS)
        changes = await monitors.list_state_changes(tenant_id, monitor_id, start=start, end=end)
        return sla_report(
            [ResultPoint(at=r.at, ok=r.ok, latency_ms=r.latency_ms, in_maintenance=r.in_maintenance) for r in results],
            start=start,
            end=end,
            state_changes=[StateChange(at=change.at, state=change.state) for change in changes],
        )

    async def _set_paused(
        self,
        request: Request[Any, Any, Any],
        audit: AuditedWrite,
        monitors: MonitorStore,
        now: datetime,
        monitor_id: str,
        *,
        paused: bool,
    ) -> MonitorView:
        tenant_id = principal_of(request).tenant_id
        async with audit.record(target_id=monitor_id):
            current = self.found(await monitors.get_monitor(tenant_id, monitor_id), monitor_id)
            spec = msgspec.structs.replace(current.spec, paused=paused)
            replaced = await self._replace(monitors, current, spec, now)
        return _view(replaced)

    async def _replace(self, monitors: MonitorStore, current: Monitor, spec: MonitorSpec, now: datetime) -> Monitor:
        status = paused_status(current.status, paused=spec.paused, now=now)
        alert = None
        if status is not current.status:
            status = msgspec.structs.replace(status, transition_seq=current.status.transition_seq + 1)
            if status.state == "paused":
                alert = stopped_alert(current, reason="monitor paused", seq=status.transition_seq, at=now)
        is_heartbeat = isinstance(spec.check, HeartbeatCheck)
        ping_token: str | msgspec.UnsetType | None = msgspec.UNSET
        if is_heartbeat and current.ping_token is None:
            ping_token = new_ping_token()
        elif not is_heartbeat and current.ping_token is not None:
            ping_token = None
        # A resumed heartbeat waits a whole period for its first ping, like a new one.
        heartbeat = None if status.state == "pending" and status is not current.status else current.heartbeat
        return self.found(
            await monitors.replace_monitor(
                current.tenant_id,
                current.id,
                spec,
                updated_at=now,
                next_check_at=_next_due(spec, heartbeat, now),
                status=None if status is current.status else status,
                alert=alert,
                ping_token=ping_token,
            ),
            current.id,
        )
