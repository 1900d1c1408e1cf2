"""The alert scheduler with a fake rule store and evaluator: due times, claims, in-flight rules, the bound."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from mintlog.domain.alert_rules import AlertRule, AlertRuleSpec, RuleQuery
from mintlog.roles.alert.evaluator import Evaluation, RuleEvaluator
from mintlog.roles.alert.scheduler import AlertScheduler
from mintlog.roles.kit.scheduler import next_due
from mintlog.settings import AlertSettings

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_due_times_stay_on_their_grid_unless_the_rule_fell_behind() -> None:
    assert next_due(T0, 60, T0 + timedelta(seconds=1)) == T0 + timedelta(seconds=60)
    # Two intervals late: the next due time is one interval from now, with no backlog to catch up.
    assert next_due(T0, 60, T0 + timedelta(seconds=125)) == T0 + timedelta(seconds=185)


class FakeRules:
    """Due rules and compare-and-set claims, in memory."""

    def __init__(self, rules: list[AlertRule]) -> None:
        self.next_at = {rule.id: rule.next_evaluation_at for rule in rules}
        self.rules = {rule.id: rule for rule in rules}

    async def due_rules(self, now: datetime, *, limit: int) -> Sequence[AlertRule]:
        due = [rule_id for rule_id, at in self.next_at.items() if at <= now][:limit]
        return [dataclasses.replace(self.rules[rule_id], next_evaluation_at=self.next_at[rule_id]) for rule_id in due]

    async def claim_evaluation(self, rule_id: str, *, seen: datetime, next_at: datetime) -> bool:
        if self.next_at[rule_id] != seen:
            return False
        self.next_at[rule_id] = next_at
        return True


class SlowEvaluator:
    """Counts evaluations and how many run at once; each waits until `release` is set."""

    def __init__(self) -> None:
        self.evaluated: list[str] = []
        self.running = 0
        self.most_at_once = 0
        self.release = asyncio.Event()

    async def evaluate(self, rule: AlertRule) -> Evaluation:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await self.release.wait()
        finally:
            self.running -= 1
        self.evaluated.append(rule.id)
        return Evaluation("ok", [])


def rule(number: int) -> AlertRule:
    spec = AlertRuleSpec(name=f"r{number}", query=RuleQuery(), threshold=1, window_seconds=60, interval_seconds=10)
    return AlertRule(f"rule_{number}", "acme", spec, T0, T0, T0)


async def test_each_due_rule_is_claimed_once_and_evaluated_within_the_bound() -> None:
    rules = FakeRules([rule(number) for number in range(5)])
    evaluator = SlowEvaluator()
    now = [T0]
    scheduler = AlertScheduler(
        rules=cast("Any", rules),
        evaluator=cast("RuleEvaluator", evaluator),
        settings=AlertSettings(max_concurrent_evaluations=2),
        clock=lambda: now[0],
    )
    assert sorted(await scheduler.tick()) == [f"rule_{number}" for number in range(5)]
    await asyncio.sleep(0.01)
    assert evaluator.most_at_once == 2
    now[0] = T0 + timedelta(seconds=10)
    assert await scheduler.tick() == []  # due again, but still being evaluated here: not claimed twice
    evaluator.release.set()
    await scheduler.drain()
    assert sorted(evaluator.evaluated) == [f"rule_{number}" for number in range(5)]
    assert evaluator.most_at_once == 2
    assert len(await scheduler.tick()) == 5
    await scheduler.drain()
    assert set(rules.next_at.values()) == {T0 + timedelta(seconds=20)}
