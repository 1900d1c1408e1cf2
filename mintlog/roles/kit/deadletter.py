"""Dead-lettering: a bus message that cannot be processed is parked on `deadletter.<subject>`, with why.

Every consumer (pipeline, archive, notify) dead-letters through its `DeadLetters`, so every dead letter has the
same headers and is counted the same way.
"""

from __future__ import annotations

import logging

from mintlog.domain.streams import dead_letter_subject
from mintlog.errors import DependencyUnavailable
from mintlog.metrics import Metrics
from mintlog.ports.bus import BusMessage, EventBus

__all__ = ["DeadLetters"]

logger = logging.getLogger(__name__)


def _header_safe(text: str) -> str:
    return " ".join(text.split())[:512]


class DeadLetters:
    """Where one consumer (`consumer`, its name in headers, metrics and logs) parks what it cannot process."""

    def __init__(self, bus: EventBus, *, consumer: str, metrics: Metrics, retry_delay_seconds: float) -> None:
        self._bus = bus
        self._consumer = consumer
        self._metrics = metrics
        self._retry_delay_seconds = retry_delay_seconds

    async def send(self, message: BusMessage, reason_code: str, reason: str) -> None:
        """Publish `message` unchanged to `deadletter.<its subject>`, then stop its redelivery (`term`).

        Its headers are kept (less `Nats-Msg-Id`, so the dead letter is never taken for a duplicate) and
        `Mintlog-Dead-Reason`, `Mintlog-Dead-Code`, `Mintlog-Dead-Consumer`, `Mintlog-Original-Subject` and
        `Mintlog-Deliveries` added; it is counted in `mintlog_dead_letters_total{consumer,reason}`. If the bus
        cannot take the dead letter, the message is nak'ed after `retry_delay_seconds` instead (it comes back).
        """
        headers = dict(message.headers)
        headers.update(
            {
                "Mintlog-Dead-Reason": _header_safe(reason),
                "Mintlog-Dead-Code": reason_code,
                "Mintlog-Dead-Consumer": self._consumer,
                "Mintlog-Original-Subject": message.subject,
                "Mintlog-Deliveries": str(message.num_delivered),
            }
        )
        headers.pop("Nats-Msg-Id", None)
        try:
            await self._bus.publish(dead_letter_subject(message.subject), message.data, headers=headers)
        except DependencyUnavailable:
            await message.nak(self._retry_delay_seconds)
            return
        await message.term()
        self._metrics.dead_letters.labels(self._consumer, reason_code).inc()
        logger.error(
            "dead-lettered a message from %s after %s deliveries: %s",
            message.subject,
            message.num_delivered,
            reason,
            extra={"consumer": self._consumer, "reason_code": reason_code},
        )
