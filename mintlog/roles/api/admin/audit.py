"""Reading the audit log: `/v1/admin/audit` (scope `admin`, every tenant) and `/v1/audit` (scope `audit:read`,
the caller's tenant: entries about it or by its keys).

Both are newest first and cursor-paginated, filtered by `actor` (key id or display prefix), `action`, `result`,
`from` (inclusive) and `to` (exclusive); the admin one by `tenant_id` too. On `/v1/audit` a `tenant_id` is
refused (400 `unknown_parameter`), never obeyed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get
from litestar.params import QueryParameter

from mintlog.domain.audit import AUDIT_ACTIONS, AuditQuery, AuditResult
from mintlog.errors import BadRequest
from mintlog.http.guards import principal_of, requires
from mintlog.ports.metadata import MetadataStore
from mintlog.roles.api.admin.wire import AuditEntryView, audit_entry_view
from mintlog.roles.api.common.dependencies import Clock, Injected
from mintlog.roles.api.common.pagination import (
    Cursor,
    Limit,
    Page,
    decode_time_cursor,
    encode_time_cursor,
    parse_limit,
    refuse_undeclared_parameters,
)
from mintlog.roles.api.common.resource import operation
from mintlog.roles.api.common.wire import FromParameter, ToParameter, time_parameter

__all__ = ["AuditLog"]

_RESULTS: dict[str, AuditResult] = {"ok": "ok", "denied": "denied", "error": "error"}
_DESCRIPTION = (
    "Query: actor (key id or prefix), action (e.g. key.revoke), result (ok, denied, error), from/to (RFC 3339 or "
    "now-24h), limit (1-200, default 50), cursor (the previous page's next_cursor). Newest first."
)


class _Filters(msgspec.Struct, frozen=True, kw_only=True):
    actor: str | None
    action: str | None
    result: str | None
    from_: str | None
    to: str | None
    limit: str | None
    cursor: str | None


def _audit_query(tenant_id: str | None, filters: _Filters, now: datetime) -> AuditQuery:
    if filters.action is not None and filters.action not in AUDIT_ACTIONS:
        raise BadRequest(f"`action` must be one of {', '.join(AUDIT_ACTIONS)}", code="invalid_filter")
    if filters.result is not None and filters.result not in _RESULTS:
        raise BadRequest("`result` must be ok, denied or error", code="invalid_filter")
    start, end = time_parameter("from", filters.from_, now), time_parameter("to", filters.to, now)
    if start is not None and end is not None and start >= end:
        raise BadRequest("`from` must be earlier than `to`", code="invalid_time")
    return AuditQuery(
        tenant_id=tenant_id,
        actor=filters.actor,
        action=filters.action,
        result=None if filters.result is None else _RESULTS[filters.result],
        start=start,
        end=end,
        before=decode_time_cursor(filters.cursor),
        limit=parse_limit(filters.limit) + 1,
    )


async def _page(metadata: MetadataStore, query: AuditQuery) -> Page[AuditEntryView]:
    entries = await metadata.list_audit(query)
    size = query.limit - 1
    shown = entries[:size]
    next_cursor = encode_time_cursor(shown[-1].occurred_at, shown[-1].id) if len(entries) > size else None
    return Page(items=[audit_entry_view(entry) for entry in shown], next_cursor=next_cursor)


Actor = Annotated[str | None, QueryParameter(name="actor", required=False, description="A key id or prefix.")]
Action = Annotated[str | None, QueryParameter(name="action", required=False, description="e.g. key.revoke")]
Result = Annotated[str | None, QueryParameter(name="result", required=False, description="ok, denied or error.")]


class AuditLog(Controller):
    """The audit log: every tenant's (`/v1/admin/audit`) or the caller's (`/v1/audit`)."""

    path = "/v1"

    @get(
        "/admin/audit",
        guards=[requires("admin")],
        summary="Read the audit log of every tenant.",
        description=_DESCRIPTION + " tenant_id: entries about that tenant or by its keys.",
        opt=operation(),
    )
    async def admin_audit(
        self,
        request: Request[Any, Any, Any],
        metadata: Injected[MetadataStore],
        clock: Injected[Clock],
        tenant_id: Annotated[str | None, QueryParameter(name="tenant_id", required=False)] = None,
        actor: Actor = None,
        action: Action = None,
        result: Result = None,
        from_: FromParameter = None,
        to: ToParameter = None,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> Page[AuditEntryView]:
        refuse_undeclared_parameters(request)
        filters = _Filters(actor=actor, action=action, result=result, from_=from_, to=to, limit=limit, cursor=cursor)
        return await _page(metadata, _audit_query(tenant_id, filters, clock()))

    @get(
        "/audit",
        guards=[requires("audit:read")],
        summary="Read the audit log of your tenant: entries about it or by its keys.",
        description=_DESCRIPTION,
        opt=operation(),
    )
    async def own_audit(
        self,
        request: Request[Any, Any, Any],
        metadata: Injected[MetadataStore],
        clock: Injected[Clock],
        actor: Actor = None,
        action: Action = None,
        result: Result = None,
        from_: FromParameter = None,
        to: ToParameter = None,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> Page[AuditEntryView]:
        principal = principal_of(request)
        refuse_undeclared_parameters(request)
        filters = _Filters(actor=actor, action=action, result=result, from_=from_, to=to, limit=limit, cursor=cursor)
        return await _page(metadata, _audit_query(principal.tenant_id, filters, clock()))
