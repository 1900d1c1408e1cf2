"""The alert scheduler: find due rules, claim each tick through the database, evaluate with bounded concurrency.

Every alert instance runs one. Each wakes every `tick_seconds` (at most a second), reads the active rules
whose `next_evaluation_at` has come, and claims each with a compare-and-set that moves `next_evaluation_at`
one interval on (`AlertRuleStore.claim_evaluation`): of several instances that saw the same due rule,
exactly one moves it, and only that one evaluates it. A rule is evaluated at its due times
`t0, t0 + interval, …` (a rule that fell behind restarts from now, never evaluating a backlog).

An instance that dies mid-evaluation loses that tick; the next one is claimed by whichever instance sees it
first. A rule that is still being evaluated here is not claimed again by this instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from mintlog.domain.alert_rules import AlertRule
from mintlog.errors import DependencyUnavailable
from mintlog.ports.alerting import AlertRuleStore
from mintlog.roles.alert.evaluator import RuleEvaluator
from mintlog.settings import AlertSettings

__all__ = ["AlertScheduler", "next_due"]

logger = logging.getLogger(__name__)

_DUE_RULES_PER_TICK = 500


def _utcnow() -> datetime:
    return datetime.now(UTC)


def next_due(seen: datetime, interval_seconds: int, now: datetime) -> datetime:
    """The due time after `seen`: one interval later, or one interval after `now` when that is already past."""
    interval = timedelta(seconds=interval_seconds)
    following = seen + interval
    return following if following > now else now + interval


class AlertScheduler:
    """Claims due rules and runs their evaluations in the background, `max_concurrent_evaluations` at a time."""

    name = "alert-scheduler"

    def __init__(
        self,
        *,
        rules: AlertRuleStore,
        evaluator: RuleEvaluator,
        settings: AlertSettings,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._rules = rules
        self._evaluator = evaluator
        self._settings = settings
        self._clock = clock
        self._slots = asyncio.Semaphore(settings.max_concurrent_evaluations)
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._loop: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._loop = asyncio.create_task(self._run(), name="alert-scheduler")

    async def stop(self) -> None:
        """Stop claiming, and let the evaluations in progress finish (they are short and bounded)."""
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None
        await self.drain()

    async def drain(self) -> None:
        """Wait for every evaluation started so far."""
        while self._in_flight:
            await asyncio.gather(*self._in_flight.values(), return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except DependencyUnavailable as exc:
                logger.warning("alert scheduler cannot read due rules: %s", exc)
            except Exception:
                logger.exception("alert scheduler tick failed")
            await asyncio.sleep(self._settings.tick_seconds)

    async def tick(self) -> list[str]:
        """Claim every due rule this instance wins and start its evaluation; returns the ids claimed."""
        now = self._clock()
        claimed: list[str] = []
        for rule in await self._rules.due_rules(now, limit=_DUE_RULES_PER_TICK):
            if rule.id in self._in_flight:
                continue
            next_at = next_due(rule.next_evaluation_at, rule.spec.interval_seconds, now)
            if not await self._rules.claim_evaluation(rule.id, seen=rule.next_evaluation_at, next_at=next_at):
                continue
            claimed.append(rule.id)
            task = asyncio.create_task(self._evaluate(rule), name=f"alert-rule-{rule.id}")
            self._in_flight[rule.id] = task
            task.add_done_callback(lambda _done, rule_id=rule.id: self._in_flight.pop(rule_id, None))
        return claimed

    async def _evaluate(self, rule: AlertRule) -> None:
        async with self._slots:
            try:
                await asyncio.wait_for(
                    self._evaluator.evaluate(rule), timeout=self._settings.evaluation_timeout_seconds * 2
                )
            except DependencyUnavailable as exc:
                logger.warning("alert rule %s not evaluated: %s", rule.id, exc, extra={"rule_id": rule.id})
            except TimeoutError:
                logger.warning("alert rule %s evaluation timed out", rule.id, extra={"rule_id": rule.id})
            except Exception:
                logger.exception("alert rule %s evaluation failed", rule.id, extra={"rule_id": rule.id})
