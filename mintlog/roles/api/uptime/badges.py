"""Status badges of monitors: minted and revoked with an API key (`uptime:write`), read with the badge token
alone. docs/uptime.md is the reference.

Guarantees:
- a badge is opt-in per monitor: `POST /v1/uptime/monitors/{id}/badge` mints a token and shows it once (only
  its SHA-256 is stored); minting again replaces it, `DELETE` revokes it; both are audited;
- `GET /v1/uptime/badges/{token}.svg` needs no API key: the token is the credential, and it reads nothing but
  the one monitor's name and its state or uptime percentage. An unknown or revoked token (or one whose monitor
  is gone) is a 404 `badge_not_found`, the same for every cause;
- the answer is `image/svg+xml` with `Cache-Control: max-age=60`, the name escaped (`render_badge`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.params import FromPath, QueryParameter

from mintlog.domain.uptime_badge import (
    BADGE_KINDS,
    BADGE_WINDOWS,
    badge_token_hash,
    new_badge_token,
    render_badge,
    status_message,
    uptime_message,
)
from mintlog.domain.uptime_sla import ResultPoint, StateChange, sla_report
from mintlog.errors import BadRequest, NotFound
from mintlog.http.guards import principal_of, requires
from mintlog.ports.maintenance import BadgeStore
from mintlog.ports.uptime import MonitorStore
from mintlog.roles.api.common.auditing import AuditedWrite, audit_target
from mintlog.roles.api.common.dependencies import Clock, Injected
from mintlog.roles.api.common.pagination import refuse_undeclared_parameters
from mintlog.roles.api.common.resource import Resource, operation

__all__ = ["BADGE_CACHE_SECONDS", "BadgeMinted", "Badges", "MonitorBadges"]

BADGE_CACHE_SECONDS = 60
_SVG = "image/svg+xml"
_SUFFIX = ".svg"
_MAX_BADGE_RESULTS = 200_000


class BadgeMinted(msgspec.Struct, frozen=True, kw_only=True):
    """A new badge: its token (shown this once) and the path of its SVG."""

    monitor_id: str
    token: str
    path: str
    created_at: datetime


class MonitorBadges(Resource):
    """`/v1/uptime/monitors/{monitor_id}/badge`: mint or revoke a monitor's badge."""

    path = "/v1/uptime/monitors/{monitor_id:str}/badge"
    opt = audit_target("monitor")
    noun = "monitor"
    not_found_code = "monitor_not_found"

    @post(
        guards=[requires("uptime:write")],
        status_code=201,
        summary="Mint the monitor's badge token (shown once); an earlier token of the monitor stops working.",
        opt=operation(audit="monitor.badge_create"),
    )
    async def mint_badge(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        monitors: Injected[MonitorStore],
        badges: Injected[BadgeStore],
        clock: Injected[Clock],
        monitor_id: FromPath[str],
    ) -> BadgeMinted:
        principal = principal_of(request)
        async with audit.record(target_id=monitor_id):
            self.found(await monitors.get_monitor(principal.tenant_id, monitor_id), monitor_id)
            token, now = new_badge_token(), clock()
            await badges.set_badge(principal.tenant_id, monitor_id, token_hash=badge_token_hash(token), created_at=now)
        path = f"/v1/uptime/badges/{token}{_SUFFIX}"
        return BadgeMinted(monitor_id=monitor_id, token=token, path=path, created_at=now)

    @delete(
        guards=[requires("uptime:write")],
        status_code=204,
        summary="Revoke the monitor's badge: its URL answers 404 from now on. Idempotent.",
        opt=operation(audit="monitor.badge_revoke"),
    )
    async def revoke_badge(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        monitors: Injected[MonitorStore],
        badges: Injected[BadgeStore],
        monitor_id: FromPath[str],
    ) -> None:
        principal = principal_of(request)
        async with audit.record(target_id=monitor_id):
            self.found(await monitors.get_monitor(principal.tenant_id, monitor_id), monitor_id)
            await badges.delete_badge(principal.tenant_id, monitor_id)


_Kind = Annotated[
    str | None,
    QueryParameter(name="kind", required=False, description="status (default) or uptime."),
]
_Window = Annotated[
    str | None,
    QueryParameter(name="window", required=False, description="For kind=uptime: 24h (default), 7d or 30d."),
]


def _choice(name: str, value: str | None, allowed: tuple[str, ...]) -> str:
    if value is None:
        return allowed[0]
    if value not in allowed:
        raise BadRequest(
            f"`{name}` must be one of {', '.join(allowed)}, got {value!r}",
            code="invalid_parameter",
            extra={"parameter": name},
        )
    return value


def _badge_not_found() -> NotFound:
    return NotFound("no badge with this token", code="badge_not_found")


class Badges(Controller):
    """`/v1/uptime/badges/{token}.svg`: the badge of one monitor, readable with its token alone."""

    path = "/v1/uptime/badges"

    @get(
        "/{badge:str}",
        summary="A monitor's status or uptime badge (SVG). No API key: the badge token is the credential.",
        description="Path: /v1/uptime/badges/{token}.svg. Query: kind (status|uptime), window (24h|7d|30d).",
        opt=operation(answer=str, media_type=_SVG, errors=(400, 404)),
    )
    async def badge(
        self,
        request: Request[Any, Any, Any],
        monitors: Injected[MonitorStore],
        badges: Injected[BadgeStore],
        clock: Injected[Clock],
        badge: FromPath[str],
        kind: _Kind = None,
        window: _Window = None,
    ) -> Response[str]:
        refuse_undeclared_parameters(request)
        chosen_kind = _choice("kind", kind, BADGE_KINDS)
        chosen_window = _choice("window", window, tuple(BADGE_WINDOWS))
        if not badge.endswith(_SUFFIX):
            raise _badge_not_found()
        owner = await badges.badge_monitor(badge_token_hash(badge.removesuffix(_SUFFIX)))
        monitor = None if owner is None else await monitors.get_monitor(*owner)
        if monitor is None:
            raise _badge_not_found()
        if chosen_kind == "status":
            label, (message, color) = monitor.spec.name, status_message(monitor.status.state)
        else:
            end = clock()
            start = end - timedelta(seconds=BADGE_WINDOWS[chosen_window])
            results = await monitors.list_results(
                monitor.tenant_id, monitor.id, start=start, end=end, limit=_MAX_BADGE_RESULTS
            )
            changes = await monitors.list_state_changes(monitor.tenant_id, monitor.id, start=start, end=end)
            report = sla_report(
                [
                    ResultPoint(at=r.at, ok=r.ok, latency_ms=r.latency_ms, in_maintenance=r.in_maintenance)
                    for r in results
                ],
                start=start,
                end=end,
                state_changes=[StateChange(at=change.at, state=change.state) for change in changes],
            )
            label, (message, color) = f"{monitor.spec.name} {chosen_window}", uptime_message(report.uptime_percent)
        return Response(
            render_badge(label, message, color),
            media_type=_SVG,
            headers={"Cache-Control": f"max-age={BADGE_CACHE_SECONDS}"},
        )
