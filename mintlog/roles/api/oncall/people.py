"""`/v1/oncall/people`: the tenant's on-call people (scopes `oncall:read`, `oncall:write`).

Guarantees:
- a body is checked whole before anything is stored: a bad member, an unknown time zone, a rule naming a
  contact method the person does not have, or a webhook URL the egress policy refuses (`MINTLOG_EGRESS_ALLOW`,
  checked as channels' URLs are) is a 422 whose `field` names it;
- a tenant has at most `MAX_PEOPLE_PER_TENANT` people (409 `too_many_people` beyond);
- a person a schedule still names (in a layer or an override) cannot be deleted: 409 `person_in_use` with the
  schedules' ids in `schedules`;
- another tenant's person answers 404 on every verb; every write is in the audit log, refused ones included.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, delete, get, post, route
from litestar.params import FromPath

from mintlog.domain.egress import EgressRefused
from mintlog.domain.oncall_people import Person
from mintlog.domain.oncall_person_specs import (
    PersonSpec,
    PersonUpdate,
    build_person,
    merge_person_update,
    new_person_id,
    validate_person,
    webhook_addresses,
)
from mintlog.http.guards import principal_of, requires
from mintlog.ports.oncall_store import OnCallStore
from mintlog.ports.outbound import OutboundHttp
from mintlog.roles.api.common.auditing import AuditedWrite, audit_target
from mintlog.roles.api.common.dependencies import Clock, Injected
from mintlog.roles.api.common.pagination import Cursor, Limit, Page, TimeWindow
from mintlog.roles.api.common.resource import UPDATE_METHODS, Resource, operation
from mintlog.roles.api.common.wire import decode_body, invalid_field, read_body

__all__ = ["MAX_PEOPLE_PER_TENANT", "People"]

MAX_PEOPLE_PER_TENANT = 1000
_create_decoder = msgspec.json.Decoder(PersonSpec)
_update_decoder = msgspec.json.Decoder(PersonUpdate)


async def _checked(spec: PersonSpec, outbound: OutboundHttp) -> PersonSpec:
    """The validated spec (contact method ids filled in) whose webhook URLs pass the egress policy."""
    spec = validate_person(spec)
    for field, url in webhook_addresses(spec):
        try:
            await outbound.check_target(url)
        except EgressRefused as exc:
            raise invalid_field(field, f"`{field}` is refused: {exc.reason}") from None
    return spec


def _audit_detail(spec: PersonSpec) -> dict[str, Any]:
    return {"name": spec.name, "contact_methods": [method.type for method in spec.contact_methods]}


class People(Resource):
    """`/v1/oncall/people`: who can be on call, how to reach them and when."""

    path = "/v1/oncall/people"
    opt = audit_target("person")
    noun = "person"
    not_found_code = "person_not_found"
    where = " in this tenant"

    @post(
        guards=[requires("oncall:write")],
        status_code=201,
        summary="Create an on-call person.",
        description=(
            'Body: {"name", "email", optional "time_zone" (IANA, default UTC), "contact_methods": [{"type": '
            '"email"|"webhook"|"chat_webhook", "address", "id", "label"}], "notification_rules": [{"after_minutes", '
            '"contact_method_id"}]}. Every person has the contact method `email`. See docs/oncall.md.'
        ),
        opt=operation(audit="person.create", body=PersonSpec, errors=(409, 422)),
    )
    async def create_person(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        oncall: Injected[OnCallStore],
        outbound: Injected[OutboundHttp],
        clock: Injected[Clock],
    ) -> Person:
        principal = principal_of(request)
        async with audit.record() as note:
            spec = await _checked(decode_body(await read_body(request.stream()), _create_decoder), outbound)
            now = clock()
            person = build_person(new_person_id(), principal.tenant_id, spec, created_at=now, now=now)
            await oncall.create_person(person, max_per_tenant=MAX_PEOPLE_PER_TENANT)
            note.target_id = person.id
            note.detail = _audit_detail(spec)
        return person

    @get(guards=[requires("oncall:read")], summary="List on-call people, oldest first.", opt=operation())
    async def list_people(
        self,
        request: Request[Any, Any, Any],
        oncall: Injected[OnCallStore],
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> Page[Person]:
        window = TimeWindow.of(request, limit, cursor)
        found = await oncall.list_people(principal_of(request).tenant_id, after=window.after, limit=window.fetch)
        return window.page(found, lambda person: person)

    @get("/{person_id:str}", guards=[requires("oncall:read")], summary="Get an on-call person.", opt=operation())
    async def get_person(
        self, request: Request[Any, Any, Any], oncall: Injected[OnCallStore], person_id: FromPath[str]
    ) -> Person:
        return self.found(await oncall.get_person(principal_of(request).tenant_id, person_id), person_id)

    @route(
        "/{person_id:str}",
        http_method=UPDATE_METHODS,
        guards=[requires("oncall:write")],
        status_code=200,
        summary="Update a person: the members given replace the person's, the others are kept.",
        description="PUT and PATCH are the same. `contact_methods` and `notification_rules` are replaced whole.",
        opt=operation(audit="person.update", body=PersonUpdate, errors=(422,)),
    )
    async def update_person(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        oncall: Injected[OnCallStore],
        outbound: Injected[OutboundHttp],
        clock: Injected[Clock],
        person_id: FromPath[str],
    ) -> Person:
        tenant_id = principal_of(request).tenant_id
        async with audit.record(target_id=person_id) as note:
            update = decode_body(await read_body(request.stream()), _update_decoder)
            current = self.found(await oncall.get_person(tenant_id, person_id), person_id)
            spec = await _checked(merge_person_update(current, update), outbound)
            person = build_person(person_id, tenant_id, spec, created_at=current.created_at, now=clock())
            replaced = self.found(await oncall.replace_person(person), person_id)
            note.detail = {
                "changed": sorted(
                    name for name in update.__struct_fields__ if getattr(update, name) is not msgspec.UNSET
                )
            }
        return replaced

    @delete(
        "/{person_id:str}",
        guards=[requires("oncall:write")],
        status_code=204,
        summary="Delete a person; 409 while a schedule's layer or override names them.",
        opt=operation(audit="person.delete", errors=(409,)),
    )
    async def delete_person(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        oncall: Injected[OnCallStore],
        person_id: FromPath[str],
    ) -> None:
        async with audit.record(target_id=person_id):
            if not await oncall.delete_person(principal_of(request).tenant_id, person_id):
                raise self.not_found(person_id)
