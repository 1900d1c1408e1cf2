"""The alert role: evaluates every active alert rule on its interval and publishes each state transition.

How rules are judged is in `evaluator` and `state_machine`; how ticks are claimed so that one instance among
many evaluates each in `scheduler`; the user-facing reference is docs/alerting.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from mintlog.roles.alert.evaluator import RuleEvaluator
from mintlog.roles.alert.scheduler import AlertScheduler
from mintlog.runtime import Runtime

__all__ = ["AlertRole"]

logger = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AlertRole:
    """Runs the alert scheduler over the runtime's rules, log store and bus."""

    name = "alert"

    def __init__(self, runtime: Runtime, *, clock: Callable[[], datetime] = _utcnow) -> None:
        settings = runtime.settings.alert
        self.evaluator = RuleEvaluator(
            store=runtime.store,
            rules=runtime.alert_rules,
            bus=runtime.bus,
            settings=settings,
            metrics=runtime.metrics,
            clock=clock,
        )
        self.scheduler = AlertScheduler(
            rules=runtime.alert_rules, evaluator=self.evaluator, settings=settings, metrics=runtime.metrics, clock=clock
        )

    async def start(self) -> None:
        await self.scheduler.start()
        logger.info("alert role started")

    async def stop(self) -> None:
        await self.scheduler.stop()
        logger.info("alert role stopped")
