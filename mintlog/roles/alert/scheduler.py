"""The alert scheduler: due rules are claimed through the database and evaluated with bounded concurrency.

Every alert instance runs one, on the role kit's `DueWorkScheduler`. Each looks for due rules every
`tick_seconds` (at most a second): the active rules whose `next_evaluation_at` has come. It claims each with a
compare-and-set that moves `next_evaluation_at` one interval on (`AlertRuleStore.claim_evaluation`): of several
instances that saw the same due rule, exactly one moves it, and only that one evaluates it. A rule is evaluated
at its due times `t0, t0 + interval, …` (a rule that fell behind restarts from now, never evaluating a
backlog). At most `max_concurrent_evaluations` evaluations run at once; one that takes longer than twice
`evaluation_timeout_seconds` is cancelled.

An instance that dies mid-evaluation loses that tick; the next one is claimed by whichever instance sees it
first. A rule that is still being evaluated here is not claimed again by this instance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence, Set
from datetime import UTC, datetime

from mintlog.domain.alert_rules import AlertRule
from mintlog.metrics import Metrics
from mintlog.ports.alerting import AlertRuleStore
from mintlog.roles.alert.evaluator import RuleEvaluator
from mintlog.roles.kit.scheduler import Claim, DueWorkScheduler, next_due
from mintlog.settings import AlertSettings

__all__ = ["AlertScheduler", "DueRules"]

_DUE_RULES_PER_TICK = 500


def _utcnow() -> datetime:
    return datetime.now(UTC)


class DueRules:
    """The alert rules as due work: a rule is due at `next_evaluation_at`; claiming it moves that on."""

    def __init__(self, rules: AlertRuleStore, evaluator: RuleEvaluator) -> None:
        self._rules = rules
        self._evaluator = evaluator

    async def claim_due(self, now: datetime, limit: int, *, running: Set[str]) -> Sequence[Claim[AlertRule]]:
        """Claim up to `limit` due rules not in `running`; each claim is due again at its next due time."""
        claimed: list[Claim[AlertRule]] = []
        for rule in await self._rules.due_rules(now, limit=limit + len(running)):
            if rule.id in running:
                continue
            next_at = next_due(rule.next_evaluation_at, rule.spec.interval_seconds, now)
            if await self._rules.claim_evaluation(rule.id, seen=rule.next_evaluation_at, next_at=next_at):
                claimed.append(Claim(rule.id, rule, due_at=rule.next_evaluation_at, deadline=next_at))
                if len(claimed) == limit:
                    break
        return claimed

    async def run(self, item: AlertRule) -> None:
        await self._evaluator.evaluate(item)


class AlertScheduler:
    """Claims due rules and runs their evaluations in the background, `max_concurrent_evaluations` at a time."""

    name = "alert-scheduler"

    def __init__(
        self,
        *,
        rules: AlertRuleStore,
        evaluator: RuleEvaluator,
        settings: AlertSettings,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._work = DueWorkScheduler(
            DueRules(rules, evaluator),
            work="alert-rules",
            max_running=settings.max_concurrent_evaluations,
            max_claimed=max(_DUE_RULES_PER_TICK, settings.max_concurrent_evaluations),
            poll_seconds=settings.tick_seconds,
            run_timeout_seconds=settings.evaluation_timeout_seconds * 2,
            metrics=metrics or Metrics(),
            clock=clock,
        )

    async def start(self) -> None:
        await self._work.start()

    async def stop(self) -> None:
        """Stop claiming, and let the evaluations in progress finish (they are short and bounded)."""
        await self._work.stop()

    async def drain(self) -> None:
        """Wait for every evaluation started so far."""
        await self._work.drain()

    async def tick(self) -> list[str]:
        """Claim every due rule this instance wins and start its evaluation; returns the ids claimed."""
        return [claim.key for claim in await self._work.claim()]
