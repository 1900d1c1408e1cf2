"""On-call benchmarks of issue 18: who is on call on a big schedule, and a burst of escalation steps.

    python -m benchmarks.bench_oncall                        # full: lookup, then 10,000 incidents / 100 policies
    python -m benchmarks.bench_oncall --quick                # lookup, then 1,000 incidents / 10 policies
    python -m benchmarks.bench_oncall --only lookup --json /tmp/oncall.json

Both parts run on a fresh PostgreSQL database (created on the server `scripts/services.sh` runs, migrated to
head by `SqlMetadataStore.start()` as every Mintlog process does, dropped at the end).

**Lookup** — a schedule of 10 layers (weekly, daily, hourly and custom turns, two time zones' worth of
restrictions, 8 participants each; the lowest is 24/7) and 1,000 overrides of 1 to 12 hours spread over a
year, written through `SqlOnCallStore` (`create_schedule`, `create_override`, as the API does). Measured at
random instants of that year, each call timed alone:
- `people_on_call` — `SqlOnCallStore.people_on_call(tenant, schedule, at)`: what `GET …/on-call?at=` and every
  escalation step with a schedule target call (read the schedule, the overrides covering `at`, run
  `on_call_at`, read the person). In process: no HTTP, no auth (the endpoint adds one `get_schedule`).
- `on_call_at` — the domain function alone, handed all 1,000 overrides (the store hands it only those that
  cover `at`, so this is its upper bound).
- `render 7 days` — `render_shifts` of the week after the instant with the overrides meeting it (the default
  window of `GET …/shifts`).

**Escalation** — 100 policies (step 1: a schedule of the same shape with 100 overrides, and a webhook channel;
step 2, an hour later: a person) and 10,000 triggered incidents, each with its run started by
`SqlEscalationStore.start_run` and its step 1 as a pending task, as `EscalationStarter` leaves them. Then
`--workers` processes each run the notify role's `EscalationWorker` (bootstrap of the real runtime on this
database, `StoredPersonNotifier`, the due-work scheduler with its defaults); once they idle, one `UPDATE` moves
every step 1 to the same due instant, 2 s ahead. Per step, from the database afterwards: its due time, its
`escalation_step` timeline entry (the step started) and its last `notified` entry (both notifications stored:
the person's email and the channel's webhook delivery). Reported: p50/p99/max of each against the due time,
and steps per second from the due instant to the last notification. An entry carries the instant its
step's notifications were stored, and is written just after (the worker stores every notification of a burst
before it writes any entry: [escalation](../docs/escalation.md#how-it-runs)); `seconds_to_all_done` is when
every step 1 was seen done (its entries written, its task completed and step 2 inserted), polled every
`DONE_POLL_SECONDS`. Sending the deliveries is the delivery worker's job, not measured here.

Prints a JSON summary and writes it with `--json`. `--profile DIR` writes each worker's cProfile stats to DIR
and prints how many SQL statements it sent.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.load import percentile
from benchmarks.topology import execute_sql, log, services_env
from mintlog.adapters.db.escalation_sql import SqlEscalationStore
from mintlog.adapters.db.incidents_sql import SqlIncidentStore
from mintlog.adapters.db.notifications_sql import SqlNotificationStore
from mintlog.adapters.db.oncall_sql import SqlOnCallStore
from mintlog.adapters.db.sql import SqlMetadataStore
from mintlog.domain.channels import Channel
from mintlog.domain.escalation import (
    EscalationPolicy,
    EscalationRun,
    PolicySpec,
    StepSpec,
    StepTarget,
    first_step_task,
    new_run_id,
)
from mintlog.domain.incidents import EntryDraft, Incident, new_entry_id
from mintlog.domain.oncall_people import ContactMethod, NotificationRule, Person
from mintlog.domain.oncall_schedule import (
    Layer,
    Restriction,
    ScheduleSpec,
    on_call_at,
    render_shifts,
    validate_schedule,
)
from mintlog.domain.tenants import Tenant
from mintlog.ports.oncall_store import Override, Schedule

TENANT = "bench"
PEOPLE = 20
LAYERS = 10
LOOKUP_OVERRIDES = 1000
ESCALATION_SCHEDULES = 10
ESCALATION_OVERRIDES = 100
YEAR_START = datetime(2027, 1, 1, tzinfo=UTC)
# Setup writes run this many at a time (PostgreSQL works on them in parallel).
SETUP_CONCURRENCY = 16
DUE_LEAD_SECONDS = 2.0
# How often the run looks whether every step is done (the resolution of `seconds_to_all_done`).
DONE_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class Sizes:
    """How much one run does (full or quick)."""

    lookup_samples: int
    incidents: int
    policies: int
    timeout_seconds: float

    @classmethod
    def of(cls, quick: bool) -> Sizes:
        if quick:
            return cls(lookup_samples=500, incidents=1000, policies=10, timeout_seconds=300)
        return cls(lookup_samples=2000, incidents=10_000, policies=100, timeout_seconds=1800)


# ---------------------------------------------------------------- the schedule


def person_ids() -> list[str]:
    return [f"per_bench{index:02d}" for index in range(PEOPLE)]


def schedule_spec(name: str) -> ScheduleSpec:
    """10 layers, lowest first: a 24/7 weekly rotation, then daily, hourly and 12-hour turns, a third of them
    limited to office hours and a third to nights (past midnight)."""
    people = person_ids()
    turns = ("weekly", "daily", "hourly", "custom")
    layers: list[Layer] = []
    for index in range(LAYERS):
        turn = turns[index % len(turns)]
        restrictions: list[Restriction] = []
        if index % 3 == 1:
            restrictions = [Restriction(start="09:00", end="17:00", days=["mon", "tue", "wed", "thu", "fri"])]
        elif index % 3 == 2:
            restrictions = [Restriction(start="22:00", end="06:00")]
        layers.append(
            Layer(
                name=f"layer {index}",
                participants=[people[(index + offset) % PEOPLE] for offset in range(8)],
                turn=turn,
                turn_seconds=43_200 if turn == "custom" else None,
                rotation_start=datetime(2026, 6, 1, 9, 0) + timedelta(hours=index),
                restrictions=restrictions,
            )
        )
    return ScheduleSpec(name=name, time_zone="Europe/Berlin", layers=layers)


def overrides(schedule_id: str, count: int, rng: random.Random, created: datetime) -> list[Override]:
    """`count` overrides of 1 to 12 hours at random over the year from `YEAR_START` (some overlap)."""
    people = person_ids()
    made: list[Override] = []
    for index in range(count):
        start = YEAR_START + timedelta(seconds=rng.uniform(0, 365 * 86400))
        made.append(
            Override(
                id=f"ovr_{schedule_id[4:]}_{index:04d}",
                tenant_id=TENANT,
                schedule_id=schedule_id,
                person_id=people[rng.randrange(PEOPLE)],
                start=start,
                end=start + timedelta(hours=rng.uniform(1, 12)),
                created_at=created + timedelta(microseconds=index),
            )
        )
    return made


def random_instant(rng: random.Random) -> datetime:
    return YEAR_START + timedelta(seconds=rng.uniform(0, 365 * 86400))


# ---------------------------------------------------------------- database


@asynccontextmanager
async def fresh_database(server_url: str) -> AsyncIterator[str]:
    """A new, empty database on the server of `server_url` (dropped afterwards): its URL."""
    name = f"bench_oncall_{secrets.token_hex(5)}"
    await execute_sql(server_url, f'CREATE DATABASE "{name}"')
    try:
        yield server_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await execute_sql(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def in_batches(calls: Sequence[Callable[[], Any]], concurrency: int = SETUP_CONCURRENCY) -> None:
    """Await the coroutines `calls` make, `concurrency` at a time."""
    for offset in range(0, len(calls), concurrency):
        await asyncio.gather(*(call() for call in calls[offset : offset + concurrency]))


def person(person_id: str, now: datetime) -> Person:
    return Person(
        id=person_id,
        tenant_id=TENANT,
        name=person_id,
        email=f"{person_id}@example.com",
        time_zone="Europe/Berlin",
        contact_methods=[ContactMethod(id="email", type="email", address=f"{person_id}@example.com")],
        notification_rules=[NotificationRule(after_minutes=0, contact_method_id="email")],
        created_at=now,
        updated_at=now,
    )


async def create_people(oncall: SqlOnCallStore) -> None:
    now = datetime.now(UTC)
    for person_id in person_ids():
        await oncall.create_person(person(person_id, now), max_per_tenant=1000)


async def create_schedule(oncall: SqlOnCallStore, schedule_id: str, override_count: int, rng: random.Random) -> None:
    """The schedule and its overrides, through the store calls the API makes (after its validation)."""
    spec = schedule_spec(schedule_id)
    validate_schedule(spec, person_ids())
    now = datetime.now(UTC)
    schedule = Schedule(id=schedule_id, tenant_id=TENANT, spec=spec, created_at=now, updated_at=now)
    await oncall.create_schedule(schedule, max_per_tenant=200)
    made = overrides(schedule_id, override_count, rng, now)
    await in_batches([lambda item=item: oncall.create_override(item, max_per_schedule=5000) for item in made])


# ---------------------------------------------------------------- lookup


def summary_ms(seconds: Sequence[float]) -> dict[str, float | int]:
    return {
        "samples": len(seconds),
        "p50_ms": round(percentile(list(seconds), 0.50) * 1000, 3),
        "p99_ms": round(percentile(list(seconds), 0.99) * 1000, 3),
        "max_ms": round(max(seconds) * 1000, 3),
        "mean_ms": round(statistics.fmean(seconds) * 1000, 3),
    }


async def measure_lookup(metadata: SqlMetadataStore, samples: int, rng: random.Random) -> dict[str, Any]:
    """people_on_call, on_call_at and a 7-day render on a 10-layer schedule with 1,000 overrides."""
    oncall = SqlOnCallStore(metadata)
    schedule_id = "sch_lookup"
    started = time.monotonic()
    await create_schedule(oncall, schedule_id, LOOKUP_OVERRIDES, rng)
    seconds = time.monotonic() - started
    log(f"lookup: schedule with {LAYERS} layers and {LOOKUP_OVERRIDES:,} overrides in {seconds:.1f} s")
    schedule = await oncall.get_schedule(TENANT, schedule_id)
    assert schedule is not None
    stored = await oncall.overrides_between(TENANT, schedule_id, start=YEAR_START - timedelta(days=1),
                                            end=YEAR_START + timedelta(days=367))  # fmt: skip
    spans = [item.span() for item in stored]
    assert len(spans) == LOOKUP_OVERRIDES, len(spans)

    for _ in range(50):  # warm-up: connections, caches, statement compilation
        await oncall.people_on_call(TENANT, schedule_id, random_instant(rng))
    store_times: list[float] = []
    nobody = 0
    for _ in range(samples):
        at = random_instant(rng)
        begin = time.perf_counter()
        people = await oncall.people_on_call(TENANT, schedule_id, at)
        store_times.append(time.perf_counter() - begin)
        nobody += not people
    domain_times: list[float] = []
    for _ in range(samples):
        at = random_instant(rng)
        begin = time.perf_counter()
        on_call_at(schedule.spec, spans, at)
        domain_times.append(time.perf_counter() - begin)
    render_times: list[float] = []
    for _ in range(max(50, samples // 10)):
        at = random_instant(rng)
        end = at + timedelta(days=7)
        meeting = [span for span in spans if span.start < end and span.end > at]
        begin = time.perf_counter()
        render_shifts(schedule.spec, meeting, at, end)
        render_times.append(time.perf_counter() - begin)
    result = {
        "layers": LAYERS,
        "overrides": LOOKUP_OVERRIDES,
        "people_on_call": summary_ms(store_times) | {"nobody_on_call": nobody},
        "on_call_at": summary_ms(domain_times),
        "render_7_days": summary_ms(render_times),
    }
    log(f"lookup: {json.dumps(result)}")
    return result


# ---------------------------------------------------------------- escalation


def policy_spec(index: int) -> PolicySpec:
    people = person_ids()
    return PolicySpec(
        name=f"bench policy {index}",
        steps=[
            StepSpec(
                targets=[
                    StepTarget(type="schedule", id=f"sch_esc{index % ESCALATION_SCHEDULES:02d}"),
                    StepTarget(type="channel", id="ch_bench"),
                ]
            ),
            StepSpec(delay_minutes=60, targets=[StepTarget(type="person", id=people[index % PEOPLE])]),
        ],
    )


async def open_incidents(metadata: SqlMetadataStore, sizes: Sizes, placeholder_due: datetime) -> None:
    """`sizes.incidents` triggered incidents, each with its run started (step 1 due at `placeholder_due`)."""
    escalation = SqlEscalationStore(metadata)
    incidents = SqlIncidentStore(metadata)
    now = datetime.now(UTC)
    policies: list[EscalationPolicy] = []
    for index in range(sizes.policies):
        policy = EscalationPolicy(
            id=f"esp_bench{index:03d}", tenant_id=TENANT, spec=policy_spec(index), is_default=False,
            created_at=now, updated_at=now,
        )  # fmt: skip
        policies.append(await escalation.create_policy(policy, max_per_tenant=10_000))

    async def open_one(number: int) -> None:
        policy = policies[number % len(policies)]
        opened = datetime.now(UTC)
        incident = Incident(
            id=f"inc_bench{number:06d}", tenant_id=TENANT, title=f"bench incident {number}", severity="critical",
            status="triggered", created_by="system", created_at=opened, updated_at=opened,
            escalation_policy_id=policy.id,
        )  # fmt: skip
        entry = new_entry_id()
        await incidents.create_incident(
            incident, EntryDraft(id=entry, source_id=entry, occurred_at=opened, event_type="triggered", actor="system")
        )
        run = EscalationRun(
            id=new_run_id(incident.id), tenant_id=TENANT, incident_id=incident.id, policy_id=policy.id,
            policy=policy.spec, status="active", cycle=0, started_at=opened, updated_at=opened,
        )  # fmt: skip
        await escalation.start_run(run, first_step_task(run, now=placeholder_due))

    await in_batches([lambda number=number: open_one(number) for number in range(sizes.incidents)])


async def _scalar(metadata: SqlMetadataStore, sql: str, **params: Any) -> Any:
    from sqlalchemy import text

    async with metadata.session() as session:
        return (await session.execute(text(sql), params)).scalar_one()


async def _rows(metadata: SqlMetadataStore, sql: str, **params: Any) -> list[Any]:
    from sqlalchemy import text

    async with metadata.session() as session:
        return list((await session.execute(text(sql), params)).all())


class Workers:
    """`count` processes each running the notify role's `EscalationWorker` on the database (see `serve`)."""

    def __init__(self, database_url: str, count: int, profile: Path | None = None) -> None:
        self._database_url = database_url
        self._count = count
        self._profile = profile
        self._root = Path(tempfile.mkdtemp(prefix="mintlog-bench-oncall-"))
        self.processes: list[subprocess.Popen[str]] = []

    def __enter__(self) -> Workers:
        repo = Path(__file__).resolve().parents[1]
        for index in range(self._count):
            profile = [] if self._profile is None else ["--profile", str(self._profile / f"worker-{index}.prof")]
            process = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.bench_oncall", "--serve", self._database_url,
                 "--data-dir", str(self._root / f"worker-{index}"), *profile],
                cwd=repo, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                env={key: value for key, value in os.environ.items() if not key.startswith("MINTLOG_")},
            )  # fmt: skip
            self.processes.append(process)
        for process in self.processes:
            line = process.stdout.readline() if process.stdout else ""
            if line.strip() != "ready":
                self.__exit__()
                raise RuntimeError(f"escalation worker {process.pid} did not start (said {line!r})")
        return self

    def __exit__(self, *_exc: object) -> None:
        for process in self.processes:
            if process.stdin:
                process.stdin.close()  # the worker stops when its stdin closes
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self._root, ignore_errors=True)


async def measure_escalation(
    metadata: SqlMetadataStore,
    database_url: str,
    sizes: Sizes,
    workers: int,
    rng: random.Random,
    profile: Path | None = None,
) -> dict[str, Any]:
    oncall = SqlOnCallStore(metadata)
    started = time.monotonic()
    for index in range(ESCALATION_SCHEDULES):
        await create_schedule(oncall, f"sch_esc{index:02d}", ESCALATION_OVERRIDES, rng)
    now = datetime.now(UTC)
    await SqlNotificationStore(metadata).create_channel(
        Channel(id="ch_bench", tenant_id=TENANT, name="bench", channel_type="webhook", url="http://127.0.0.1:9/hook",
                headers={}, secret="bench", is_active=True, created_at=now, updated_at=now)
    )  # fmt: skip
    placeholder_due = now + timedelta(days=1)
    await open_incidents(metadata, sizes, placeholder_due)
    setup_seconds = time.monotonic() - started
    log(f"escalation: {sizes.incidents:,} incidents over {sizes.policies} policies set up in {setup_seconds:.0f} s")

    with Workers(database_url, workers, profile):
        time.sleep(DUE_LEAD_SECONDS)  # let the workers settle into their idle polling
        due = datetime.now(UTC) + timedelta(seconds=DUE_LEAD_SECONDS)
        from sqlalchemy import text

        async with metadata.session() as session, session.begin():
            moved = await session.execute(
                text("UPDATE escalation_tasks SET due_at = :due WHERE kind = 'step' AND status = 'pending'"),
                {"due": due},
            )
        log(f"escalation: {getattr(moved, 'rowcount', '?')} step 1 tasks due at {due:%H:%M:%S.%f} UTC; waiting")
        deadline = time.monotonic() + sizes.timeout_seconds
        done = 0
        all_done_at: datetime | None = None
        while time.monotonic() < deadline:
            await asyncio.sleep(DONE_POLL_SECONDS)
            done = int(await _scalar(
                metadata, "SELECT count(*) FROM escalation_tasks WHERE kind = 'step' AND step_index = 0 "
                "AND status = 'done'"
            ))  # fmt: skip
            if done >= sizes.incidents:
                all_done_at = datetime.now(UTC)
                break
        log(f"escalation: {done:,} of {sizes.incidents:,} steps done; stopping the workers")

    rows = await _rows(
        metadata,
        "SELECT incident_id, event_type, occurred_at FROM incident_timeline WHERE tenant_id = :tenant "
        "AND event_type IN ('escalation_step', 'notified', 'notification_failed')",
        tenant=TENANT,
    )
    started_at: dict[str, datetime] = {}
    notified_at: dict[str, datetime] = {}
    notified_count: dict[str, int] = {}
    failed = 0
    for incident_id, event_type, occurred_at in rows:
        if event_type == "escalation_step":
            started_at[incident_id] = occurred_at
        elif event_type == "notified":
            notified_at[incident_id] = max(occurred_at, notified_at.get(incident_id, occurred_at))
            notified_count[incident_id] = notified_count.get(incident_id, 0) + 1
        else:
            failed += 1
    complete = [incident for incident, count in notified_count.items() if count == 2]
    start_delays = [(at - due).total_seconds() for at in started_at.values()]
    notified_delays = [(notified_at[incident] - due).total_seconds() for incident in complete]
    last = max(notified_at.values()) if notified_at else due
    elapsed = (last - due).total_seconds()
    result: dict[str, Any] = {
        "incidents": sizes.incidents,
        "policies": sizes.policies,
        "workers": workers,
        "setup_seconds": round(setup_seconds, 1),
        "steps_started": len(started_at),
        "steps_notified": len(complete),
        "notification_failed_entries": failed,
        "missed": sizes.incidents - len(complete),
        "step_start_delay": _summary_s(start_delays),
        "step_notified_delay": _summary_s(notified_delays),
        "seconds_to_last_step": round(elapsed, 3),
        # Every step's entries written and its task completed (next step inserted), seen by polling.
        "seconds_to_all_done": None if all_done_at is None else round((all_done_at - due).total_seconds(), 2),
        "steps_per_second": round(len(complete) / elapsed, 1) if elapsed > 0 else None,
    }
    log(f"escalation: {json.dumps(result)}")
    return result


def _summary_s(seconds: Sequence[float]) -> dict[str, float | None]:
    if not seconds:
        return {"p50_s": None, "p99_s": None, "max_s": None}
    return {
        "p50_s": round(percentile(list(seconds), 0.50), 3),
        "p99_s": round(percentile(list(seconds), 0.99), 3),
        "max_s": round(max(seconds), 3),
    }


# ---------------------------------------------------------------- the worker process


def _count_statements(runtime: Any) -> list[int]:
    """A one-item list counting the SQL statements the runtime's metadata engine sends from now on."""
    from sqlalchemy import event

    count = [0]

    def counted(*_args: object) -> None:
        count[0] += 1

    event.listen(runtime.metadata.engine.sync_engine, "before_cursor_execute", counted)
    return count


async def serve(database_url: str, data_dir: str, profile: Path | None = None) -> None:
    """One notify instance's escalation side, wired as `NotifyRole` wires it, until stdin closes; with
    `profile`, its cProfile stats (from "ready" to the stop) go to that file, and the SQL statements it ran to
    stderr."""
    from mintlog.adapters.bus.memory import MemoryEventBus
    from mintlog.launch.bootstrap import bootstrap
    from mintlog.roles.notify.escalation_worker import EscalationWorker
    from mintlog.roles.notify.person_notifier import StoredPersonNotifier
    from mintlog.settings import load_settings

    settings = load_settings({"MINTLOG_DATA_DIR": data_dir, "MINTLOG_DATABASE__URL": database_url}, env_file=None)
    runtime = bootstrap(settings, bus=MemoryEventBus())
    await runtime.open()
    try:
        notifier = StoredPersonNotifier(runtime.notifications, metrics=runtime.metrics)
        worker = EscalationWorker(runtime, person_notifier=notifier)
        statements = _count_statements(runtime)
        profiler = cProfile.Profile() if profile else None
        await worker.start()
        print("ready", flush=True)
        if profiler is not None:
            profiler.enable()
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await worker.stop()
        if profiler is not None and profile is not None:
            profiler.disable()
            profiler.dump_stats(str(profile))
            print(f"worker {os.getpid()}: {statements[0]:,} SQL statements", file=sys.stderr)
    finally:
        await runtime.close()


# ---------------------------------------------------------------- main


async def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = Sizes.of(args.quick)
    if args.incidents:
        sizes = Sizes(sizes.lookup_samples, args.incidents, args.policies or sizes.policies, sizes.timeout_seconds)
    rng = random.Random(args.seed)
    server_url = args.postgres_url or services_env()["TEST_POSTGRES_URL"]
    parts = args.only.split(",") if args.only else ["lookup", "escalation"]
    results: dict[str, Any] = {"mode": "quick" if args.quick else "full"}
    async with fresh_database(server_url) as database_url:
        metadata = SqlMetadataStore(database_url)
        await metadata.start()
        try:
            await metadata.create_tenant(Tenant(id=TENANT, name=TENANT, created_at=datetime.now(UTC)))
            await create_people(SqlOnCallStore(metadata))
            if "lookup" in parts:
                results["lookup"] = await measure_lookup(metadata, sizes.lookup_samples, rng)
            if "escalation" in parts:
                results["escalation"] = await measure_escalation(
                    metadata, database_url, sizes, args.workers, rng, args.profile
                )
        finally:
            await metadata.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 incidents over 10 policies, fewer lookups")
    parser.add_argument("--only", help="lookup, escalation or both (comma-separated)")
    parser.add_argument("--incidents", type=int, help="override the number of incidents")
    parser.add_argument("--policies", type=int, help="override the number of policies")
    parser.add_argument("--workers", type=int, default=1, help="escalation worker processes (notify instances)")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--postgres-url", help="server URL (default: scripts/services.sh's TEST_POSTGRES_URL)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--profile", type=Path, help="cProfile the workers into this directory (or file)")
    parser.add_argument("--serve", metavar="DATABASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.data_dir, args.profile))
        return 0
    results = asyncio.run(run(args))
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
