"""`SqlEscalationStore`: escalation policies, runs, due tasks and one-click link uses in the metadata database.

Task claims follow the deliveries' pattern: PostgreSQL locks the candidates (`FOR UPDATE SKIP LOCKED`) and then
updates them re-checking the due condition; SQLite does both in one `UPDATE … RETURNING` under its write lock.
A task's completion is an `UPDATE … WHERE claimed_by = :holder AND status = 'pending'` in the same
transaction as the insert of the next tasks, so a step is marked done and its successor scheduled together.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

import msgspec
from sqlalchemy import ColumnElement, CursorResult, Row, Table, Text, and_, delete, func, or_, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mintlog.adapters.db.models_escalation import (
    EscalationPolicyRow,
    EscalationRunRow,
    EscalationSecretRow,
    EscalationTaskRow,
    LinkUseRow,
    OnCallRoutesRow,
)
from mintlog.adapters.db.one_of import one_of
from mintlog.adapters.db.sql import SqlMetadataStore, database_errors
from mintlog.domain.escalation import (
    EscalationPolicy,
    EscalationRun,
    EscalationTask,
    PolicySpec,
    RunStatus,
    TaskKind,
)
from mintlog.domain.oncall_routes import RouteSpec, RoutingTable
from mintlog.errors import Conflict
from mintlog.ports.escalation import RunVersion

__all__ = ["SqlEscalationStore"]

_LINK_SECRET = "link"  # noqa: S105 (the name of a row, not a secret)


def _rowcount(result: object) -> int:
    return cast("CursorResult[Any]", result).rowcount


def _policy(row: EscalationPolicyRow) -> EscalationPolicy:
    return EscalationPolicy(
        id=row.id,
        tenant_id=row.tenant_id,
        spec=msgspec.convert(row.spec, PolicySpec),
        is_default=row.is_default,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _run(row: EscalationRunRow | Row[Any], policy: PolicySpec) -> EscalationRun:
    """The run of an ORM row, or of a Core row of the same columns, with its policy decoded by the caller."""
    return EscalationRun(
        id=row.id,
        tenant_id=row.tenant_id,
        incident_id=row.incident_id,
        policy_id=row.policy_id,
        policy=policy,
        status=cast("RunStatus", row.status),
        cycle=row.cycle,
        started_at=row.started_at,
        updated_at=row.updated_at,
        stop_reason=row.stop_reason,
    )


_policy_decoder = msgspec.json.Decoder(PolicySpec)
_decode_policy = functools.lru_cache(maxsize=4096)(_policy_decoder.decode)
"""A run's policy from its JSON text: the runs of one policy (10,000 incidents over 100 policies) share one
decoding, and one (frozen) `PolicySpec`."""


def _task(row: EscalationTaskRow | Row[Any]) -> EscalationTask:
    """The task of an ORM row, or of a Core row of the same columns (a claim returns thousands: no ORM objects)."""
    return EscalationTask(
        id=row.id,
        tenant_id=row.tenant_id,
        run_id=row.run_id,
        incident_id=row.incident_id,
        kind=cast("TaskKind", row.kind),
        cycle=row.cycle,
        step_index=row.step_index,
        repeat=row.repeat,
        due_at=row.due_at,
        data=dict(row.data),
        claimed_by=row.claimed_by,
        claim_expires_at=row.claim_expires_at,
    )


def _task_values(task: EscalationTask, now: datetime) -> dict[str, Any]:
    return {
        "id": task.id,
        "tenant_id": task.tenant_id,
        "run_id": task.run_id,
        "incident_id": task.incident_id,
        "kind": task.kind,
        "cycle": task.cycle,
        "step_index": task.step_index,
        "repeat": task.repeat,
        "data": dict(task.data),
        "status": "pending",
        "due_at": task.due_at,
        "claimed_by": None,
        "claim_expires_at": None,
        "created_at": now,
    }


def _task_row(task: EscalationTask, now: datetime) -> EscalationTaskRow:
    return EscalationTaskRow(**_task_values(task, now))


_TASKS = cast("Table", EscalationTaskRow.__table__)
_RUNS = cast("Table", EscalationRunRow.__table__)


def _due(now: datetime, due_by: datetime) -> ColumnElement[bool]:
    return and_(
        EscalationTaskRow.status == "pending",
        EscalationTaskRow.due_at <= due_by,
        or_(EscalationTaskRow.claim_expires_at.is_(None), EscalationTaskRow.claim_expires_at <= now),
    )


class SqlEscalationStore:
    """`EscalationStore` on the tables of `models_escalation`, sharing the metadata store's engine."""

    def __init__(self, metadata: SqlMetadataStore) -> None:
        self._metadata = metadata

    def _session(self) -> AsyncSession:
        return self._metadata.session()

    def _insert(self) -> Any:
        return postgresql.insert if self._metadata.is_postgres else sqlite.insert

    # Policies

    async def create_policy(self, policy: EscalationPolicy, *, max_per_tenant: int) -> EscalationPolicy:
        count = (
            select(func.count())
            .select_from(EscalationPolicyRow)
            .where(EscalationPolicyRow.tenant_id == policy.tenant_id)
        )
        with database_errors((f"policy {policy.id!r} already exists", "policy_exists")):
            async with self._session() as session, session.begin():
                if (await session.execute(count)).scalar_one() >= max_per_tenant:
                    raise Conflict(
                        f"the tenant has {max_per_tenant} escalation policies, the most it may have",
                        code="too_many_policies",
                    )
                session.add(
                    EscalationPolicyRow(
                        id=policy.id,
                        tenant_id=policy.tenant_id,
                        spec=msgspec.to_builtins(policy.spec),
                        is_default=policy.is_default,
                        created_at=policy.created_at,
                        updated_at=policy.updated_at,
                    )
                )
        return policy

    async def get_policy(self, tenant_id: str, policy_id: str) -> EscalationPolicy | None:
        statement = select(EscalationPolicyRow).where(
            EscalationPolicyRow.tenant_id == tenant_id, EscalationPolicyRow.id == policy_id
        )
        with database_errors():
            async with self._session() as session:
                row = (await session.execute(statement)).scalar_one_or_none()
        return None if row is None else _policy(row)

    async def list_policies(
        self, tenant_id: str, *, after: tuple[datetime, str] | None = None, limit: int = 50
    ) -> Sequence[EscalationPolicy]:
        statement = (
            select(EscalationPolicyRow)
            .where(EscalationPolicyRow.tenant_id == tenant_id)
            .order_by(EscalationPolicyRow.created_at, EscalationPolicyRow.id)
            .limit(limit)
        )
        if after is not None:
            created_at, policy_id = after
            statement = statement.where(
                or_(
                    EscalationPolicyRow.created_at > created_at,
                    and_(EscalationPolicyRow.created_at == created_at, EscalationPolicyRow.id > policy_id),
                )
            )
        with database_errors():
            async with self._session() as session:
                rows = (await session.execute(statement)).scalars().all()
        return [_policy(row) for row in rows]

    async def replace_policy(
        self, tenant_id: str, policy_id: str, spec: PolicySpec, *, updated_at: datetime
    ) -> EscalationPolicy | None:
        statement = (
            update(EscalationPolicyRow)
            .where(EscalationPolicyRow.tenant_id == tenant_id, EscalationPolicyRow.id == policy_id)
            .values(spec=msgspec.to_builtins(spec), updated_at=updated_at)
        )
        with database_errors():
            async with self._session() as session, session.begin():
                if _rowcount(await session.execute(statement)) != 1:
                    return None
        return await self.get_policy(tenant_id, policy_id)

    async def delete_policy(self, tenant_id: str, policy_id: str) -> bool:
        statement = delete(EscalationPolicyRow).where(
            EscalationPolicyRow.tenant_id == tenant_id, EscalationPolicyRow.id == policy_id
        )
        with database_errors():
            async with self._session() as session, session.begin():
                return _rowcount(await session.execute(statement)) == 1

    async def set_default_policy(self, tenant_id: str, policy_id: str | None) -> EscalationPolicy | None:
        of_tenant = EscalationPolicyRow.tenant_id == tenant_id
        with database_errors():
            async with self._session() as session, session.begin():
                if policy_id is not None:
                    exists = select(EscalationPolicyRow.id).where(of_tenant, EscalationPolicyRow.id == policy_id)
                    if (await session.execute(exists)).scalar_one_or_none() is None:
                        return None
                await session.execute(update(EscalationPolicyRow).where(of_tenant).values(is_default=False))
                if policy_id is None:
                    return None
                await session.execute(
                    update(EscalationPolicyRow)
                    .where(of_tenant, EscalationPolicyRow.id == policy_id)
                    .values(is_default=True)
                )
        return await self.get_policy(tenant_id, policy_id)

    async def default_policy(self, tenant_id: str) -> EscalationPolicy | None:
        statement = (
            select(EscalationPolicyRow)
            .where(EscalationPolicyRow.tenant_id == tenant_id, EscalationPolicyRow.is_default.is_(True))
            .limit(1)
        )
        with database_errors():
            async with self._session() as session:
                row = (await session.execute(statement)).scalar_one_or_none()
        return None if row is None else _policy(row)

    # Routes

    async def get_routes(self, tenant_id: str) -> RoutingTable | None:
        statement = select(OnCallRoutesRow).where(OnCallRoutesRow.tenant_id == tenant_id)
        with database_errors():
            async with self._session() as session:
                row = (await session.execute(statement)).scalar_one_or_none()
        if row is None:
            return None
        return RoutingTable(
            tenant_id=row.tenant_id,
            routes=msgspec.convert(row.routes, list[RouteSpec]),
            updated_at=row.updated_at,
        )

    async def replace_routes(self, table: RoutingTable) -> None:
        routes: list[dict[str, Any]] = msgspec.to_builtins(table.routes)
        # Two first writes of a tenant racing: the second insert is a 409, never a 500.
        with database_errors(("the routes were replaced concurrently; send them again", "routes_conflict")):
            async with self._session() as session, session.begin():
                row = await session.get(OnCallRoutesRow, table.tenant_id, with_for_update=True)
                if row is None:
                    session.add(OnCallRoutesRow(tenant_id=table.tenant_id, routes=routes, updated_at=table.updated_at))
                else:
                    row.routes = routes
                    row.updated_at = table.updated_at

    # Runs and tasks

    async def start_run(self, run: EscalationRun, first: EscalationTask) -> bool:
        row = EscalationRunRow(
            id=run.id,
            tenant_id=run.tenant_id,
            incident_id=run.incident_id,
            policy_id=run.policy_id,
            policy=msgspec.to_builtins(run.policy),
            status=run.status,
            cycle=run.cycle,
            started_at=run.started_at,
            updated_at=run.updated_at,
        )
        try:
            with database_errors(("the incident's escalation has started", "run_exists")):
                async with self._session() as session, session.begin():
                    session.add(row)
                    await session.flush()
                    session.add(_task_row(first, run.started_at))
        except Conflict:
            return False
        return True

    async def get_run(self, tenant_id: str, incident_id: str) -> EscalationRun | None:
        statement = select(EscalationRunRow).where(
            EscalationRunRow.tenant_id == tenant_id, EscalationRunRow.incident_id == incident_id
        )
        with database_errors():
            async with self._session() as session:
                row = (await session.execute(statement)).scalar_one_or_none()
        return None if row is None else _run(row, msgspec.convert(row.policy, PolicySpec))

    async def get_runs(self, keys: Sequence[tuple[str, str]]) -> Sequence[EscalationRun]:
        # Core rows, the policy as text for msgspec (decoded once per policy).
        runs = _RUNS.c
        columns = [sql_cast(column, Text) if column is runs.policy else column for column in runs]
        return [_run(row, _decode_policy(row.policy)) for row in await self._run_rows(columns, keys)]

    async def run_versions(self, keys: Sequence[tuple[str, str]]) -> Mapping[tuple[str, str], RunVersion]:
        runs = _RUNS.c
        columns = [runs.tenant_id, runs.incident_id, runs.id, runs.status, runs.cycle, runs.updated_at]
        return {
            (row.tenant_id, row.incident_id): (row.id, row.status, row.cycle, row.updated_at)
            for row in await self._run_rows(columns, keys)
        }

    async def _run_rows(self, columns: Sequence[Any], keys: Sequence[tuple[str, str]]) -> list[Row[Any]]:
        """`columns` (with `tenant_id` and `incident_id`) of the runs of these (tenant id, incident id) pairs, in
        one statement on the read connection (one round trip, no ORM objects)."""
        wanted = set(keys)
        if not wanted:
            return []
        runs = _RUNS.c
        postgres = self._metadata.is_postgres
        statement = select(*columns).where(
            # both columns, so the (tenant_id, incident_id) index serves
            one_of(runs.tenant_id, sorted({tenant_id for tenant_id, _ in wanted}), postgres=postgres),
            one_of(runs.incident_id, sorted({incident_id for _, incident_id in wanted}), postgres=postgres),
        )
        with database_errors():
            rows = await self._metadata.read(statement)
        return [row for row in rows if (row.tenant_id, row.incident_id) in wanted]

    async def stop_run(
        self, tenant_id: str, incident_id: str, *, reason: str, at: datetime, keep_ack_timeout: bool
    ) -> bool:
        with database_errors():
            async with self._session() as session, session.begin():
                result = await session.execute(
                    update(EscalationRunRow)
                    .where(
                        EscalationRunRow.tenant_id == tenant_id,
                        EscalationRunRow.incident_id == incident_id,
                        EscalationRunRow.status == "active",
                    )
                    .values(status="stopped", stop_reason=reason[:200], updated_at=at)
                )
                cancel = update(EscalationTaskRow).where(
                    EscalationTaskRow.tenant_id == tenant_id,
                    EscalationTaskRow.incident_id == incident_id,
                    EscalationTaskRow.status == "pending",
                )
                if keep_ack_timeout:
                    cancel = cancel.where(EscalationTaskRow.kind != "ack_timeout")
                await session.execute(cancel.values(status="cancelled"))
                return _rowcount(result) == 1

    async def retrigger_run(self, tenant_id: str, incident_id: str, *, at: datetime, first: EscalationTask) -> bool:
        with database_errors():
            async with self._session() as session, session.begin():
                result = await session.execute(
                    update(EscalationRunRow)
                    .where(
                        EscalationRunRow.tenant_id == tenant_id,
                        EscalationRunRow.incident_id == incident_id,
                        EscalationRunRow.cycle == first.cycle - 1,
                    )
                    .values(status="active", cycle=first.cycle, stop_reason=None, updated_at=at)
                )
                if _rowcount(result) != 1:
                    return False
                await session.execute(
                    update(EscalationTaskRow)
                    .where(
                        EscalationTaskRow.run_id == first.run_id,
                        EscalationTaskRow.status == "pending",
                        EscalationTaskRow.kind != "ack_timeout",  # the one running now marks itself done
                    )
                    .values(status="cancelled")
                )
                await self._insert_new(session, [first], at)
                return True

    async def _insert_new(self, session: AsyncSession, tasks: Sequence[EscalationTask], now: datetime) -> int:
        if not tasks:
            return 0
        # An executemany of one cached statement; a task inserted meanwhile (or twice here) is skipped.
        statement = self._insert()(_TASKS).on_conflict_do_nothing(index_elements=[_TASKS.c.id]).returning(_TASKS.c.id)
        inserted = (await session.execute(statement, [_task_values(task, now) for task in tasks])).scalars().all()
        return len(inserted)

    async def add_tasks(self, tasks: Sequence[EscalationTask], *, now: datetime) -> int:
        try:
            with database_errors(("the task exists", "task_exists")):
                async with self._session() as session, session.begin():
                    return await self._insert_new(session, tasks, now)
        except Conflict:
            return 0  # inserted meanwhile by another instance: what we meant to add is there

    async def claim_due_tasks(
        self, holder: str, *, now: datetime, until: datetime, limit: int, due_by: datetime | None = None
    ) -> list[EscalationTask]:
        due = _due(now, now if due_by is None else due_by)
        candidates = (
            select(EscalationTaskRow.id)
            .where(due)
            .order_by(EscalationTaskRow.due_at, EscalationTaskRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        postgres = self._metadata.is_postgres
        with database_errors():
            async with self._session() as session, session.begin():
                if postgres:
                    ids = list((await session.execute(candidates)).scalars().all())
                    if not ids:
                        return []
                    chosen = one_of(EscalationTaskRow.id, ids, postgres=True)
                else:
                    chosen = EscalationTaskRow.id.in_(candidates.scalar_subquery())
                statement = (
                    update(EscalationTaskRow)
                    .where(chosen, due)
                    .values(claimed_by=holder, claim_expires_at=until)
                    .returning(*_TASKS.c)
                    .execution_options(synchronize_session=False)
                )
                claimed = [_task(row) for row in (await session.execute(statement)).all()]
        return sorted(claimed, key=lambda task: (task.due_at, task.id))

    async def complete_tasks(
        self, completions: Sequence[tuple[str, Sequence[EscalationTask]]], holder: str, *, now: datetime
    ) -> set[str]:
        if not completions:
            return set()
        statement = (
            update(EscalationTaskRow)
            .where(
                one_of(
                    EscalationTaskRow.id,
                    [task_id for task_id, _ in completions],
                    postgres=self._metadata.is_postgres,
                ),
                EscalationTaskRow.claimed_by == holder,
                EscalationTaskRow.status == "pending",
            )
            .values(status="done", claim_expires_at=None)
            .returning(EscalationTaskRow.id)
            .execution_options(synchronize_session=False)
        )
        with database_errors():
            async with self._session() as session, session.begin():
                done = set((await session.execute(statement)).scalars().all())
                following = [task for task_id, tasks in completions if task_id in done for task in tasks]
                await self._insert_new(session, following, now)
        return done

    # One-click links

    async def use_link(self, token_sha256: str, *, tenant_id: str, incident_id: str, at: datetime) -> bool:
        row = LinkUseRow(token_sha256=token_sha256, tenant_id=tenant_id, incident_id=incident_id, used_at=at)
        try:
            with database_errors(("the link was used", "link_used")):
                async with self._session() as session, session.begin():
                    session.add(row)
        except Conflict:
            return False
        return True

    async def link_secret(self, generate: str) -> str:
        read = select(EscalationSecretRow.value).where(EscalationSecretRow.name == _LINK_SECRET)
        with database_errors():
            async with self._session() as session:
                found = (await session.execute(read)).scalar_one_or_none()
            if found is not None:
                return found
            try:
                async with self._session() as session, session.begin():
                    session.add(EscalationSecretRow(name=_LINK_SECRET, value=generate))
            except IntegrityError:
                pass  # another instance stored one first: use it
            async with self._session() as session:
                return (await session.execute(read)).scalar_one()
