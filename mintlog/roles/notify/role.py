"""The notify role: incident events become signed webhooks (`DeliveryWorker`), alert events become
incidents (the incident worker), and triggered incidents escalate by their policy (`EscalationWorker`).

Any number of instances share the durable consumers; each delivery attempt is claimed through the database, so
exactly one instance makes it.
"""

from __future__ import annotations

import logging

from mintlog.roles.notify.delivery_worker import DeliveryWorker
from mintlog.roles.notify.escalation_worker import EscalationWorker
from mintlog.roles.notify.incident_worker import IncidentWorker
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
            settings=settings.notify,
            pipeline=settings.pipeline,
            metrics=runtime.metrics,
            grace_seconds=settings.http.shutdown_grace_seconds,
        )
        self.incidents = IncidentWorker(runtime)
        self.escalation = EscalationWorker(runtime, on_enqueued=self.deliveries.wake_sender)

    async def start(self) -> None:
        await self.deliveries.start()
        await self.incidents.start()
        await self.escalation.start()
        logger.info("notify role started")

    async def stop(self) -> None:
        await self.escalation.stop()
        await self.incidents.stop(self._runtime.settings.http.shutdown_grace_seconds)
        await self.deliveries.stop()
        logger.info("notify role stopped")
