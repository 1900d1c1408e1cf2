"""`/v1/oncall/schedules/{schedule_id}/overrides`: person X covers `[start, end)` on a schedule (scopes
`oncall:read`, `oncall:write`).

Guarantees:
- `start` and `end` are RFC 3339 instants with an offset; `end` after `start` (at most `MAX_OVERRIDE_DAYS`
  days) and `person_id` one of the tenant's people, else a 422 naming the field;
- overrides sit above every layer; where several overlap, the one created last wins (docs/oncall.md);
- a schedule has at most `MAX_OVERRIDES_PER_SCHEDULE` overrides (409 `too_many_overrides` beyond);
- another tenant's schedule or override answers 404; every write is in the audit log.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post
from litestar.params import FromPath
from msgspec import Meta

from mintlog.errors import BadRequest, NotFound
from mintlog.http.guards import principal_of, requires
from mintlog.ports.oncall_store import OnCallStore, Override
from mintlog.roles.api.common.auditing import AuditedWrite, audit_target
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
from mintlog.roles.api.common.resource import Resource, operation
from mintlog.roles.api.common.wire import (
    FromParameter,
    ToParameter,
    decode_body,
    invalid_field,
    read_body,
    time_parameter,
)

__all__ = ["MAX_OVERRIDES_PER_SCHEDULE", "MAX_OVERRIDE_DAYS", "OverrideCreate", "Overrides"]

MAX_OVERRIDES_PER_SCHEDULE = 5000
MAX_OVERRIDE_DAYS = 366
_DEFAULT_LIST_WINDOW = timedelta(days=366)


class OverrideCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The body of a create: `person_id` covers `[start, end)`."""

    person_id: Annotated[str, Meta(min_length=1, max_length=40)]
    start: datetime
    end: datetime
    note: Annotated[str, Meta(max_length=500)] = ""


_create_decoder = msgspec.json.Decoder(OverrideCreate)


def _new_override_id() -> str:
    return f"ovr_{secrets.token_hex(8)}"


def _checked(body: OverrideCreate) -> OverrideCreate:
    for name in ("start", "end"):
        value: datetime = getattr(body, name)
        if value.tzinfo is None:
            raise invalid_field(name, f"`{name}` needs an offset (`Z` or `+02:00`)")
    if body.end <= body.start:
        raise invalid_field("end", "`end` must be after `start`")
    if body.end - body.start > timedelta(days=MAX_OVERRIDE_DAYS):
        raise invalid_field("end", f"an override lasts at most {MAX_OVERRIDE_DAYS} days")
    return body


class Overrides(Resource):
    """One schedule's overrides."""

    path = "/v1/oncall/schedules/{schedule_id:str}/overrides"
    opt = audit_target("schedule")
    noun = "override"
    not_found_code = "override_not_found"
    where = " on this schedule"

    @staticmethod
    async def _schedule(oncall: OnCallStore, tenant_id: str, schedule_id: str) -> None:
        if await oncall.get_schedule(tenant_id, schedule_id) is None:
            raise NotFound(f"no schedule {schedule_id!r} in this tenant", code="schedule_not_found")

    @post(
        guards=[requires("oncall:write")],
        status_code=201,
        summary="Add an override: person_id covers [start, end); the latest created wins where overrides overlap.",
        opt=operation(audit="schedule.override_create", body=OverrideCreate, errors=(409, 422)),
    )
    async def create_override(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        oncall: Injected[OnCallStore],
        clock: Injected[Clock],
        schedule_id: FromPath[str],
    ) -> Override:
        tenant_id = principal_of(request).tenant_id
        async with audit.record(target_id=schedule_id) as note:
            await self._schedule(oncall, tenant_id, schedule_id)
            body = _checked(decode_body(await read_body(request.stream()), _create_decoder))
            if await oncall.get_person(tenant_id, body.person_id) is None:
                raise invalid_field("person_id", f"no person {body.person_id!r} in this tenant")
            override = Override(
                id=_new_override_id(),
                tenant_id=tenant_id,
                schedule_id=schedule_id,
                person_id=body.person_id,
                start=body.start,
                end=body.end,
                created_at=clock(),
                note=body.note,
            )
            await oncall.create_override(override, max_per_schedule=MAX_OVERRIDES_PER_SCHEDULE)
            note.detail = {"override_id": override.id, "person_id": body.person_id}
        return override

    @get(
        guards=[requires("oncall:read")],
        summary="List the overrides that meet [from, to) (default: from now, a year on), by start.",
        opt=operation(),
    )
    async def list_overrides(
        self,
        request: Request[Any, Any, Any],
        oncall: Injected[OnCallStore],
        clock: Injected[Clock],
        schedule_id: FromPath[str],
        from_: FromParameter = None,
        to: ToParameter = None,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> Page[Override]:
        refuse_undeclared_parameters(request)
        size, after = parse_limit(limit), decode_time_cursor(cursor)
        now = clock()
        start = time_parameter("from", from_, now) or now
        end = time_parameter("to", to, now) or start + _DEFAULT_LIST_WINDOW
        if start >= end:
            raise BadRequest("`from` must be earlier than `to`", code="invalid_time")
        tenant_id = principal_of(request).tenant_id
        await self._schedule(oncall, tenant_id, schedule_id)
        found = await oncall.overrides_between(
            tenant_id, schedule_id, start=start, end=end, after=after, limit=size + 1
        )
        items = list(found[:size])
        next_cursor = encode_time_cursor(items[-1].start, items[-1].id) if len(found) > size else None
        return Page(items=items, next_cursor=next_cursor)

    @get("/{override_id:str}", guards=[requires("oncall:read")], summary="Get an override.", opt=operation())
    async def get_override(
        self,
        request: Request[Any, Any, Any],
        oncall: Injected[OnCallStore],
        schedule_id: FromPath[str],
        override_id: FromPath[str],
    ) -> Override:
        tenant_id = principal_of(request).tenant_id
        return self.found(await oncall.get_override(tenant_id, schedule_id, override_id), override_id)

    @delete(
        "/{override_id:str}",
        guards=[requires("oncall:write")],
        status_code=204,
        summary="Delete an override.",
        opt=operation(audit="schedule.override_delete"),
    )
    async def delete_override(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        oncall: Injected[OnCallStore],
        schedule_id: FromPath[str],
        override_id: FromPath[str],
    ) -> None:
        async with audit.record(target_id=schedule_id) as note:
            note.detail = {"override_id": override_id}
            if not await oncall.delete_override(principal_of(request).tenant_id, schedule_id, override_id):
                raise self.not_found(override_id)
