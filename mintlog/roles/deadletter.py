"""Dead-lettering: a bus message that cannot be processed is parked on `deadletter.<subject>`, with why."""

from __future__ import annotations

import logging

from mintlog.errors import DependencyUnavailable
from mintlog.metrics import Metrics
from mintlog.ports.bus import BusMessage, EventBus

__all__ = ["dead_letter"]

logger = logging.getLogger(__name__)


def _header_safe(text: str) -> str:
    return " ".join(text.split())[:512]


async def dead_letter(
    bus: EventBus,
    message: BusMessage,
    *,
    consumer: str,
    reason_code: str,
    reason: str,
    metrics: Metrics,
    retry_delay_seconds: float,
) -> None:
    """Publish the message unchanged to `deadletter.<its subject>` with the reason in headers, then stop its
    redelivery. If the bus cannot take the dead letter, the message is nak'ed instead (it will come back)."""
    headers = dict(message.headers)
    headers.update(
        {
            "Mintlog-Dead-Reason": _header_safe(reason),
            "Mintlog-Dead-Code": reason_code,
            "Mintlog-Dead-Consumer": consumer,
            "Mintlog-Original-Subject": message.subject,
            "Mintlog-Deliveries": str(message.num_delivered),
        }
    )
    headers.pop("Nats-Msg-Id", None)
    try:
        await bus.publish(f"deadletter.{message.subject}", message.data, headers=headers)
    except DependencyUnavailable:
        await message.nak(retry_delay_seconds)
        return
    await message.term()
    metrics.dead_letters.labels(consumer, reason_code).inc()
    logger.error(
        "dead-lettered a message from %s after %s deliveries: %s",
        message.subject,
        message.num_delivered,
        reason,
        extra={"consumer": consumer, "reason_code": reason_code},
    )
