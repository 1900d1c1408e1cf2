"""Escalation policy routes under `/v1/oncall/escalation-policies` (scopes `oncall:read`, `oncall:write`).
docs/escalation.md is the reference.

Guarantees:
- a body is checked whole before anything is stored: an unknown member, a bad value, a step without targets,
  or a target that is not one of the tenant's people, schedules or channels is a 422 whose `field` names it
  (`steps[1].targets[0]`);
- `PUT` and `PATCH` merge; a change applies to incidents that start escalating afterwards (a running escalation
  keeps the policy it started with); deleting a policy stops nothing already running;
- `PUT …/default` names the tenant's default policy (`{"policy_id": null}` clears it): an incident whose
  source names no policy escalates by it;
- another tenant's policy answers 404 on every verb; every write is in the audit log, refused ones included.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post, put, route
from litestar.params import FromPath
from msgspec import Meta

from mintlog.domain.escalation import (
    EscalationPolicy,
    PolicySpec,
    PolicyUpdate,
    merge_policy_update,
    new_policy_id,
)
from mintlog.http.guards import principal_of, requires
from mintlog.ports.escalation import EscalationStore
from mintlog.ports.notifications import NotificationStore
from mintlog.ports.oncall import OnCallDirectory
from mintlog.roles.api.common.auditing import AuditedWrite, audit_target
from mintlog.roles.api.common.dependencies import Clock, Injected
from mintlog.roles.api.common.pagination import Cursor, Limit, Page, TimeWindow
from mintlog.roles.api.common.resource import UPDATE_METHODS, Resource, operation
from mintlog.roles.api.common.wire import decode_body, invalid_field, read_body
from mintlog.roles.api.oncall.policy_refs import check_targets
from mintlog.settings import Settings

__all__ = ["DefaultPolicy", "EscalationPolicies", "PolicyView"]

_create_decoder = msgspec.json.Decoder(PolicySpec)
_update_decoder = msgspec.json.Decoder(PolicyUpdate)


class DefaultPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`PUT …/default`: the tenant's default policy (null: none)."""

    policy_id: Annotated[str, Meta(min_length=1, max_length=40)] | None


_default_decoder = msgspec.json.Decoder(DefaultPolicy)


class PolicyView(PolicySpec, frozen=True, kw_only=True):
    """A policy as the API shows it: every member with its effective value, its id, times and default flag."""

    id: str
    tenant_id: str
    is_default: bool
    created_at: datetime
    updated_at: datetime


def _view(policy: EscalationPolicy) -> PolicyView:
    return PolicyView(
        **msgspec.structs.asdict(policy.spec),
        id=policy.id,
        tenant_id=policy.tenant_id,
        is_default=policy.is_default,
        created_at=policy.created_at,
        updated_at=policy.updated_at,
    )


def _detail(spec: PolicySpec) -> dict[str, Any]:
    return {"name": spec.name, "steps": len(spec.steps), "repeat": spec.repeat}


class EscalationPolicies(Resource):
    """`/v1/oncall/escalation-policies`: the tenant's policies (at most
    `MINTLOG_ESCALATION__MAX_POLICIES_PER_TENANT`)."""

    path = "/v1/oncall/escalation-policies"
    opt = audit_target("escalation_policy")
    noun = "escalation policy"
    not_found_code = "escalation_policy_not_found"

    @post(
        guards=[requires("oncall:write")],
        status_code=201,
        summary="Create an escalation policy.",
        description='Body: {"name", "steps": [{"delay_minutes", "targets": [{"type": "person"|"schedule"|"channel", '
        '"id"}], "round_robin"}], optional "description", "repeat" (0-10), "ack_timeout_minutes"}. '
        "See docs/escalation.md.",
        opt=operation(audit="escalation_policy.create", body=PolicySpec, errors=(409, 422)),
    )
    async def create_policy(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        escalation: Injected[EscalationStore],
        notifications: Injected[NotificationStore],
        oncall_directory: Injected[OnCallDirectory | None],
        settings: Injected[Settings],
        clock: Injected[Clock],
    ) -> PolicyView:
        tenant_id = principal_of(request).tenant_id
        async with audit.record() as note:
            spec = decode_body(await read_body(request.stream()), _create_decoder)
            await check_targets(spec, tenant_id, oncall_directory, notifications)
            now = clock()
            policy = EscalationPolicy(
                id=new_policy_id(), tenant_id=tenant_id, spec=spec, is_default=False, created_at=now, updated_at=now
            )
            await escalation.create_policy(policy, max_per_tenant=settings.escalation.max_policies_per_tenant)
            note.target_id = policy.id
            note.detail = _detail(spec)
        return _view(policy)

    @get(guards=[requires("oncall:read")], summary="List escalation policies, oldest first.", opt=operation())
    async def list_policies(
        self,
        request: Request[Any, Any, Any],
        escalation: Injected[EscalationStore],
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> Page[PolicyView]:
        window = TimeWindow.of(request, limit, cursor)
        found = await escalation.list_policies(principal_of(request).tenant_id, after=window.after, limit=window.fetch)
        return window.page(found, _view)

    @get(
        "/default",
        guards=[requires("oncall:read")],
        summary="The tenant's default escalation policy (404 when none is set).",
        opt=operation(errors=(404,)),
    )
    async def get_default(self, request: Request[Any, Any, Any], escalation: Injected[EscalationStore]) -> PolicyView:
        return _view(self.found(await escalation.default_policy(principal_of(request).tenant_id), "default"))

    @put(
        "/default",
        guards=[requires("oncall:write")],
        status_code=200,
        summary="Set (or clear, with null) the tenant's default escalation policy.",
        description='Body: {"policy_id": "esp_…"} or {"policy_id": null}. Answers {"policy_id": …}.',
        opt=operation(audit="escalation_policy.default", body=DefaultPolicy, errors=(422,)),
    )
    async def set_default(
        self, request: Request[Any, Any, Any], audit: Injected[AuditedWrite], escalation: Injected[EscalationStore]
    ) -> DefaultPolicy:
        tenant_id = principal_of(request).tenant_id
        async with audit.record() as note:
            body = decode_body(await read_body(request.stream()), _default_decoder)
            chosen = await escalation.set_default_policy(tenant_id, body.policy_id)
            if body.policy_id is not None and chosen is None:
                raise invalid_field("policy_id", f"`policy_id`: no escalation policy {body.policy_id!r}")
            note.target_id = body.policy_id
        return body

    @get(
        "/{policy_id:str}",
        guards=[requires("oncall:read")],
        summary="Get an escalation policy.",
        opt=operation(),
    )
    async def get_policy(
        self, request: Request[Any, Any, Any], escalation: Injected[EscalationStore], policy_id: FromPath[str]
    ) -> PolicyView:
        return _view(self.found(await escalation.get_policy(principal_of(request).tenant_id, policy_id), policy_id))

    @route(
        "/{policy_id:str}",
        http_method=UPDATE_METHODS,
        guards=[requires("oncall:write")],
        status_code=200,
        summary="Update an escalation policy: the members given replace the policy's, the others are kept.",
        description="PUT and PATCH are the same. Escalations already running keep the policy they started with.",
        opt=operation(audit="escalation_policy.update", body=PolicyUpdate, errors=(422,)),
    )
    async def update_policy(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        escalation: Injected[EscalationStore],
        notifications: Injected[NotificationStore],
        oncall_directory: Injected[OnCallDirectory | None],
        clock: Injected[Clock],
        policy_id: FromPath[str],
    ) -> PolicyView:
        tenant_id = principal_of(request).tenant_id
        async with audit.record(target_id=policy_id) as note:
            update = decode_body(await read_body(request.stream()), _update_decoder)
            current = self.found(await escalation.get_policy(tenant_id, policy_id), policy_id)
            spec = merge_policy_update(current.spec, update)
            await check_targets(spec, tenant_id, oncall_directory, notifications)
            replaced = self.found(
                await escalation.replace_policy(tenant_id, policy_id, spec, updated_at=clock()), policy_id
            )
            note.detail = _detail(spec)
        return _view(replaced)

    @delete(
        "/{policy_id:str}",
        guards=[requires("oncall:write")],
        status_code=204,
        summary="Delete an escalation policy. Escalations already running go on.",
        opt=operation(audit="escalation_policy.delete"),
    )
    async def delete_policy(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        escalation: Injected[EscalationStore],
        policy_id: FromPath[str],
    ) -> None:
        async with audit.record(target_id=policy_id):
            if not await escalation.delete_policy(principal_of(request).tenant_id, policy_id):
                raise self.not_found(policy_id)
