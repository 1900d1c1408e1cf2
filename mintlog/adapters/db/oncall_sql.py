"""`SqlOnCallStore`: on-call people, schedules, overrides and feed tokens in the metadata database, and the
`OnCallDirectory` the escalation engine reads (SQLite or PostgreSQL).

A schedule's participants are rows of `oncall_schedule_people`, written in the schedule's transaction with a
foreign key to the person; overrides reference their person the same way. So a person named by a schedule
cannot be deleted (the delete answers 409 with the schedules), even by a delete racing a schedule's write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import msgspec
from sqlalchemy import (
    CursorResult,
    String,
    Text,
    and_,
    bindparam,
    case,
    delete,
    func,
    null,
    or_,
    select,
    union,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from mintlog.adapters.db.models import TenantRow, UtcDateTime
from mintlog.adapters.db.models_oncall import OverrideRow, PersonRow, ScheduleMemberRow, ScheduleRow
from mintlog.adapters.db.sql import SqlMetadataStore, database_errors
from mintlog.domain.oncall_people import ContactMethod, NotificationRule, Person
from mintlog.domain.oncall_schedule import OverrideSpan, ScheduleSpec, on_call_at
from mintlog.errors import Conflict
from mintlog.ports.oncall_store import Override, Schedule

__all__ = ["SqlOnCallStore"]


class _PersonDocument(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    email: str
    time_zone: str
    contact_methods: list[ContactMethod]
    notification_rules: list[NotificationRule]


def _person_row(row: PersonRow) -> Person:
    document = msgspec.convert(row.document, _PersonDocument)
    return _person(row.id, row.tenant_id, document, row.created_at, row.updated_at)


def _person(
    person_id: str, tenant_id: str, document: _PersonDocument, created_at: datetime, updated_at: datetime
) -> Person:
    return Person(
        id=person_id,
        tenant_id=tenant_id,
        name=document.name,
        email=document.email,
        time_zone=document.time_zone,
        contact_methods=document.contact_methods,
        notification_rules=document.notification_rules,
        created_at=created_at,
        updated_at=updated_at,
    )


def _person_document(person: Person) -> dict[str, Any]:
    document = _PersonDocument(
        name=person.name,
        email=person.email,
        time_zone=person.time_zone,
        contact_methods=person.contact_methods,
        notification_rules=person.notification_rules,
    )
    return cast("dict[str, Any]", msgspec.to_builtins(document))


def _schedule(row: ScheduleRow) -> Schedule:
    return Schedule(
        id=row.id,
        tenant_id=row.tenant_id,
        spec=msgspec.convert(row.spec, ScheduleSpec),
        created_at=row.created_at,
        updated_at=row.updated_at,
        ical_token_at=row.ical_token_at,
    )


def _override(row: OverrideRow) -> Override:
    return Override(
        id=row.id,
        tenant_id=row.tenant_id,
        schedule_id=row.schedule_id,
        person_id=row.person_id,
        start=row.starts_at,
        end=row.ends_at,
        created_at=row.created_at,
        note=row.note,
    )


def _rowcount(result: object) -> int:
    return cast("CursorResult[Any]", result).rowcount


def _participants(spec: ScheduleSpec) -> set[str]:
    return {person_id for layer in spec.layers for person_id in layer.participants}


def _after(created_column: Any, id_column: Any, after: tuple[datetime, str] | None) -> Any:
    if after is None:
        return True
    created_at, object_id = after
    return or_(created_column > created_at, and_(created_column == created_at, id_column > object_id))


_INSTANT = timedelta(microseconds=1)
_MISSING_PERSON = ("a person this schedule names was deleted meanwhile; send it again", "person_not_found")


class SqlOnCallStore:
    """`OnCallStore` (and `OnCallDirectory`) on the tables of `models_oncall`, sharing the metadata store's
    engine."""

    def __init__(self, metadata: SqlMetadataStore) -> None:
        self._metadata = metadata

    # People

    async def create_person(self, person: Person, *, max_per_tenant: int) -> Person:
        row = PersonRow(
            id=person.id,
            tenant_id=person.tenant_id,
            document=_person_document(person),
            created_at=person.created_at,
            updated_at=person.updated_at,
        )
        count = select(func.count()).select_from(PersonRow).where(PersonRow.tenant_id == person.tenant_id)
        with database_errors((f"person {person.id!r} already exists", "person_exists")):
            async with self._metadata.session() as session, session.begin():
                if (await session.execute(count)).scalar_one() >= max_per_tenant:
                    raise Conflict(
                        f"this tenant already has {max_per_tenant} people, the most it may have; delete one first",
                        code="too_many_people",
                    )
                session.add(row)
        return person

    async def get_person(self, tenant_id: str, person_id: str) -> Person | None:
        found = await self.people(tenant_id, [person_id])
        return found.get(person_id)

    async def list_people(
        self, tenant_id: str, *, after: tuple[datetime, str] | None = None, limit: int = 50
    ) -> Sequence[Person]:
        statement = (
            select(PersonRow)
            .where(PersonRow.tenant_id == tenant_id, _after(PersonRow.created_at, PersonRow.id, after))
            .order_by(PersonRow.created_at, PersonRow.id)
            .limit(limit)
        )
        with database_errors():
            async with self._metadata.session() as session:
                rows = (await session.execute(statement)).scalars().all()
        return [_person_row(row) for row in rows]

    async def people(self, tenant_id: str, person_ids: Sequence[str]) -> Mapping[str, Person]:
        if not person_ids:
            return {}
        statement = select(PersonRow).where(PersonRow.tenant_id == tenant_id, PersonRow.id.in_(set(person_ids)))
        with database_errors():
            async with self._metadata.session() as session:
                rows = (await session.execute(statement)).scalars().all()
        return {row.id: _person_row(row) for row in rows}

    async def replace_person(self, person: Person) -> Person | None:
        statement = (
            update(PersonRow)
            .where(PersonRow.tenant_id == person.tenant_id, PersonRow.id == person.id)
            .values(document=_person_document(person), updated_at=person.updated_at)
        )
        with database_errors():
            async with self._metadata.session() as session, session.begin():
                if _rowcount(await session.execute(statement)) != 1:
                    return None
        return person

    async def delete_person(self, tenant_id: str, person_id: str) -> bool:
        in_layers = select(ScheduleMemberRow.schedule_id).where(
            ScheduleMemberRow.tenant_id == tenant_id, ScheduleMemberRow.person_id == person_id
        )
        in_overrides = select(OverrideRow.schedule_id).where(
            OverrideRow.tenant_id == tenant_id, OverrideRow.person_id == person_id
        )
        with database_errors(("this person was added to a schedule meanwhile", "person_in_use")):
            async with self._metadata.session() as session, session.begin():
                schedules = set((await session.execute(in_layers)).scalars().all())
                schedules |= set((await session.execute(in_overrides)).scalars().all())
                if schedules:
                    names = sorted(schedules)
                    raise Conflict(
                        f"person {person_id!r} is on call in schedules {', '.join(names)}; remove them from their "
                        "layers and overrides first",
                        code="person_in_use",
                        extra={"schedules": names},
                    )
                result = await session.execute(
                    delete(PersonRow).where(PersonRow.tenant_id == tenant_id, PersonRow.id == person_id)
                )
                return _rowcount(result) == 1

    # Schedules

    async def _write_members(self, session: AsyncSession, schedule: Schedule) -> None:
        await session.execute(delete(ScheduleMemberRow).where(ScheduleMemberRow.schedule_id == schedule.id))
        participants = _participants(schedule.spec)
        known = select(PersonRow.id).where(PersonRow.tenant_id == schedule.tenant_id, PersonRow.id.in_(participants))
        missing = participants - set((await session.execute(known)).scalars().all())
        if missing:
            raise Conflict(
                f"no person {sorted(missing)[0]!r} in this tenant (deleted meanwhile?)", code="person_not_found"
            )
        session.add_all(
            ScheduleMemberRow(schedule_id=schedule.id, person_id=person_id, tenant_id=schedule.tenant_id)
            for person_id in sorted(participants)
        )

    async def create_schedule(self, schedule: Schedule, *, max_per_tenant: int) -> Schedule:
        count = select(func.count()).select_from(ScheduleRow).where(ScheduleRow.tenant_id == schedule.tenant_id)
        with database_errors(_MISSING_PERSON):
            async with self._metadata.session() as session, session.begin():
                if (await session.execute(count)).scalar_one() >= max_per_tenant:
                    raise Conflict(
                        f"this tenant already has {max_per_tenant} schedules, the most it may have; delete one first",
                        code="too_many_schedules",
                    )
                session.add(
                    ScheduleRow(
                        id=schedule.id,
                        tenant_id=schedule.tenant_id,
                        spec=cast("dict[str, Any]", msgspec.to_builtins(schedule.spec)),
                        created_at=schedule.created_at,
                        updated_at=schedule.updated_at,
                    )
                )
                await session.flush()
                await self._write_members(session, schedule)
        return schedule

    async def get_schedule(self, tenant_id: str, schedule_id: str) -> Schedule | None:
        statement = select(ScheduleRow).where(ScheduleRow.tenant_id == tenant_id, ScheduleRow.id == schedule_id)
        with database_errors():
            async with self._metadata.session() as session:
                row = (await session.execute(statement)).scalar_one_or_none()
        return None if row is None else _schedule(row)

    async def list_schedules(
        self, tenant_id: str, *, after: tuple[datetime, str] | None = None, limit: int = 50
    ) -> Sequence[Schedule]:
        statement = (
            select(ScheduleRow)
            .where(ScheduleRow.tenant_id == tenant_id, _after(ScheduleRow.created_at, ScheduleRow.id, after))
            .order_by(ScheduleRow.created_at, ScheduleRow.id)
            .limit(limit)
        )
        with database_errors():
            async with self._metadata.session() as session:
                rows = (await session.execute(statement)).scalars().all()
        return [_schedule(row) for row in rows]

    async def replace_schedule(self, schedule: Schedule) -> Schedule | None:
        statement = (
            update(ScheduleRow)
            .where(ScheduleRow.tenant_id == schedule.tenant_id, ScheduleRow.id == schedule.id)
            .values(spec=cast("dict[str, Any]", msgspec.to_builtins(schedule.spec)), updated_at=schedule.updated_at)
        )
        with database_errors(_MISSING_PERSON):
            async with self._metadata.session() as session, session.begin():
                if _rowcount(await session.execute(statement)) != 1:
                    return None
                await self._write_members(session, schedule)
                row = await session.get(ScheduleRow, schedule.id, populate_existing=True)
                return None if row is None else _schedule(row)

    async def delete_schedule(self, tenant_id: str, schedule_id: str) -> bool:
        owned = and_(ScheduleRow.tenant_id == tenant_id, ScheduleRow.id == schedule_id)
        with database_errors():
            async with self._metadata.session() as session, session.begin():
                if (await session.execute(select(ScheduleRow.id).where(owned))).scalar_one_or_none() is None:
                    return False
                # Explicit, not only ON DELETE CASCADE: the rows go on every dialect and foreign-key setting.
                await session.execute(delete(OverrideRow).where(OverrideRow.schedule_id == schedule_id))
                await session.execute(delete(ScheduleMemberRow).where(ScheduleMemberRow.schedule_id == schedule_id))
                await session.execute(delete(ScheduleRow).where(owned))
                return True

    # Overrides

    async def create_override(self, override: Override, *, max_per_schedule: int) -> Override:
        count = select(func.count()).select_from(OverrideRow).where(OverrideRow.schedule_id == override.schedule_id)
        with database_errors(("the schedule or the person was deleted meanwhile", "override_refused")):
            async with self._metadata.session() as session, session.begin():
                if (await session.execute(count)).scalar_one() >= max_per_schedule:
                    raise Conflict(
                        f"this schedule already has {max_per_schedule} overrides, the most it may have; delete "
                        "past ones first",
                        code="too_many_overrides",
                    )
                session.add(
                    OverrideRow(
                        id=override.id,
                        tenant_id=override.tenant_id,
                        schedule_id=override.schedule_id,
                        person_id=override.person_id,
                        starts_at=override.start,
                        ends_at=override.end,
                        created_at=override.created_at,
                        note=override.note,
                    )
                )
        return override

    async def get_override(self, tenant_id: str, schedule_id: str, override_id: str) -> Override | None:
        statement = select(OverrideRow).where(
            OverrideRow.tenant_id == tenant_id, OverrideRow.schedule_id == schedule_id, OverrideRow.id == override_id
        )
        with database_errors():
            async with self._metadata.session() as session:
                row = (await session.execute(statement)).scalar_one_or_none()
        return None if row is None else _override(row)

    async def delete_override(self, tenant_id: str, schedule_id: str, override_id: str) -> bool:
        statement = delete(OverrideRow).where(
            OverrideRow.tenant_id == tenant_id, OverrideRow.schedule_id == schedule_id, OverrideRow.id == override_id
        )
        with database_errors():
            async with self._metadata.session() as session, session.begin():
                return _rowcount(await session.execute(statement)) == 1

    async def overrides_between(
        self,
        tenant_id: str,
        schedule_id: str,
        *,
        start: datetime,
        end: datetime,
        after: tuple[datetime, str] | None = None,
        limit: int | None = None,
    ) -> Sequence[Override]:
        statement = (
            select(OverrideRow)
            .where(
                OverrideRow.tenant_id == tenant_id,
                OverrideRow.schedule_id == schedule_id,
                OverrideRow.starts_at < end,
                OverrideRow.ends_at > start,
                _after(OverrideRow.starts_at, OverrideRow.id, after),
            )
            .order_by(OverrideRow.starts_at, OverrideRow.id)
        )
        if limit is not None:
            statement = statement.limit(limit)
        with database_errors():
            async with self._metadata.session() as session:
                rows = (await session.execute(statement)).scalars().all()
        return [_override(row) for row in rows]

    # Calendar feed

    async def set_ical_token(self, tenant_id: str, schedule_id: str, token_hash: str | None, at: datetime) -> bool:
        statement = (
            update(ScheduleRow)
            .where(ScheduleRow.tenant_id == tenant_id, ScheduleRow.id == schedule_id)
            .values(ical_token_hash=token_hash, ical_token_at=None if token_hash is None else at)
        )
        with database_errors():
            async with self._metadata.session() as session, session.begin():
                return _rowcount(await session.execute(statement)) == 1

    async def schedule_by_ical_token(self, token_hash: str) -> Schedule | None:
        statement = (
            select(ScheduleRow)
            .join(TenantRow, TenantRow.id == ScheduleRow.tenant_id)
            .where(
                ScheduleRow.ical_token_hash == token_hash,
                TenantRow.suspended.is_(False),
                TenantRow.deleted_at.is_(None),
            )
        )
        with database_errors():
            async with self._metadata.session() as session:
                row = (await session.execute(statement)).scalar_one_or_none()
        return None if row is None else _schedule(row)

    # OnCallDirectory

    async def has_schedule(self, tenant_id: str, schedule_id: str) -> bool:
        """Whether the tenant has the schedule (escalation policies refuse a target that names none)."""
        return await self.get_schedule(tenant_id, schedule_id) is not None

    async def people_on_call(self, tenant_id: str, schedule_id: str, at: datetime) -> Sequence[Person]:
        # One statement on the read connection (one round trip, no transaction, so nothing is cached here and
        # every write committed before it is seen): a row for each person who may be on call (the schedule's
        # participants and the people of the overrides covering `at`), each with that person's covering override
        # if any, the schedule's spec on one row only. JSON comes as text: only the spec and the person found
        # are decoded.
        parameters = {"tenant_id": tenant_id, "schedule_id": schedule_id, "at": at, "at_end": at + _INSTANT}
        with database_errors():
            rows = await self._metadata.read(_ON_CALL, parameters)
        spec = next((row.spec for row in rows if row.spec is not None), None)
        if spec is None:
            return []  # no such schedule in this tenant
        spans = [
            OverrideSpan(
                person_id=row.person_id,
                start=row.starts_at,
                end=row.ends_at,
                created_at=row.override_created_at,
                override_id=row.override_id,
            )
            for row in rows
            if row.override_id is not None
        ]
        person_id = on_call_at(_spec_decoder.decode(spec), spans, at)
        found = next((row for row in rows if row.person_id == person_id), None)
        if found is None:
            return []
        document = _person_decoder.decode(found.document)
        return [_person(found.person_id, found.tenant_id, document, found.created_at, found.updated_at)]


_spec_decoder = msgspec.json.Decoder(ScheduleSpec)
_person_decoder = msgspec.json.Decoder(_PersonDocument)


def _on_call_statement() -> Any:
    """The rows `people_on_call` reads (see there), built once; parameters `tenant_id`, `schedule_id`, `at` and
    `at_end` (`at` plus a microsecond: an override starting at `at` covers it)."""
    tenant_id, schedule_id = bindparam("tenant_id", type_=String), bindparam("schedule_id", type_=String)
    at, at_end = bindparam("at", type_=UtcDateTime()), bindparam("at_end", type_=UtcDateTime())
    candidates = union(
        select(ScheduleMemberRow.person_id).where(ScheduleMemberRow.schedule_id == schedule_id),
        select(OverrideRow.person_id).where(
            OverrideRow.schedule_id == schedule_id,
            OverrideRow.tenant_id == tenant_id,
            OverrideRow.starts_at < at_end,
            OverrideRow.ends_at > at,
        ),
    )
    override = aliased(OverrideRow)
    first_row = func.row_number().over() == 1
    return (
        select(
            case((first_row, sql_cast(ScheduleRow.spec, Text)), else_=null()).label("spec"),
            PersonRow.id.label("person_id"),
            PersonRow.tenant_id,
            sql_cast(PersonRow.document, Text).label("document"),
            PersonRow.created_at,
            PersonRow.updated_at,
            override.id.label("override_id"),
            override.starts_at,
            override.ends_at,
            override.created_at.label("override_created_at"),
        )
        .select_from(ScheduleRow)
        .join(PersonRow, and_(PersonRow.tenant_id == ScheduleRow.tenant_id, PersonRow.id.in_(candidates)))
        .outerjoin(
            override,
            and_(
                override.schedule_id == ScheduleRow.id,
                override.person_id == PersonRow.id,
                override.tenant_id == tenant_id,
                override.starts_at < at_end,
                override.ends_at > at,
            ),
        )
        .where(ScheduleRow.tenant_id == tenant_id, ScheduleRow.id == schedule_id)
    )


_ON_CALL = _on_call_statement()
