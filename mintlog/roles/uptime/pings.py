"""`PingConsumer`: the uptime role's reader of `UPTIME_PINGS` (`uptime.pings.>`), through the durable consumer
`uptime-pings` shared by every uptime instance.

Guarantees:
- a ping is acked only once it is recorded (`HeartbeatRecorder.record`) and its log event published; a
  database or bus outage, or a status that moved meanwhile, naks it for a redelivery after
  `_RETRY_DELAY_SECONDS`;
- a message that cannot be decoded, whose subject is not its tenant's, or that failed `_MAX_DELIVERIES` times
  is dead-lettered with its reason;
- pings of one fetch are applied one after the other, in the order the bus delivers them (the order ingest
  published them in), so a `/start` followed by a success measures that run.
"""

from __future__ import annotations

import contextlib
import logging

import msgspec

from mintlog.domain.streams import PINGS_FILTER, UPTIME_PINGS, decode_ping, pings_subject
from mintlog.errors import DependencyUnavailable
from mintlog.metrics import Metrics
from mintlog.ports.bus import BusMessage, EventBus
from mintlog.roles.kit.consumer import ConsumerLoop
from mintlog.roles.kit.deadletter import DeadLetters
from mintlog.roles.uptime.heartbeats import HeartbeatRecorder, PingRetry

__all__ = ["PING_CONSUMER", "PingConsumer"]

logger = logging.getLogger(__name__)

PING_CONSUMER = "uptime-pings"
_FETCH_BATCH = 64
_ACK_WAIT_SECONDS = 30.0
_RETRY_DELAY_SECONDS = 1.0
_MAX_DELIVERIES = 20


class PingConsumer:
    """Consumes heartbeat pings and hands each to the `HeartbeatRecorder`."""

    def __init__(self, *, bus: EventBus, recorder: HeartbeatRecorder, metrics: Metrics) -> None:
        self._recorder = recorder
        self._dead_letters = DeadLetters(
            bus, consumer=PING_CONSUMER, metrics=metrics, retry_delay_seconds=_RETRY_DELAY_SECONDS
        )
        self._loop = ConsumerLoop(
            name=PING_CONSUMER,
            bus=bus,
            stream=UPTIME_PINGS.name,
            durable=PING_CONSUMER,
            filter_subject=PINGS_FILTER,
            ack_wait_seconds=_ACK_WAIT_SECONDS,
            fetch_batch=_FETCH_BATCH,
            handle=self._handle_all,
        )

    async def start(self) -> None:
        """Bind the durable consumer and consume in the background."""
        await self._loop.start()

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Let the pings in hand finish (at most `grace_seconds`), then close the consumer."""
        await self._loop.stop(grace_seconds)

    async def _handle_all(self, messages: list[BusMessage]) -> None:
        for message in messages:
            await self.handle(message)

    async def handle(self, message: BusMessage) -> None:
        """Process one delivery and ack, nak or dead-letter it; never raises."""
        try:
            await self._handle(message)
        except (DependencyUnavailable, PingRetry) as exc:
            logger.info("ping on %s postponed: %s", message.subject, exc or type(exc).__name__)
            with contextlib.suppress(Exception):
                await message.nak(_RETRY_DELAY_SECONDS)
        except Exception:
            logger.exception("ping on %s failed; it will be redelivered", message.subject)
            with contextlib.suppress(Exception):
                await message.nak(_RETRY_DELAY_SECONDS)

    async def _handle(self, message: BusMessage) -> None:
        if message.num_delivered > _MAX_DELIVERIES:
            await self._dead_letters.send(message, "too_many_deliveries", f"failed {message.num_delivered - 1} times")
            return
        try:
            ping = decode_ping(message.data)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            await self._dead_letters.send(message, "malformed", f"not a heartbeat ping: {exc}")
            return
        if message.subject != pings_subject(ping.tenant_id):
            await self._dead_letters.send(
                message, "wrong_tenant", f"ping of tenant {ping.tenant_id!r} on {message.subject}"
            )
            return
        await self._recorder.record(ping)
        await message.ack()
