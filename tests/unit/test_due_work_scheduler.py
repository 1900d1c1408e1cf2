"""The role kit's due-work scheduler with a fake source and a fake clock: exactly-once claims across instances,
the concurrency bound, draining on stop, `run_once`, failures, overruns and metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence, Set
from datetime import UTC, datetime, timedelta

import pytest

from mintlog.errors import DatabaseUnavailable
from mintlog.metrics import Metrics
from mintlog.roles.kit.scheduler import Claim, DueWorkScheduler, next_due

T0 = datetime(2026, 3, 29, 0, 0, tzinfo=UTC)
INTERVAL = timedelta(seconds=10)

Item = tuple[str, datetime]
"""A fake item: its key and the due time it was claimed for."""


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class SharedItems:
    """Items with a due time, claimed by compare-and-set like the SQL sources: read what is due, then move each
    item's due time on only if it is still the one that was read. Every scheduler built on it shares the items."""

    def __init__(self, count: int, clock: Clock) -> None:
        self.due = {f"item_{number}": T0 for number in range(count)}
        self.clock = clock
        self.runs: list[tuple[str, datetime]] = []
        self.claims_asked = 0
        self.limits_asked: list[int] = []
        self.fail_claims = 0
        self.gate: asyncio.Event | None = None
        self.running = 0
        self.most_at_once = 0
        self.failing: set[str] = set()
        self.run_seconds = 0.0

    def source(self) -> Source:
        return Source(self)


class Source:
    def __init__(self, shared: SharedItems) -> None:
        self.shared = shared

    async def claim_due(self, now: datetime, limit: int, *, running: Set[str]) -> Sequence[Claim[Item]]:
        shared = self.shared
        shared.claims_asked += 1
        shared.limits_asked.append(limit)
        if shared.fail_claims:
            shared.fail_claims -= 1
            raise DatabaseUnavailable("the database is down")
        seen = [(key, at) for key, at in sorted(shared.due.items()) if at <= now and key not in running]
        await asyncio.sleep(0)  # another instance may read the same rows meanwhile
        claimed: list[Claim[Item]] = []
        for key, at in seen:
            if shared.due[key] != at:
                continue  # another instance moved it first
            shared.due[key] = next_due(at, INTERVAL.total_seconds(), now)
            claimed.append(Claim(key, (key, at), due_at=at, deadline=at + INTERVAL))
            if len(claimed) == limit:
                break
        return claimed

    async def run(self, item: Item) -> None:
        shared = self.shared
        key, due_at = item
        shared.running += 1
        shared.most_at_once = max(shared.most_at_once, shared.running)
        try:
            await asyncio.sleep(0.001)
            if shared.gate is not None:
                await shared.gate.wait()
            shared.clock.advance(shared.run_seconds)
            if key in shared.failing:
                raise RuntimeError(f"{key} broke")
            shared.runs.append((key, due_at))
        finally:
            shared.running -= 1


def scheduler(
    shared: SharedItems,
    *,
    max_running: int = 4,
    max_claimed: int | None = None,
    poll_seconds: float = 60.0,
    run_timeout_seconds: float | None = None,
    metrics: Metrics | None = None,
) -> DueWorkScheduler[Item]:
    return DueWorkScheduler(
        shared.source(),
        work="test-work",
        max_running=max_running,
        max_claimed=max_claimed,
        poll_seconds=poll_seconds,
        run_timeout_seconds=run_timeout_seconds,
        metrics=metrics or Metrics(),
        clock=shared.clock,
    )


async def eventually(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def test_two_instances_sharing_the_items_run_each_due_item_once_per_due_time() -> None:
    clock = Clock()
    shared = SharedItems(20, clock)
    first, second = scheduler(shared, max_claimed=50), scheduler(shared, max_claimed=50)
    claimed: list[str] = []
    for _ in range(3):
        for claims in await asyncio.gather(first.claim(), second.claim()):
            claimed.extend(claim.key for claim in claims)
        await asyncio.gather(first.drain(), second.drain())
        clock.advance(10)
    expected = sorted((f"item_{number}", T0 + n * INTERVAL) for number in range(20) for n in range(3))
    assert sorted(shared.runs) == expected
    assert sorted(claimed) == sorted(key for key, _ in expected)


async def test_two_running_instances_run_each_due_item_once() -> None:
    clock = Clock()
    shared = SharedItems(30, clock)
    instances = [scheduler(shared, max_running=3, poll_seconds=0.01) for _ in range(2)]
    for instance in instances:
        await instance.start()
    try:
        await eventually(lambda: len(shared.runs) == 30)
        await asyncio.sleep(0.05)  # nothing is due any more: nothing else runs
    finally:
        for instance in instances:
            await instance.stop()
    assert sorted(shared.runs) == sorted((f"item_{number}", T0) for number in range(30))


async def test_runs_are_bounded_and_claims_never_exceed_the_free_places() -> None:
    shared = SharedItems(5, Clock())
    shared.gate = asyncio.Event()
    work = scheduler(shared, max_running=2, max_claimed=3)
    assert len(await work.claim()) == 3  # three claimed, two of them running, one waiting for a slot
    await asyncio.sleep(0.01)
    assert shared.most_at_once == 2
    assert await work.claim() == []  # no free place: nothing more is claimed
    shared.gate.set()
    await work.drain()
    assert shared.most_at_once == 2
    assert len(await work.claim()) == 2
    await work.drain()
    assert shared.limits_asked == [3, 3]
    assert len(shared.runs) == 5


async def test_an_item_running_here_is_not_claimed_again_here() -> None:
    clock = Clock()
    shared = SharedItems(1, clock)
    shared.gate = asyncio.Event()
    work = scheduler(shared)
    assert [claim.key for claim in await work.claim()] == ["item_0"]
    clock.advance(10)  # due again, but still running here
    assert await work.claim() == []
    shared.gate.set()
    await work.drain()
    assert [claim.key for claim in await work.claim()] == ["item_0"]
    await work.drain()
    assert shared.runs == [("item_0", T0), ("item_0", T0 + INTERVAL)]


async def test_run_once_claims_what_is_due_and_returns_when_all_of_it_ran() -> None:
    shared = SharedItems(3, Clock())
    work = scheduler(shared, max_running=2, max_claimed=10)
    claims = await work.run_once()
    assert sorted(claim.key for claim in claims) == ["item_0", "item_1", "item_2"]
    assert sorted(key for key, _ in shared.runs) == ["item_0", "item_1", "item_2"]
    assert work.running_keys == set()
    assert shared.most_at_once == 2


async def test_stop_stops_claiming_and_waits_for_the_runs_in_progress() -> None:
    clock = Clock()
    shared = SharedItems(2, clock)
    shared.gate = asyncio.Event()
    work = scheduler(shared, poll_seconds=0.01)
    await work.start()
    await eventually(lambda: shared.running == 2)
    stopping = asyncio.create_task(work.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done()  # the two runs are still going: stop waits for them
    claims_before = shared.claims_asked
    clock.advance(10)  # due again: a scheduler still claiming would take them
    shared.gate.set()
    await asyncio.wait_for(stopping, 1)
    await asyncio.sleep(0.05)
    assert shared.claims_asked == claims_before
    assert sorted(shared.runs) == [("item_0", T0), ("item_1", T0)]


async def test_stop_with_a_grace_period_cancels_what_does_not_finish_in_time() -> None:
    shared = SharedItems(1, Clock())
    shared.gate = asyncio.Event()  # never set: the run hangs
    work = scheduler(shared, poll_seconds=0.01)
    await work.start()
    await eventually(lambda: shared.running == 1)
    started = asyncio.get_running_loop().time()
    await work.stop(grace_seconds=0.1)
    assert asyncio.get_running_loop().time() - started < 1
    assert shared.running == 0
    assert shared.runs == []
    assert work.running_keys == set()


async def test_a_database_outage_and_failing_runs_do_not_stop_the_scheduler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    shared = SharedItems(3, Clock())
    shared.fail_claims = 2
    shared.failing = {"item_1"}
    work = scheduler(shared, poll_seconds=0.01)
    await work.start()
    try:
        await eventually(lambda: len(shared.runs) == 2)
    finally:
        await work.stop()
    assert sorted(key for key, _ in shared.runs) == ["item_0", "item_2"]
    messages = [record.getMessage() for record in caplog.records]
    assert sum("cannot claim due work: the database is down" in message for message in messages) == 2
    assert any(message == "test-work: item_1 failed" for message in messages)


async def test_a_run_over_its_timeout_is_cancelled_and_the_others_go_on(caplog: pytest.LogCaptureFixture) -> None:
    shared = SharedItems(2, Clock())
    shared.gate = asyncio.Event()
    work = scheduler(shared, run_timeout_seconds=0.2)
    await work.claim()
    await asyncio.sleep(0.05)
    assert shared.running == 2
    await work.drain()  # both time out
    assert shared.runs == []
    assert sum("timed out after 0.2s" in record.getMessage() for record in caplog.records) == 2


async def test_a_run_past_its_deadline_is_logged_and_counted_as_an_overrun(caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    shared = SharedItems(2, Clock())
    shared.run_seconds = 6  # the second run ends 12 s after the due time, past its deadline (10 s)
    work = scheduler(shared, max_running=1, max_claimed=2, metrics=metrics)
    with caplog.at_level(logging.WARNING):
        await work.run_once()
    overruns = metrics.registry.get_sample_value("mintlog_due_work_overruns_total", {"work": "test-work"})
    assert overruns == 1
    [overran] = [record.getMessage() for record in caplog.records if "overran" in record.getMessage()]
    assert overran == "test-work: item_1 overran: it ran 6.0s and ended 2.0s after its deadline"
    claimed = metrics.registry.get_sample_value("mintlog_due_work_claimed_total", {"work": "test-work"})
    assert claimed == 2
    delays = metrics.registry.get_sample_value("mintlog_due_work_start_delay_seconds_sum", {"work": "test-work"})
    assert delays == 6  # the second started 6 s late, waiting for the one slot
    assert metrics.registry.get_sample_value("mintlog_due_work_running", {"work": "test-work"}) == 0


async def test_wake_claims_at_once_and_a_full_scheduler_refills_as_runs_finish() -> None:
    shared = SharedItems(2, Clock())
    work = scheduler(shared, max_running=1, poll_seconds=60)  # polls are too rare to matter in this test
    await work.start()
    try:
        await eventually(lambda: len(shared.runs) == 2)  # one place: item_1 was claimed when item_0 finished
        shared.due["item_2"] = T0  # new work stored
        work.wake()
        await eventually(lambda: len(shared.runs) == 3)
    finally:
        stopping_at = asyncio.get_running_loop().time()
        await work.stop()
    assert asyncio.get_running_loop().time() - stopping_at < 1  # stop does not wait for the next poll
    assert [key for key, _ in shared.runs] == ["item_0", "item_1", "item_2"]


def test_more_running_than_claimed_is_refused() -> None:
    with pytest.raises(ValueError, match="max_claimed"):
        scheduler(SharedItems(0, Clock()), max_running=4, max_claimed=2)
