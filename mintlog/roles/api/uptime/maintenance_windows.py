"""Maintenance window routes under `/v1/uptime/maintenance-windows` (scopes `uptime:read`, `uptime:write`).
docs/uptime.md is the reference.

Guarantees:
- a body is checked whole before anything is stored: a malformed RRULE, an unknown time zone, `ends_at` not
  after `starts_at`, no target, a monitor or alert rule id the tenant does not have is a 422 whose `field`
  names it;
- naming alert rules (`targets.alert_rule_ids`) silences log alerts, so it also needs the scope `alerts:write`
  (403 `missing_scope` otherwise);
- at most `MINTLOG_UPTIME__MAX_MAINTENANCE_WINDOWS_PER_TENANT` windows (409 `too_many_maintenance_windows`);
- another tenant's window answers 404 on every verb; every write is in the audit log, refused ones included.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgspec
from litestar import Request, delete, get, patch, post, put
from litestar.params import FromPath

from mintlog.domain.maintenance import occurrences
from mintlog.domain.maintenance_windows import (
    MaintenanceWindowCreate,
    MaintenanceWindowPatch,
    StoredWindow,
    WindowTargets,
    build_window,
    new_window_id,
    patched_window_body,
    window_active,
)
from mintlog.errors import BadRequest, Forbidden
from mintlog.http.guards import principal_of, requires
from mintlog.ports.alerting import AlertRuleStore
from mintlog.ports.maintenance import MaintenanceWindowStore
from mintlog.ports.uptime import MonitorStore
from mintlog.roles.api.common.auditing import AuditedWrite, audit_target
from mintlog.roles.api.common.dependencies import Clock, Injected
from mintlog.roles.api.common.pagination import Cursor, Limit, Page, TimeWindow, refuse_undeclared_parameters
from mintlog.roles.api.common.resource import Resource, operation
from mintlog.roles.api.common.wire import (
    FromParameter,
    ToParameter,
    decode_body,
    invalid_field,
    read_body,
    time_parameter,
)
from mintlog.settings import Settings

__all__ = ["MAX_OCCURRENCES", "MaintenanceWindows", "Occurrence", "OccurrencePage", "WindowView"]

MAX_OCCURRENCES = 1000
_MAX_OCCURRENCE_RANGE = timedelta(days=366)
_DEFAULT_OCCURRENCE_RANGE = timedelta(days=30)
_LOOKAHEADS = (timedelta(days=1), timedelta(days=35), timedelta(days=400))
_decoder = msgspec.json.Decoder(MaintenanceWindowCreate)
_patch_decoder = msgspec.json.Decoder(MaintenanceWindowPatch)


class Occurrence(msgspec.Struct, frozen=True, kw_only=True):
    """One concrete occurrence of a window, in UTC: active on `[starts_at, ends_at)`."""

    starts_at: datetime
    ends_at: datetime


class OccurrencePage(msgspec.Struct, frozen=True, kw_only=True):
    """The occurrences overlapping `[from, to)`, in order; `truncated` when more than `MAX_OCCURRENCES`."""

    from_: datetime = msgspec.field(name="from")
    to: datetime
    items: list[Occurrence]
    truncated: bool


class WindowView(msgspec.Struct, frozen=True, kw_only=True):
    """A window as the API shows it: its schedule as stored (`ends_at` given at create is kept as
    `duration_seconds`), whether it is active now and its current or next occurrence (None after its last)."""

    id: str
    tenant_id: str
    name: str
    starts_at: datetime
    duration_seconds: int
    rrule: str | None
    time_zone: str
    until: datetime | None
    targets: WindowTargets
    comment: str | None
    created_at: datetime
    updated_at: datetime
    active: bool
    next_occurrence: Occurrence | None


def _next_occurrence(window: StoredWindow, now: datetime) -> Occurrence | None:
    for lookahead in _LOOKAHEADS:
        found = occurrences(window.schedule, now, now + lookahead)
        if found:
            return Occurrence(starts_at=found[0][0], ends_at=found[0][1])
    return None


def _view(window: StoredWindow, now: datetime) -> WindowView:
    schedule = window.schedule
    return WindowView(
        id=window.id,
        tenant_id=window.tenant_id,
        name=window.name,
        starts_at=schedule.starts_at,
        duration_seconds=schedule.duration_seconds,
        rrule=schedule.rrule,
        time_zone=schedule.time_zone,
        until=schedule.until,
        targets=window.targets,
        comment=window.comment,
        created_at=window.created_at,
        updated_at=window.updated_at,
        active=window_active(window, now),
        next_occurrence=_next_occurrence(window, now),
    )


def _audit_detail(window: StoredWindow) -> dict[str, Any]:
    return {
        "name": window.name,
        "rrule": window.schedule.rrule,
        "targets": msgspec.to_builtins(window.targets),
    }


async def _check_targets(
    request: Request[Any, Any, Any], targets: WindowTargets, monitors: MonitorStore, alert_rules: AlertRuleStore
) -> None:
    """A 422 naming the first target id the tenant does not have; a 403 when alert rules are named by a key
    without `alerts:write`."""
    principal = principal_of(request)
    if targets.alert_rule_ids and not principal.has_scope("alerts:write"):
        raise Forbidden(
            "a window naming alert rules silences log alerts: it needs the scope 'alerts:write' too",
            extra={"required_scope": "alerts:write"},
        )
    for index, monitor_id in enumerate(targets.monitor_ids):
        if await monitors.get_monitor(principal.tenant_id, monitor_id) is None:
            raise invalid_field(f"targets.monitor_ids[{index}]", f"no monitor {monitor_id!r}")
    for index, rule_id in enumerate(targets.alert_rule_ids):
        if await alert_rules.get_rule(principal.tenant_id, rule_id) is None:
            raise invalid_field(f"targets.alert_rule_ids[{index}]", f"no alert rule {rule_id!r}")


class MaintenanceWindows(Resource):
    """`/v1/uptime/maintenance-windows`: the tenant's maintenance windows."""

    path = "/v1/uptime/maintenance-windows"
    opt = audit_target("maintenance_window")
    noun = "maintenance window"
    not_found_code = "maintenance_window_not_found"

    @post(
        guards=[requires("uptime:write")],
        status_code=201,
        summary="Create a maintenance window: one-off, or recurring with an RRULE in a time zone.",
        description=(
            'Body: {"name", "starts_at", "ends_at" | "duration_seconds", optional "rrule" (e.g. '
            '"FREQ=WEEKLY;BYDAY=SU"), "time_zone" (IANA, default UTC), "until", "targets": {"monitor_ids", '
            '"labels", "alert_rule_ids"}, "comment"}. Naming alert rules also needs alerts:write. See docs/uptime.md.'
        ),
        opt=operation(audit="maintenance_window.create", body=MaintenanceWindowCreate, errors=(409, 422)),
    )
    async def create_window(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        maintenance_windows: Injected[MaintenanceWindowStore],
        monitors: Injected[MonitorStore],
        alert_rules: Injected[AlertRuleStore],
        settings: Injected[Settings],
        clock: Injected[Clock],
    ) -> WindowView:
        principal = principal_of(request)
        async with audit.record() as note:
            body = decode_body(await read_body(request.stream()), _decoder)
            now = clock()
            window = build_window(
                body, window_id=new_window_id(), tenant_id=principal.tenant_id, created_at=now, now=now
            )
            await _check_targets(request, window.targets, monitors, alert_rules)
            await maintenance_windows.create_window(
                window, max_per_tenant=settings.uptime.max_maintenance_windows_per_tenant
            )
            note.target_id = window.id
            note.detail = _audit_detail(window)
        return _view(window, now)

    @get(guards=[requires("uptime:read")], summary="List maintenance windows, oldest first.", opt=operation())
    async def list_windows(
        self,
        request: Request[Any, Any, Any],
        maintenance_windows: Injected[MaintenanceWindowStore],
        clock: Injected[Clock],
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> Page[WindowView]:
        principal = principal_of(request)
        page = TimeWindow.of(request, limit, cursor)
        found = await maintenance_windows.list_windows(principal.tenant_id, after=page.after, limit=page.fetch)
        now = clock()
        return page.page(found, lambda window: _view(window, now))

    @get(
        "/{window_id:str}",
        guards=[requires("uptime:read")],
        summary="Get a maintenance window, whether it is active now and its next occurrence.",
        opt=operation(),
    )
    async def get_window(
        self,
        request: Request[Any, Any, Any],
        maintenance_windows: Injected[MaintenanceWindowStore],
        clock: Injected[Clock],
        window_id: FromPath[str],
    ) -> WindowView:
        principal = principal_of(request)
        window = self.found(await maintenance_windows.get_window(principal.tenant_id, window_id), window_id)
        return _view(window, clock())

    @put(
        "/{window_id:str}",
        guards=[requires("uptime:write")],
        status_code=200,
        summary="Replace a maintenance window: the body is a whole window, as for a create.",
        opt=operation(audit="maintenance_window.update", body=MaintenanceWindowCreate, errors=(422,)),
    )
    async def replace_window(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        maintenance_windows: Injected[MaintenanceWindowStore],
        monitors: Injected[MonitorStore],
        alert_rules: Injected[AlertRuleStore],
        clock: Injected[Clock],
        window_id: FromPath[str],
    ) -> WindowView:
        principal = principal_of(request)
        async with audit.record(target_id=window_id) as note:
            body = decode_body(await read_body(request.stream()), _decoder)
            current = self.found(await maintenance_windows.get_window(principal.tenant_id, window_id), window_id)
            now = clock()
            window = build_window(
                body, window_id=current.id, tenant_id=current.tenant_id, created_at=current.created_at, now=now
            )
            await _check_targets(request, window.targets, monitors, alert_rules)
            replaced = self.found(await maintenance_windows.replace_window(window), window_id)
            note.detail = _audit_detail(replaced)
        return _view(replaced, now)

    @patch(
        "/{window_id:str}",
        guards=[requires("uptime:write")],
        status_code=200,
        summary="Change some members of a maintenance window; the result is validated as a whole window.",
        opt=operation(audit="maintenance_window.update", body=MaintenanceWindowPatch, errors=(422,)),
    )
    async def patch_window(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        maintenance_windows: Injected[MaintenanceWindowStore],
        monitors: Injected[MonitorStore],
        alert_rules: Injected[AlertRuleStore],
        clock: Injected[Clock],
        window_id: FromPath[str],
    ) -> WindowView:
        principal = principal_of(request)
        async with audit.record(target_id=window_id) as note:
            changes = decode_body(await read_body(request.stream()), _patch_decoder)
            current = self.found(await maintenance_windows.get_window(principal.tenant_id, window_id), window_id)
            now = clock()
            window = build_window(
                patched_window_body(current, changes),
                window_id=current.id,
                tenant_id=current.tenant_id,
                created_at=current.created_at,
                now=now,
            )
            if changes.targets is not msgspec.UNSET:
                await _check_targets(request, window.targets, monitors, alert_rules)
            replaced = self.found(await maintenance_windows.replace_window(window), window_id)
            note.detail = _audit_detail(replaced)
        return _view(replaced, now)

    @delete(
        "/{window_id:str}",
        guards=[requires("uptime:write")],
        status_code=204,
        summary="Delete a maintenance window; monitors in it leave maintenance at their next check.",
        opt=operation(audit="maintenance_window.delete"),
    )
    async def delete_window(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        maintenance_windows: Injected[MaintenanceWindowStore],
        window_id: FromPath[str],
    ) -> None:
        principal = principal_of(request)
        async with audit.record(target_id=window_id):
            if not await maintenance_windows.delete_window(principal.tenant_id, window_id):
                raise self.not_found(window_id)

    @get(
        "/{window_id:str}/occurrences",
        guards=[requires("uptime:read")],
        summary="The concrete occurrences of a window overlapping [from, to) (default: the next 30 days).",
        description=f"At most {MAX_OCCURRENCES} occurrences (`truncated` says when there are more); `to - from` "
        "is at most 366 days.",
        opt=operation(),
    )
    async def list_occurrences(
        self,
        request: Request[Any, Any, Any],
        maintenance_windows: Injected[MaintenanceWindowStore],
        clock: Injected[Clock],
        window_id: FromPath[str],
        from_: FromParameter = None,
        to: ToParameter = None,
    ) -> OccurrencePage:
        refuse_undeclared_parameters(request)
        principal = principal_of(request)
        now = clock()
        start = time_parameter("from", from_, now) or now
        end = time_parameter("to", to, now) or start + _DEFAULT_OCCURRENCE_RANGE
        if start >= end:
            raise BadRequest("`from` must be earlier than `to`", code="invalid_time")
        if end - start > _MAX_OCCURRENCE_RANGE:
            raise BadRequest("`to` must be at most 366 days after `from`", code="invalid_time")
        window = self.found(await maintenance_windows.get_window(principal.tenant_id, window_id), window_id)
        found = occurrences(window.schedule, start, end)
        return OccurrencePage(
            from_=start,
            to=end,
            items=[Occurrence(starts_at=begin, ends_at=finish) for begin, finish in found[:MAX_OCCURRENCES]],
            truncated=len(found) > MAX_OCCURRENCES,
        )
