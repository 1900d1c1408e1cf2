"""`EscalationWorker`: the notify role's escalation side, the `notify-escalation` consumer (`EscalationStarter`)
and the scheduler of due escalation tasks (`EscalationSteps` on the role kit's `DueWorkScheduler`, work
`escalation-steps`, one item a batch of up to `MINTLOG_ESCALATION__BATCH_SIZE` tasks)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from mintlog.domain.escalation import EscalationTask
from mintlog.ports.person_notify import PersonNotifier
from mintlog.roles.kit.base import instance_holder
from mintlog.roles.kit.link_keys import LinkKeys
from mintlog.roles.kit.scheduler import DueWorkScheduler
from mintlog.roles.notify.escalation_starter import EscalationStarter, PolicySources
from mintlog.roles.notify.escalation_steps import DueEscalationTasks, EscalationSteps, StepPorts
from mintlog.runtime import Runtime

__all__ = ["EscalationWorker"]

logger = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class EscalationWorker:
    """Starts runs from incident events and runs their due steps; any number of instances share the work."""

    name = "escalation-worker"

    def __init__(
        self,
        runtime: Runtime,
        *,
        holder: str | None = None,
        clock: Callable[[], datetime] = _utcnow,
        person_notifier: PersonNotifier | None = None,
        on_enqueued: Callable[[], None] = lambda: None,
    ) -> None:
        settings = runtime.settings
        self._runtime = runtime
        self._person_notifier = person_notifier or runtime.person_notifier
        self._grace_seconds = settings.http.shutdown_grace_seconds
        ports = StepPorts(
            escalation=runtime.escalation,
            incidents=runtime.incidents,
            notifications=runtime.notifications,
            directory=runtime.oncall,
            notifier=self._person_notifier,
        )
        self.steps = EscalationSteps(
            ports,
            settings.escalation,
            links=LinkKeys(settings.escalation, runtime.escalation),
            holder=holder or instance_holder(),
            clock=clock,
            on_enqueued=on_enqueued,
        )
        self.scheduler: DueWorkScheduler[Sequence[EscalationTask]] = DueWorkScheduler(
            DueEscalationTasks(
                runtime.escalation,
                self.steps,
                settings.escalation.claim_seconds,
                batch_size=settings.escalation.batch_size,
                lookahead_seconds=settings.escalation.lookahead_seconds,
            ),
            work="escalation-steps",
            max_running=max(settings.escalation.batches_held, settings.escalation.batches_running),
            poll_seconds=settings.escalation.poll_seconds,
            metrics=runtime.metrics,
            clock=clock,
        )
        self.starter = EscalationStarter(
            bus=runtime.bus,
            escalation=runtime.escalation,
            incidents=runtime.incidents,
            policies=PolicySources(runtime.escalation, runtime.alert_rules, runtime.monitors),
            ack_wait_seconds=settings.pipeline.ack_wait_seconds,
            clock=clock,
            on_started=self.scheduler.wake,
        )

    async def start(self) -> None:
        """Consume incident events and run due steps."""
        if self._person_notifier is None:
            logger.warning(
                "escalation: no person notifier is wired; steps reach channels only, and person or schedule "
                "targets are recorded as not notified"
            )
        await self.starter.start()
        await self.scheduler.start()

    async def stop(self) -> None:
        """Stop consuming and claiming; steps in progress finish within the grace period (the rest run again
        once their claims expire)."""
        await asyncio.gather(self.starter.stop(self._grace_seconds), self.scheduler.stop(self._grace_seconds))
