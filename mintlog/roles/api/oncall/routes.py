"""The tenant's routing under `/v1/oncall/routes` (scopes `oncall:read`, `oncall:write`): the ordered routes from
an incident's severity and labels to an escalation policy (`mintlog.domain.oncall_routes`). docs/escalation.md
is the reference.

Guarantees:
- `PUT` replaces the whole ordered list, checked whole before anything is stored: an unknown member, a bad
  value, a route without any condition, a pattern that does not compile or backtracks catastrophically, or a
  `policy_id` that is not one of the tenant's policies (another tenant's is refused like a missing one) is a 422
  whose `field` names it (`routes[1].policy_id`, `routes[0].label_patterns.service`);
- a change applies to incidents triggered afterwards; every write is in the audit log, refused ones included.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Request, get, put

from mintlog.domain.oncall_routes import RouteError, RouteSpec, RoutingSpec, RoutingTable, compile_routes
from mintlog.http.guards import principal_of, requires
from mintlog.ports.escalation import EscalationStore
from mintlog.roles.api.common.auditing import AuditedWrite, audit_target
from mintlog.roles.api.common.dependencies import Clock, Injected
from mintlog.roles.api.common.resource import Resource, operation
from mintlog.roles.api.common.wire import decode_body, invalid_field, read_body

__all__ = ["Routes", "RoutesView"]

_decoder = msgspec.json.Decoder(RoutingSpec)


class RoutesView(msgspec.Struct, frozen=True, kw_only=True):
    """The tenant's routes, in order (`updated_at` null: never set)."""

    routes: list[RouteSpec]
    updated_at: datetime | None = None


async def _check(spec: RoutingSpec, tenant_id: str, escalation: EscalationStore) -> None:
    try:
        compile_routes(spec.routes)
    except RouteError as exc:
        raise invalid_field(exc.field, f"`{exc.field}`: {exc.detail}") from None
    for index, route in enumerate(spec.routes):
        if await escalation.get_policy(tenant_id, route.policy_id) is None:
            field = f"routes[{index}].policy_id"
            raise invalid_field(field, f"`{field}`: no escalation policy {route.policy_id!r}")


class Routes(Resource):
    """`/v1/oncall/routes`: one object per tenant, read and replaced whole."""

    path = "/v1/oncall/routes"
    opt = audit_target("oncall_routes")
    noun = "routes"
    not_found_code = "routes_not_found"

    @get(
        guards=[requires("oncall:read")],
        summary="The tenant's routes from incident severity and labels to escalation policies, in order.",
        description="An incident escalates by the policy its source names, else the first route matching it, "
        "else the tenant's default policy. See docs/escalation.md.",
        opt=operation(),
    )
    async def get_routes(self, request: Request[Any, Any, Any], escalation: Injected[EscalationStore]) -> RoutesView:
        table = await escalation.get_routes(principal_of(request).tenant_id)
        return RoutesView(routes=[]) if table is None else RoutesView(routes=table.routes, updated_at=table.updated_at)

    @put(
        guards=[requires("oncall:write")],
        status_code=200,
        summary="Replace the tenant's routes (the whole ordered list; [] removes them all).",
        description='Body: {"routes": [{"policy_id", "name", "severities": ["critical", …], "labels": {"team": '
        '"db"}, "label_patterns": {"service": "pay.*"}}]}: a route needs at least one condition; all of its '
        "conditions must hold; patterns match the whole label value. See docs/escalation.md.",
        opt=operation(audit="oncall_routes.replace", body=RoutingSpec, errors=(409, 422)),
    )
    async def replace_routes(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        escalation: Injected[EscalationStore],
        clock: Injected[Clock],
    ) -> RoutesView:
        tenant_id = principal_of(request).tenant_id
        async with audit.record(target_id=tenant_id) as note:
            spec = decode_body(await read_body(request.stream()), _decoder)
            await _check(spec, tenant_id, escalation)
            table = RoutingTable(tenant_id=tenant_id, routes=spec.routes, updated_at=clock())
            await escalation.replace_routes(table)
            note.detail = {"routes": len(spec.routes)}
        return RoutesView(routes=table.routes, updated_at=table.updated_at)
