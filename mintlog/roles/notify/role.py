"""The notify role: incident events become webhooks, emails and chat messages (`DeliveryWorker`), messages
to people become deliveries (`person_notifier`), alert events become incidents (the incident worker), and
triggered incidents escalate by their policy (`EscalationWorker`).

Any number of instances share the durable consumers; each delivery attempt is claimed through the database, so
exactly one instance makes it.
"""

from __future__ import annotations

import asyncio
import logging

from mintlog.roles.notify.delivery_worker import DeliveryWorker
from mintlog.roles.notify.escalation_worker import EscalationWorker
from mintlog.roles.notify.incident_worker import IncidentWorker
from mintlog.roles.notify.person_notifier import StoredPersonNotifier
from mintlog.runtime import Runtime

__all__ = ["NotifyRole"]

logger = logging.getLogger(__name__)


class NotifyRole:
    """Runs the delivery worker (and the incident worker) of this process."""

    name = "notify"

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        settings = runtime.settings
        self.deliveries = DeliveryWorker(
            bus=runtime.bus,
            notifications=runtime.notifications,
            outbound=runtime.outbound,
            smtp=runtime.smtp,
            settings=settings.notify,
            pipeline=settings.pipeline,
            metrics=runtime.metrics,
            grace_seconds=settings.http.shutdown_grace_seconds,
            incidents=runtime.incidents,
        )
        self.incidents = IncidentWorker(runtime)
        self.person_notifier = StoredPersonNotifier(
            runtime.notifications, metrics=runtime.metrics, wake=self.deliveries.wake
        )
        """The `PersonNotifier` of this process (for the escalation engine): its deliveries go out here."""
        self.escalation = EscalationWorker(
            runtime, person_notifier=runtime.person_notifier or self.person_notifier, on_enqueued=self.deliveries.wake
        )

    async def start(self) -> None:
        await self.deliveries.start()
        await self.incidents.start()
        await self.escalation.start()
        logger.info("notify role started")

    async def stop(self) -> None:
        """Stop the three workers together: each lets its work in hand finish within the grace period, and
        whatever one leaves (a claimed step, a stored delivery) is durable and picked up after a restart."""
        await asyncio.gather(
            self.escalation.stop(),
            self.incidents.stop(self._runtime.settings.http.shutdown_grace_seconds),
            self.deliveries.stop(),
        )
        logger.info("notify role stopped")
