"""`/v1/oncall/schedules`: the tenant's schedules, their final shifts, who is on call, and their feed tokens
(scopes `oncall:read`, `oncall:write`).

Guarantees:
- a body is checked whole before anything is stored: an unknown time zone, an empty rotation, a participant
  who is not one of the tenant's people (`layers[0].participants[1]`), a turn length of 0 or less, a restriction
  whose end equals its start is a 422 whose `field` names it;
- a tenant has at most `MAX_SCHEDULES_PER_TENANT` schedules (409 `too_many_schedules` beyond);
- `GET …/shifts` renders at most `MAX_SHIFTS_DAYS` days (422 with `field` `to` beyond);
- a feed token is shown once, by the `POST …/ical-token` that mints it; minting another or `DELETE …/ical-token`
  stops the previous one at once;
- another tenant's schedule answers 404 on every verb; every write is in the audit log, refused ones included.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post, route
from litestar.params import FromPath, QueryParameter
from msgspec import UNSET, Meta, UnsetType

from mintlog.domain.oncall_ical import ical_token_hash, new_ical_token
from mintlog.domain.oncall_people import Person
from mintlog.domain.oncall_schedule import MAX_LAYERS, Layer, ScheduleSpec, Shift, render_shifts, validate_schedule
from mintlog.errors import BadRequest
from mintlog.http.guards import principal_of, requires
from mintlog.ports.oncall_store import OnCallStore, Schedule
from mintlog.roles.api.common.auditing import AuditedWrite, audit_target
from mintlog.roles.api.common.dependencies import Clock, Injected
from mintlog.roles.api.common.pagination import Cursor, Limit, Page, TimeWindow, refuse_undeclared_parameters
from mintlog.roles.api.common.resource import UPDATE_METHODS, Resource, operation
from mintlog.roles.api.common.wire import (
    FromParameter,
    TimeExpression,
    ToParameter,
    decode_body,
    invalid_field,
    read_body,
    time_parameter,
)

__all__ = [
    "MAX_SCHEDULES_PER_TENANT",
    "MAX_SHIFTS_DAYS",
    "OnCallView",
    "ScheduleView",
    "Schedules",
    "ShiftView",
    "ShiftsView",
    "schedule_shifts",
]

MAX_SCHEDULES_PER_TENANT = 200
MAX_SHIFTS_DAYS = 90
_DEFAULT_SHIFTS_WINDOW = timedelta(days=7)
_create_decoder = msgspec.json.Decoder(ScheduleSpec)

AtParameter = Annotated[
    TimeExpression | None, QueryParameter(name="at", required=False, description="The instant (default: now).")
]


class ScheduleUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A `PUT`/`PATCH` body: the members given replace the schedule's (`layers` whole), the others are kept."""

    name: Annotated[str, Meta(min_length=1, max_length=200)] | UnsetType = UNSET
    time_zone: Annotated[str, Meta(min_length=1, max_length=64)] | UnsetType = UNSET
    layers: Annotated[list[Layer], Meta(max_length=MAX_LAYERS)] | UnsetType = UNSET
    description: Annotated[str, Meta(max_length=2000)] | UnsetType = UNSET


_update_decoder = msgspec.json.Decoder(ScheduleUpdate)


class ScheduleView(ScheduleSpec, frozen=True, kw_only=True):
    """A schedule as the API shows it: its spec, id, times, and whether a calendar feed token is live."""

    id: str
    tenant_id: str
    created_at: datetime
    updated_at: datetime
    ical_feed: bool


class ShiftView(msgspec.Struct, frozen=True, kw_only=True):
    """`person_id` (`person_name`) is on call in `[start, end)`."""

    person_id: str
    person_name: str
    start: datetime
    end: datetime

    def as_shift(self) -> Shift:
        return Shift(person_id=self.person_id, start=self.start, end=self.end)


class ShiftsView(msgspec.Struct, frozen=True, kw_only=True):
    """The final shifts of `[from, to)`, in order; times nobody is on call are gaps between them."""

    schedule_id: str
    time_zone: str
    from_: datetime = msgspec.field(name="from")
    to: datetime
    shifts: list[ShiftView]


class OnCallView(msgspec.Struct, frozen=True, kw_only=True):
    """Who is on call on the schedule at `at` (empty: nobody)."""

    schedule_id: str
    at: datetime
    people: list[Person]


class IcalTokenView(msgspec.Struct, frozen=True, kw_only=True):
    """A new feed token, shown this once, and the path of the feed it opens (no API key needed)."""

    token: str
    path: str
    created_at: datetime


def _view(schedule: Schedule) -> ScheduleView:
    return ScheduleView(
        **msgspec.structs.asdict(schedule.spec),
        id=schedule.id,
        tenant_id=schedule.tenant_id,
        created_at=schedule.created_at,
        updated_at=schedule.updated_at,
        ical_feed=schedule.ical_token_at is not None,
    )


def _new_schedule_id() -> str:
    return f"sch_{secrets.token_hex(8)}"


async def _checked(spec: ScheduleSpec, tenant_id: str, oncall: OnCallStore) -> ScheduleSpec:
    participants = sorted({person_id for layer in spec.layers for person_id in layer.participants})
    known = await oncall.people(tenant_id, participants)
    validate_schedule(spec, known.keys())
    return spec


async def schedule_shifts(oncall: OnCallStore, schedule: Schedule, start: datetime, end: datetime) -> list[ShiftView]:
    """The final shifts of `schedule` in `[start, end)`, with the names of their people."""
    overrides = await oncall.overrides_between(schedule.tenant_id, schedule.id, start=start, end=end)
    shifts = render_shifts(schedule.spec, [override.span() for override in overrides], start, end)
    people = await oncall.people(schedule.tenant_id, sorted({shift.person_id for shift in shifts}))
    return [
        ShiftView(
            person_id=shift.person_id,
            person_name=people[shift.person_id].name if shift.person_id in people else "",
            start=shift.start,
            end=shift.end,
        )
        for shift in shifts
    ]


class Schedules(Resource):
    """`/v1/oncall/schedules`: layers of rotations with restrictions, their shifts and who is on call."""

    path = "/v1/oncall/schedules"
    opt = audit_target("schedule")
    noun = "schedule"
    not_found_code = "schedule_not_found"
    where = " in this tenant"

    @post(
        guards=[requires("oncall:write")],
        status_code=201,
        summary="Create a schedule.",
        description=(
            'Body: {"name", "time_zone", "layers": [{"participants": [person ids], "turn": "hourly"|"daily"|'
            '"weekly"|"custom", "turn_seconds" (custom), "rotation_start": local date-time, "restrictions": '
            '[{"start": "HH:MM", "end": "HH:MM", "days": ["mon", …]}], "name"}], "description"}. Later layers are '
            "higher and win where they have someone. See docs/oncall.md."
        ),
        opt=operation(audit="schedule.create", body=ScheduleSpec, errors=(409, 422)),
    )
    async def create_schedule(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        oncall: Injected[OnCallStore],
        clock: Injected[Clock],
    ) -> ScheduleView:
        tenant_id = principal_of(request).tenant_id
        async with audit.record() as note:
            spec = await _checked(decode_body(await read_body(request.stream()), _create_decoder), tenant_id, oncall)
            now = clock()
            schedule = Schedule(id=_new_schedule_id(), tenant_id=tenant_id, spec=spec, created_at=now, updated_at=now)
            await oncall.create_schedule(schedule, max_per_tenant=MAX_SCHEDULES_PER_TENANT)
            note.target_id = schedule.id
            note.detail = {"name": spec.name, "layers": len(spec.layers)}
        return _view(schedule)

    @get(guards=[requires("oncall:read")], summary="List schedules, oldest first.", opt=operation())
    async def list_schedules(
        self,
        request: Request[Any, Any, Any],
        oncall: Injected[OnCallStore],
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> Page[ScheduleView]:
        window = TimeWindow.of(request, limit, cursor)
        found = await oncall.list_schedules(principal_of(request).tenant_id, after=window.after, limit=window.fetch)
        return window.page(found, _view)

    @get("/{schedule_id:str}", guards=[requires("oncall:read")], summary="Get a schedule.", opt=operation())
    async def get_schedule(
        self, request: Request[Any, Any, Any], oncall: Injected[OnCallStore], schedule_id: FromPath[str]
    ) -> ScheduleView:
        return _view(self.found(await oncall.get_schedule(principal_of(request).tenant_id, schedule_id), schedule_id))

    @route(
        "/{schedule_id:str}",
        http_method=UPDATE_METHODS,
        guards=[requires("oncall:write")],
        status_code=200,
        summary="Update a schedule: the members given replace the schedule's (`layers` whole).",
        description="PUT and PATCH are the same. Overrides and the feed token are kept.",
        opt=operation(audit="schedule.update", body=ScheduleUpdate, errors=(409, 422)),
    )
    async def update_schedule(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        oncall: Injected[OnCallStore],
        clock: Injected[Clock],
        schedule_id: FromPath[str],
    ) -> ScheduleView:
        tenant_id = principal_of(request).tenant_id
        async with audit.record(target_id=schedule_id) as note:
            update = decode_body(await read_body(request.stream()), _update_decoder)
            current = self.found(await oncall.get_schedule(tenant_id, schedule_id), schedule_id)
            changes = {
                name: value for name in update.__struct_fields__ if (value := getattr(update, name)) is not UNSET
            }
            spec = await _checked(msgspec.structs.replace(current.spec, **changes), tenant_id, oncall)
            replaced = msgspec.structs.replace(current, spec=spec, updated_at=clock())
            stored = self.found(await oncall.replace_schedule(replaced), schedule_id)
            note.detail = {"changed": sorted(changes)}
        return _view(stored)

    @delete(
        "/{schedule_id:str}",
        guards=[requires("oncall:write")],
        status_code=204,
        summary="Delete a schedule, its overrides and its calendar feed.",
        opt=operation(audit="schedule.delete"),
    )
    async def delete_schedule(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        oncall: Injected[OnCallStore],
        schedule_id: FromPath[str],
    ) -> None:
        async with audit.record(target_id=schedule_id):
            if not await oncall.delete_schedule(principal_of(request).tenant_id, schedule_id):
                raise self.not_found(schedule_id)

    @get(
        "/{schedule_id:str}/shifts",
        guards=[requires("oncall:read")],
        summary=f"The final shifts in [from, to) (default: the next 7 days; at most {MAX_SHIFTS_DAYS} days).",
        description="Layers, restrictions and overrides applied; adjacent shifts of one person merged.",
        opt=operation(errors=(422,)),
    )
    async def list_shifts(
        self,
        request: Request[Any, Any, Any],
        oncall: Injected[OnCallStore],
        clock: Injected[Clock],
        schedule_id: FromPath[str],
        from_: FromParameter = None,
        to: ToParameter = None,
    ) -> ShiftsView:
        refuse_undeclared_parameters(request)
        now = clock()
        start = time_parameter("from", from_, now) or now
        end = time_parameter("to", to, now) or start + _DEFAULT_SHIFTS_WINDOW
        if start >= end:
            raise BadRequest("`from` must be earlier than `to`", code="invalid_time")
        if end - start > timedelta(days=MAX_SHIFTS_DAYS):
            raise invalid_field("to", f"shifts are rendered for at most {MAX_SHIFTS_DAYS} days at a time")
        schedule = self.found(await oncall.get_schedule(principal_of(request).tenant_id, schedule_id), schedule_id)
        return ShiftsView(
            schedule_id=schedule.id,
            time_zone=schedule.spec.time_zone,
            from_=start,
            to=end,
            shifts=await schedule_shifts(oncall, schedule, start, end),
        )

    @get(
        "/{schedule_id:str}/on-call",
        guards=[requires("oncall:read")],
        summary="Who is on call at `at` (default: now).",
        opt=operation(),
    )
    async def on_call(
        self,
        request: Request[Any, Any, Any],
        oncall: Injected[OnCallStore],
        clock: Injected[Clock],
        schedule_id: FromPath[str],
        at: AtParameter = None,
    ) -> OnCallView:
        refuse_undeclared_parameters(request)
        instant = time_parameter("at", at, clock()) or clock()
        tenant_id = principal_of(request).tenant_id
        self.found(await oncall.get_schedule(tenant_id, schedule_id), schedule_id)
        people = await oncall.people_on_call(tenant_id, schedule_id, instant)
        return OnCallView(schedule_id=schedule_id, at=instant, people=list(people))

    @post(
        "/{schedule_id:str}/ical-token",
        guards=[requires("oncall:write")],
        status_code=201,
        summary="Mint the schedule's calendar feed token (shown once); the previous token stops working.",
        opt=operation(audit="schedule.ical_token_create"),
    )
    async def create_ical_token(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        oncall: Injected[OnCallStore],
        clock: Injected[Clock],
        schedule_id: FromPath[str],
    ) -> IcalTokenView:
        token, now = new_ical_token(), clock()
        async with audit.record(target_id=schedule_id):
            if not await oncall.set_ical_token(
                principal_of(request).tenant_id, schedule_id, ical_token_hash(token), now
            ):
                raise self.not_found(schedule_id)
        return IcalTokenView(token=token, path=f"/v1/oncall/ical/{token}.ics", created_at=now)

    @delete(
        "/{schedule_id:str}/ical-token",
        guards=[requires("oncall:write")],
        status_code=204,
        summary="Revoke the schedule's calendar feed token: its feed answers 404 at once.",
        opt=operation(audit="schedule.ical_token_delete"),
    )
    async def delete_ical_token(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        oncall: Injected[OnCallStore],
        clock: Injected[Clock],
        schedule_id: FromPath[str],
    ) -> None:
        async with audit.record(target_id=schedule_id):
            if not await oncall.set_ical_token(principal_of(request).tenant_id, schedule_id, None, clock()):
                raise self.not_found(schedule_id)
