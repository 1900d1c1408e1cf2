"""The delivery worker: incident events → one persisted delivery per channel → signed webhooks, retried.

Two loops in every notify instance:

1. The durable consumer `notify-deliveries` on `INCIDENTS_EVENTS` (`incidents.events.>`). For each
   `IncidentEvent` with `notify` true, it inserts one delivery per channel of `channel_ids` that exists and is
   active in the event's tenant, with the id `delivery_id(event id, channel id)` (an existing one is left
   alone), and acks only after the insert committed. Database down → nak and retry; after `max_deliveries`
   the message is dead-lettered. An undecodable message is dead-lettered at once.
2. The sender. It claims due deliveries in the database (`claim_due_deliveries`: one claimer per delivery,
   whichever instance asks), POSTs each with the Standard Webhooks headers (the delivery id is the
   `webhook-id` of every attempt) and records the outcome while it still owns the claim:
   2xx → `delivered`; 410 → the channel is disabled and the delivery `dead`; 429 → retried after its
   `Retry-After` (at most `max_retry_after_seconds`), else the schedule; anything else (timeout, refused
   connection, refused address, redirect, other status) → retried after the next delay of the schedule, with
   jitter; the attempt that reaches `max_attempts` → `dead`, with the last error as its reason.

The schedule lives in the database (`next_attempt_at`), so it survives restarts. A sender that dies mid-attempt
leaves its claim behind; once it expires (`claim_seconds`) another sender (or the restarted one) makes the
attempt again, with the same `webhook-id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import msgspec

from mintlog.domain.alerting import IncidentEvent, decode_incident_event
from mintlog.domain.channels import Channel, Delivery, DeliveryOutcome, retry_delay
from mintlog.domain.webhooks import delivery_id, incident_payload, signature_headers
from mintlog.egress import AttemptResult, EgressClient
from mintlog.errors import DependencyUnavailable
from mintlog.metrics import Metrics
from mintlog.ports.bus import BusMessage, EventBus
from mintlog.ports.notifications import NotificationStore
from mintlog.roles.base import instance_holder
from mintlog.roles.consumer import ConsumerLoop
from mintlog.roles.deadletter import dead_letter
from mintlog.settings import NotifySettings, PipelineSettings

__all__ = ["DELIVERY_CONSUMER", "DeliveryWorker", "deliveries_for"]

logger = logging.getLogger(__name__)

DELIVERY_CONSUMER = "notify-deliveries"
_RETRY_DELAY_SECONDS = 2.0
_FETCH_BATCH = 64


def _utcnow() -> datetime:
    return datetime.now(UTC)


def deliveries_for(event: IncidentEvent, channel_ids: list[str], *, now: datetime) -> list[Delivery]:
    """The new deliveries of `event` to `channel_ids`: pending, due now, one per channel."""
    payload = incident_payload(event)
    return [
        Delivery(
            id=delivery_id(event.id, channel_id),
            tenant_id=event.tenant_id,
            channel_id=channel_id,
            event_id=event.id,
            event_type=event.type,
            incident_id=event.incident_id,
            payload=payload,
            status="pending",
            attempts=0,
            round_attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        for channel_id in channel_ids
    ]


class DeliveryWorker:
    """Turns incident events into deliveries and sends them; any number of instances share the work."""

    name = "delivery-worker"

    def __init__(
        self,
        *,
        bus: EventBus,
        notifications: NotificationStore,
        client: EgressClient,
        settings: NotifySettings,
        pipeline: PipelineSettings,
        metrics: Metrics,
        grace_seconds: float,
        holder: str | None = None,
        clock: Callable[[], datetime] = _utcnow,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self._bus = bus
        self._store = notifications
        self._client = client
        self._settings = settings
        self._pipeline = pipeline
        self._metrics = metrics
        self._grace_seconds = grace_seconds
        self.holder = holder or instance_holder()
        self._clock = clock
        self._uniform = uniform
        self._loop = ConsumerLoop(
            name=DELIVERY_CONSUMER,
            bus=bus,
            stream="INCIDENTS_EVENTS",
            durable=DELIVERY_CONSUMER,
            filter_subject="incidents.events.>",
            ack_wait_seconds=pipeline.ack_wait_seconds,
            fetch_batch=_FETCH_BATCH,
            handle=self.handle,
        )
        self._wake = asyncio.Event()
        self._stopping = False
        self._sender: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    async def start(self, *, consume: bool = True, send: bool = True) -> None:
        """Start consuming incident events and sending due deliveries (tests may start only one of them)."""
        self._stopping = False
        await self._client.start()
        if consume:
            await self._loop.start()
        if send:
            self._sender = asyncio.create_task(self._send_loop(), name="notify-sender")

    async def stop(self) -> None:
        """Stop consuming, let attempts in flight finish within the grace period (the rest are retried once
        their claims expire) and close the HTTP client."""
        self._stopping = True
        self._wake.set()
        await self._loop.stop(self._grace_seconds)
        if self._sender is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._sender), self._grace_seconds)
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
            self._sender = None
        if self._in_flight:
            _, pending = await asyncio.wait(self._in_flight, timeout=self._grace_seconds)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        await self._client.close()

    # Consuming incident events

    async def handle(self, messages: list[BusMessage]) -> None:
        """Insert the deliveries of each message, then ack it (nak or dead-letter it when that fails)."""
        created = 0
        for message in messages:
            try:
                event = decode_incident_event(message.data)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                await self._dead_letter(message, "undecodable", f"incident event cannot be decoded: {exc}")
                continue
            try:
                created += await self._enqueue(event)
            except DependencyUnavailable as exc:
                if message.num_delivered >= self._pipeline.max_deliveries:
                    await self._dead_letter(message, "store_unavailable", f"deliveries could not be stored: {exc}")
                else:
                    logger.warning("deliveries of incident event %s not stored yet: %s", event.id, exc)
                    await message.nak(self._retry_delay(message))
                continue
            await message.ack()
        if created:
            self._wake.set()

    async def _enqueue(self, event: IncidentEvent) -> int:
        if not event.notify or not event.channel_ids:
            return 0
        channel_ids = await self._store.active_channel_ids(event.tenant_id, event.channel_ids)
        skipped = [channel_id for channel_id in event.channel_ids if channel_id not in channel_ids]
        if skipped:
            logger.info(
                "incident event %s: channels %s are absent or inactive and get nothing",
                event.id,
                ",".join(skipped),
                extra={"tenant_id": event.tenant_id},
            )
        created = await self._store.enqueue_deliveries(deliveries_for(event, channel_ids, now=self._clock()))
        self._metrics.notify_deliveries_enqueued.inc(created)
        return created

    def _retry_delay(self, message: BusMessage) -> float:
        return _RETRY_DELAY_SECONDS * message.num_delivered

    async def _dead_letter(self, message: BusMessage, code: str, reason: str) -> None:
        await dead_letter(
            self._bus,
            message,
            consumer=DELIVERY_CONSUMER,
            reason_code=code,
            reason=reason,
            metrics=self._metrics,
            retry_delay_seconds=_RETRY_DELAY_SECONDS,
        )

    # Sending

    async def _send_loop(self) -> None:
        while not self._stopping:
            free = self._settings.concurrency - len(self._in_flight)
            claimed: list[Delivery] = []
            if free > 0:
                try:
                    claimed = await self._claim(free)
                except DependencyUnavailable as exc:
                    logger.warning("cannot claim due deliveries: %s", exc)
            for delivery in claimed:
                task = asyncio.create_task(self.attempt(delivery), name=f"notify-attempt-{delivery.id}")
                self._in_flight.add(task)
                task.add_done_callback(self._attempt_done)
            if free > 0 and len(claimed) == free:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._settings.poll_interval_seconds)

    def _attempt_done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._wake.set()

    async def _claim(self, limit: int) -> list[Delivery]:
        now = self._clock()
        until = now + timedelta(seconds=self._settings.claim_seconds)
        return await self._store.claim_due_deliveries(self.holder, now=now, until=until, limit=limit)

    async def run_once(self) -> list[Delivery]:
        """Claim what is due now and attempt it all before returning (tests). Returns what was attempted."""
        claimed = await self._claim(self._settings.concurrency)
        await asyncio.gather(*(self.attempt(delivery) for delivery in claimed))
        return claimed

    async def attempt(self, delivery: Delivery) -> None:
        """Make one attempt of a delivery this sender has claimed and record its outcome."""
        try:
            channel = await self._store.get_channel(delivery.tenant_id, delivery.channel_id)
            outcome, label = await self._send(delivery, channel)
            if not await self._store.record_outcome(delivery.id, self.holder, outcome):
                label = "lost_claim"
                logger.warning("delivery %s: the claim expired before the outcome was recorded", delivery.id)
        except DependencyUnavailable as exc:
            logger.warning(
                "delivery %s: outcome not recorded (%s); it is retried when its claim expires", delivery.id, exc
            )
            return
        except Exception:
            logger.exception("delivery %s failed unexpectedly; it is retried when its claim expires", delivery.id)
            return
        self._metrics.notify_deliveries.labels(label).inc()
        log = logger.info if outcome.status == "delivered" else logger.warning
        log(
            "delivery %s to channel %s: %s after attempt %d%s",
            delivery.id,
            delivery.channel_id,
            outcome.status,
            delivery.attempts,
            f" ({outcome.error})" if outcome.error else "",
            extra={"tenant_id": delivery.tenant_id, "event_id": delivery.event_id, "status_code": outcome.status_code},
        )

    async def _send(self, delivery: Delivery, channel: Channel | None) -> tuple[DeliveryOutcome, str]:
        now = self._clock()
        if channel is None:
            return DeliveryOutcome("dead", now, None, None, "the channel was deleted"), "dead"
        if not channel.is_active:
            reason = f"the channel is disabled: {channel.disabled_reason or 'switched off'}"
            return DeliveryOutcome("dead", now, None, None, reason), "dead"
        headers = {
            **channel.headers,
            **signature_headers(channel.secret, delivery.id, int(now.timestamp()), delivery.payload),
        }
        result = await self._client.post(
            channel.url, delivery.payload, headers, timeout_seconds=self._settings.timeout_seconds
        )
        self._metrics.notify_attempt_seconds.observe(result.duration_seconds)
        return self._outcome(delivery, result, now)

    def _outcome(self, delivery: Delivery, result: AttemptResult, now: datetime) -> tuple[DeliveryOutcome, str]:
        duration_ms = round(result.duration_seconds * 1000)
        if result.ok:
            return DeliveryOutcome("delivered", now, duration_ms, result.status_code, None), "delivered"
        error = result.error or "failed"
        if result.status_code == 410:
            reason = f"the receiver answered 410 Gone at {now.isoformat()}"
            outcome = DeliveryOutcome(
                "dead", now, duration_ms, 410, f"{error}; the channel was disabled", disable_channel=reason
            )
            return outcome, "disabled"
        if delivery.round_attempts >= self._settings.max_attempts:
            reason = f"gave up after {delivery.round_attempts} attempts: {error}"
            return DeliveryOutcome("dead", now, duration_ms, result.status_code, reason), "dead"
        wait = retry_delay(
            delivery.round_attempts, self._settings.retry_delays_seconds, self._settings.retry_jitter, self._uniform
        )
        if result.status_code == 429 and result.retry_after_seconds is not None:
            wait = min(result.retry_after_seconds, self._settings.max_retry_after_seconds)
        next_at = now + timedelta(seconds=wait)
        return DeliveryOutcome(
            "failed", now, duration_ms, result.status_code, error, next_attempt_at=next_at
        ), "retried"
