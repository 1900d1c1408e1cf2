"""`DueWorkScheduler`: claims due items in the shared database and runs them, one instance per item and due time.

Scheduled work (alert rule evaluations and webhook deliveries today; uptime checks, heartbeat deadlines and
escalation steps next) is rows in the metadata database that carry their due time. Every instance of a role
runs a scheduler over the same rows. What makes each piece of work happen once is the claim, made by a
`DueWorkSource`:

- **Exactly one claimer.** `claim_due` is a compare-and-set in the database: an `UPDATE … WHERE` the row is
  still as it was read (moving its due time on, or marking it claimed until a deadline), or `SELECT … FOR UPDATE
  SKIP LOCKED` followed by such an update. Of several instances that saw the same due item, exactly one
  claims it, and only that one runs it.
- **Bounded.** At most `max_claimed` items are claimed and unfinished at once, and at most `max_running` of
  them run at once (the others wait for a slot, already claimed). An item whose key is running here is not
  claimed again by this instance.
- **Prompt.** The scheduler looks for due work every `poll_seconds`, at once after `wake()`, and at once when
  a run finishes after a claim that took every free place (more may be due).
- **Never dies.** A claim the database refuses is logged and tried again at the next poll; a run that raises
  is logged with its key; a run over `run_timeout_seconds` is cancelled and logged.
- **Overruns are visible.** A claim may carry a deadline (when its claim expires, or when the item's next turn
  is due); a run still going then is logged and counted in `mintlog_due_work_overruns_total{work}`, since
  its work may be taken over by another instance or its next turn skipped here.
- **Drains on stop.** `stop(grace_seconds)` stops claiming and lets the runs in progress finish, within
  `grace_seconds` when given (the rest are cancelled: their claims expire or their turn passes, and the
  source's rules say when they run again).
- **Testable.** `run_once()` claims what is due now and runs all of it before returning; `claim()` claims and
  starts the runs in the background (`drain()` waits for them). The clock is injected.

Metrics (label `work`): `mintlog_due_work_claimed_total`, `mintlog_due_work_running`,
`mintlog_due_work_start_delay_seconds` (due time to start of run), `mintlog_due_work_overruns_total`.

Why APScheduler is not used (it was a declared dependency that no module imported, and was removed): its
schedulers keep jobs per process and have no claim that makes one instance among many run a job, which is
what this module does in the database. Its one part that would fit, `CronTrigger`, reads crontab weekday
numbers with Monday as 0 (cron: Sunday; `0 9 * * 1-5` would run Tuesday to Saturday) and requires day of month
and day of week to both match where cron accepts either; its maintainer keeps that in 3.x for compatibility
(fixed only in the 4.x pre-releases). Heartbeat schedules must mean what the user's crontab means, so cron
expressions with a time zone should come from a library that follows Debian cron, DST rules included (e.g.
`cronsim`, written for Healthchecks), and recurrences (maintenance windows, rotations) from `dateutil.rrule`,
added with the features that need them. Interval schedules need no library: `next_due`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Generic, Protocol, TypeVar

from mintlog.errors import DependencyUnavailable
from mintlog.metrics import Metrics

__all__ = ["Claim", "DueWorkScheduler", "DueWorkSource", "next_due"]

logger = logging.getLogger(__name__)

ItemT = TypeVar("ItemT")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def next_due(seen: datetime, interval_seconds: float, now: datetime) -> datetime:
    """The due time after `seen` on an interval schedule: one interval later, or one interval after `now` when
    that is already past (work that fell behind restarts from now and never runs a backlog)."""
    interval = timedelta(seconds=interval_seconds)
    following = seen + interval
    return following if following > now else now + interval


@dataclass(frozen=True, slots=True)
class Claim(Generic[ItemT]):
    """One item this instance claimed.

    `key` names the item among the source's items (its id); `due_at` is when it was due; `deadline`, when set,
    is when a run still going has overrun (its claim expires, or its next turn is due).
    """

    key: str
    item: ItemT
    due_at: datetime
    deadline: datetime | None = None


class DueWorkSource(Protocol[ItemT]):
    """Where a `DueWorkScheduler` finds its work and how it does it."""

    async def claim_due(self, now: datetime, limit: int, *, running: Set[str]) -> Sequence[Claim[ItemT]]:
        """Claim up to `limit` items due at `now` for this instance, none of whose key is in `running`.

        A compare-and-set in the store every instance shares: an item claimed here is claimed by no other
        instance for the same due time. Raises `DependencyUnavailable` when the store cannot be reached.
        """
        ...

    async def run(self, item: ItemT) -> None:
        """Do the work of one claimed item (the scheduler logs what it raises, and cancels it on timeout)."""
        ...


class DueWorkScheduler(Generic[ItemT]):
    """Claims due items of one source and runs them in the background with bounded concurrency."""

    def __init__(
        self,
        source: DueWorkSource[ItemT],
        *,
        work: str,
        max_running: int,
        poll_seconds: float,
        metrics: Metrics,
        max_claimed: int | None = None,
        run_timeout_seconds: float | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if max_claimed is not None and max_claimed < max_running:
            raise ValueError(f"max_claimed ({max_claimed}) is below max_running ({max_running})")
        self.work = work
        self._source = source
        self._max_claimed = max_claimed or max_running
        self._slots = asyncio.Semaphore(max_running)
        self._poll_seconds = poll_seconds
        self._run_timeout_seconds = run_timeout_seconds
        self._clock = clock
        self._claimed_total = metrics.due_work_claimed.labels(work)
        self._running_gauge = metrics.due_work_running.labels(work)
        self._start_delay = metrics.due_work_start_delay_seconds.labels(work)
        self._overruns = metrics.due_work_overruns.labels(work)
        self._running: dict[asyncio.Task[None], str] = {}
        self._saturated = False
        self._wake = asyncio.Event()
        self._stopping = False
        self._loop: asyncio.Task[None] | None = None

    @property
    def running_keys(self) -> set[str]:
        """Keys of the items claimed here and not finished."""
        return set(self._running.values())

    async def start(self) -> None:
        """Look for due work in the background until `stop`."""
        self._stopping = False
        self._loop = asyncio.create_task(self._claim_until_stopped(), name=f"due-work-{self.work}")

    async def stop(self, grace_seconds: float | None = None) -> None:
        """Stop claiming and let the runs in progress finish: all of them, or those that finish within
        `grace_seconds` (the rest are cancelled, and run again by the source's rules)."""
        self._stopping = True
        self._wake.set()
        if self._loop is not None:
            await _finish(self._loop, grace_seconds)
            self._loop = None
        if grace_seconds is None:
            await self.drain()
            return
        if self._running:
            _, late = await asyncio.wait(list(self._running), timeout=grace_seconds)
            for task in late:
                logger.warning("%s: %s did not finish within the grace period", self.work, self._running.get(task))
                task.cancel()
            if late:
                await asyncio.wait(late)

    def wake(self) -> None:
        """Look for due work now rather than at the next poll (e.g. new work was just stored)."""
        self._wake.set()

    async def drain(self) -> None:
        """Wait until every run started so far has finished."""
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def claim(self) -> list[Claim[ItemT]]:
        """Claim due work up to the free places and start running it in the background; returns what was
        claimed. Raises `DependencyUnavailable` when the source cannot be reached."""
        return [claim for claim, _ in await self._claim_and_start()]

    async def run_once(self) -> list[Claim[ItemT]]:
        """Claim what is due now and run all of it before returning (tests); returns what was claimed."""
        started = await self._claim_and_start()
        await asyncio.gather(*(task for _, task in started))
        return [claim for claim, _ in started]

    async def _claim_and_start(self) -> list[tuple[Claim[ItemT], asyncio.Task[None]]]:
        free = self._max_claimed - len(self._running)
        if free <= 0:
            self._saturated = True
            return []
        claimed = await self._source.claim_due(self._clock(), free, running=self.running_keys)
        self._saturated = len(claimed) >= free
        started: list[tuple[Claim[ItemT], asyncio.Task[None]]] = []
        for claim in claimed:
            task = asyncio.create_task(self._run(claim), name=f"{self.work}-{claim.key}")
            self._running[task] = claim.key
            task.add_done_callback(self._finished)
            started.append((claim, task))
        self._claimed_total.inc(len(claimed))
        self._running_gauge.set(len(self._running))
        return started

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        self._running_gauge.set(len(self._running))
        if self._saturated:
            self._wake.set()

    async def _claim_until_stopped(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self._claim_and_start()
            except DependencyUnavailable as exc:
                logger.warning("%s: cannot claim due work: %s", self.work, exc)
            except Exception:
                logger.exception("%s: claiming due work failed", self.work)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_seconds)

    async def _run(self, claim: Claim[ItemT]) -> None:
        async with self._slots:
            started_at = self._clock()
            self._start_delay.observe(max(0.0, (started_at - claim.due_at).total_seconds()))
            extra = {"due_work": self.work, "item": claim.key}
            try:
                await asyncio.wait_for(self._source.run(claim.item), self._run_timeout_seconds)
            except DependencyUnavailable as exc:
                logger.warning("%s: %s not done: %s", self.work, claim.key, exc, extra=extra)
            except TimeoutError:
                logger.warning(
                    "%s: %s timed out after %.1fs", self.work, claim.key, self._run_timeout_seconds, extra=extra
                )
            except Exception:
                logger.exception("%s: %s failed", self.work, claim.key, extra=extra)
            finished_at = self._clock()
            if claim.deadline is not None and finished_at > claim.deadline:
                self._overruns.inc()
                logger.warning(
                    "%s: %s overran: it ran %.1fs and ended %.1fs after its deadline",
                    self.work,
                    claim.key,
                    (finished_at - started_at).total_seconds(),
                    (finished_at - claim.deadline).total_seconds(),
                    extra=extra,
                )


async def _finish(task: asyncio.Task[None], grace_seconds: float | None) -> None:
    """Wait for `task` (at most `grace_seconds` when given), then cancel it if it is still running."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(task), grace_seconds)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
