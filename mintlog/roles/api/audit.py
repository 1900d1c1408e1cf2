"""Reading the audit log: `/v1/admin/audit` (scope `admin`, every tenant) and `/v1/audit` (scope `audit:read`,
the caller's tenant: entries about it or by its keys).

Both are newest first and cursor-paginated, filtered by `actor` (key id or display prefix), `action`, `result`,
`from` (inclusive) and `to` (exclusive); the admin one by `tenant_id` too. On `/v1/audit` a `tenant_id` is
refused (400 `unknown_parameter`), never obeyed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, get
from litestar.params import QueryParameter

from mintlog.domain.audit import AUDIT_ACTIONS, AuditQuery, AuditResult
from mintlog.domain.timeexpr import parse_time_expression
from mintlog.errors import BadRequest
from mintlog.http.guards import Guard, principal_of
from mintlog.ports.metadata import MetadataStore
from mintlog.roles.api.pagination import (
    decode_time_cursor,
    encode_time_cursor,
    parse_limit,
    refuse_unknown_parameters,
)
from mintlog.roles.api.wire import AuditPage, audit_entry_view

__all__ = ["audit_routes"]

_OWN_PARAMETERS = frozenset({"limit", "cursor", "actor", "action", "result", "from", "to"})
_ADMIN_PARAMETERS = _OWN_PARAMETERS | {"tenant_id"}
_RESULTS: dict[str, AuditResult] = {"ok": "ok", "denied": "denied", "error": "error"}
_DESCRIPTION = (
    "Query: actor (key id or prefix), action (e.g. key.revoke), result (ok, denied, error), from/to (RFC 3339 or "
    "now-24h), limit (1-200, default 50), cursor (the previous page's next_cursor). Newest first."
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _time(name: str, value: str | None, now: datetime) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time_expression(value, now)
    except ValueError as exc:
        raise BadRequest(f"`{name}`: {exc}", code="invalid_time") from None


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
    start, end = _time("from", filters.from_, now), _time("to", filters.to, now)
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


def audit_routes(
    metadata: MetadataStore, *, requires: Callable[[str], Guard], clock: Callable[[], datetime] = _utcnow
) -> list[Any]:
    """The two audit routes, bound to the metadata store."""

    async def page(query: AuditQuery) -> AuditPage:
        entries = await metadata.list_audit(query)
        size = query.limit - 1
        shown = entries[:size]
        next_cursor = encode_time_cursor(shown[-1].occurred_at, shown[-1].id) if len(entries) > size else None
        return AuditPage(items=[audit_entry_view(entry) for entry in shown], next_cursor=next_cursor)

    @get(
        "/v1/admin/audit",
        guards=[requires("admin")],
        summary="Read the audit log of every tenant.",
        description=_DESCRIPTION + " tenant_id: entries about that tenant or by its keys.",
    )
    async def admin_audit(
        request: Request[Any, Any, Any],
        tenant_id: Annotated[str | None, QueryParameter(name="tenant_id", required=False)] = None,
        actor: Annotated[str | None, QueryParameter(name="actor", required=False)] = None,
        action: Annotated[str | None, QueryParameter(name="action", required=False)] = None,
        result: Annotated[str | None, QueryParameter(name="result", required=False)] = None,
        from_: Annotated[str | None, QueryParameter(name="from", required=False)] = None,
        to: Annotated[str | None, QueryParameter(name="to", required=False)] = None,
        limit: Annotated[str | None, QueryParameter(name="limit", required=False)] = None,
        cursor: Annotated[str | None, QueryParameter(name="cursor", required=False)] = None,
    ) -> AuditPage:
        refuse_unknown_parameters(request.query_params, _ADMIN_PARAMETERS)
        filters = _Filters(actor=actor, action=action, result=result, from_=from_, to=to, limit=limit, cursor=cursor)
        return await page(_audit_query(tenant_id, filters, clock()))

    @get(
        "/v1/audit",
        guards=[requires("audit:read")],
        summary="Read the audit log of your tenant: entries about it or by its keys.",
        description=_DESCRIPTION,
    )
    async def own_audit(
        request: Request[Any, Any, Any],
        actor: Annotated[str | None, QueryParameter(name="actor", required=False)] = None,
        action: Annotated[str | None, QueryParameter(name="action", required=False)] = None,
        result: Annotated[str | None, QueryParameter(name="result", required=False)] = None,
        from_: Annotated[str | None, QueryParameter(name="from", required=False)] = None,
        to: Annotated[str | None, QueryParameter(name="to", required=False)] = None,
        limit: Annotated[str | None, QueryParameter(name="limit", required=False)] = None,
        cursor: Annotated[str | None, QueryParameter(name="cursor", required=False)] = None,
    ) -> AuditPage:
        refuse_unknown_parameters(request.query_params, _OWN_PARAMETERS)
        filters = _Filters(actor=actor, action=action, result=result, from_=from_, to=to, limit=limit, cursor=cursor)
        return await page(_audit_query(principal_of(request).tenant_id, filters, clock()))

    return [admin_audit, own_audit]
