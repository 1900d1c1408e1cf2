"""The delivery worker: incident events → one persisted delivery per channel → webhooks, emails and chat
messages, retried; and the deliveries to people (`PersonNotifier`) on the same path.

Two loops in every notify instance:

1. The durable consumer `notify-deliveries` on `INCIDENTS_EVENTS` (`incidents.events.>`). For each
   `IncidentEvent` with `notify` true, it inserts one delivery per channel of `channel_ids` that exists and is
   active in the event's tenant, with the id `delivery_id(event id, channel id)` (an existing one is left
   alone), and acks only after the insert committed. Database down → nak and retry; after `max_deliveries`
   the message is dead-lettered. An undecodable message is dead-lettered at once.
2. The sender, on the role kit's `DueWorkScheduler`. It claims due deliveries in the database
   (`claim_due_deliveries`: one claimer per delivery, whichever instance asks; at most `concurrency` claimed and
   in flight per instance; looked for every `poll_interval_seconds`, at once when new deliveries were stored or
   a full sender got a free place), hands each to the sender of its channel's type (or of its person contact
   method's type: `senders.Senders`) — a webhook is POSTed with the Standard Webhooks headers (the delivery id
   is the `webhook-id` of every attempt), an email goes over SMTP, a chat message is POSTed in its format — and
   records the outcome while it still owns the claim:
   2xx / accepted → `delivered`; 410 → the channel is disabled and the delivery `dead`; an SMTP 5xx reply →
   `dead` at once (permanent); 429 → retried after its `Retry-After` (at most `max_retry_after_seconds`), else
   the schedule; anything else (timeout, refused connection, refused address, redirect, other status, SMTP 4xx)
   → retried after the next delay of the schedule, with jitter; the attempt that reaches `max_attempts` →
   `dead`, with the last error as its reason.

A delivery of an incident (a channel's incident event, an escalation notice, a message to a person) that fails
is written on the incident's timeline as a `delivery_failed` entry (actor `system`; `data`: the delivery, the
channel or person and contact method, the attempt, the error as the delivery log shows it) twice at most: at
its first failed attempt (`final` false, with when it is tried next) and when it gives up (`final` true). The
retries between are in the delivery log only, so a receiver down for an hour does not flood the timeline.

The schedule lives in the database (`next_attempt_at`), so it survives restarts. A sender that dies mid-attempt
leaves its claim behind; once it expires (`claim_seconds`) another sender (or the restarted one) makes the
attempt again, with the same `webhook-id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence, Set
from datetime import UTC, datetime, timedelta

import msgspec

from mintlog.domain.alerting import IncidentEvent
from mintlog.domain.channels import Channel, Delivery, DeliveryOutcome, retry_delay
from mintlog.domain.incidents import SYSTEM_ACTOR, EntryDraft
from mintlog.domain.streams import INCIDENTS_EVENTS, INCIDENTS_FILTER, decode_incident_event
from mintlog.domain.webhooks import delivery_id, incident_payload
from mintlog.errors import Conflict, DependencyUnavailable
from mintlog.metrics import Metrics
from mintlog.ports.bus import BusMessage, EventBus
from mintlog.ports.incidents import IncidentStore
from mintlog.ports.notifications import NotificationStore
from mintlog.ports.outbound import OutboundHttp
from mintlog.ports.smtp import SmtpSender
from mintlog.roles.kit.base import instance_holder
from mintlog.roles.kit.consumer import ConsumerLoop
from mintlog.roles.kit.deadletter import DeadLetters
from mintlog.roles.kit.scheduler import Claim, DueWorkScheduler
from mintlog.roles.notify.senders import Senders, SendResult
from mintlog.settings import NotifySettings, PipelineSettings

__all__ = ["DELIVERY_CONSUMER", "DeliveryWorker", "DueDeliveries", "deliveries_for", "failure_entry"]

logger = logging.getLogger(__name__)

DELIVERY_CONSUMER = "notify-deliveries"
_RETRY_DELAY_SECONDS = 2.0
_FETCH_BATCH = 64
_ERROR_CHARS = 500


def failure_entry(delivery: Delivery, outcome: DeliveryOutcome) -> EntryDraft | None:
    """The timeline entry of an attempt's outcome: for the first failed attempt of a delivery's round, and for
    the attempt that made it dead; None for a success or a later retry."""
    final = outcome.status == "dead"
    if not final and (outcome.status != "failed" or delivery.round_attempts != 1):
        return None
    contact = delivery.contact
    if contact is None:
        target = f"channel {delivery.channel_id}"
        data: dict[str, object] = {"target": {"type": "channel", "id": delivery.channel_id}}
    else:
        target = f"person {contact.person_id} by {contact.type} ({contact.contact_method_id})"
        data = {
            "target": {"type": "person", "id": contact.person_id},
            "contact_method_id": contact.contact_method_id,
            "contact_type": contact.type,
        }
    error = (outcome.error or "failed")[:_ERROR_CHARS]
    if final:
        content = f"delivery to {target} gave up after attempt {delivery.attempts}: {error}"
    else:
        when = outcome.next_attempt_at.isoformat() if outcome.next_attempt_at is not None else "later"
        content = f"delivery to {target} failed (attempt {delivery.attempts}, retried at {when}): {error}"
    data |= {
        "delivery_id": delivery.id,
        "event_type": delivery.event_type,
        "attempt": delivery.attempts,
        "status_code": outcome.status_code,
        "error": error,
        "final": final,
    }
    source = f"delivery-failed\n{delivery.id}\n{delivery.attempts}\n{final}"
    entry_key = "tle_" + hashlib.sha256(source.encode()).hexdigest()[:24]
    return EntryDraft(
        id=entry_key,
        source_id=entry_key,
        occurred_at=outcome.attempted_at,
        event_type="delivery_failed",
        actor=SYSTEM_ACTOR,
        content=content,
        data=data,
    )


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
        outbound: OutboundHttp,
        smtp: SmtpSender,
        settings: NotifySettings,
        pipeline: PipelineSettings,
        metrics: Metrics,
        grace_seconds: float,
        incidents: IncidentStore | None = None,
        holder: str | None = None,
        clock: Callable[[], datetime] = _utcnow,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self._bus = bus
        self._incidents = incidents
        self._store = notifications
        self._senders = Senders(outbound=outbound, smtp=smtp, settings=settings)
        self._settings = settings
        self._pipeline = pipeline
        self._metrics = metrics
        self._grace_seconds = grace_seconds
        self.holder = holder or instance_holder()
        self._clock = clock
        self._uniform = uniform
        self._dead_letters = DeadLetters(
            bus, consumer=DELIVERY_CONSUMER, metrics=metrics, retry_delay_seconds=_RETRY_DELAY_SECONDS
        )
        self._loop = ConsumerLoop(
            name=DELIVERY_CONSUMER,
            bus=bus,
            stream=INCIDENTS_EVENTS.name,
            durable=DELIVERY_CONSUMER,
            filter_subject=INCIDENTS_FILTER,
            ack_wait_seconds=pipeline.ack_wait_seconds,
            fetch_batch=_FETCH_BATCH,
            handle=self.handle,
        )
        self._sender = DueWorkScheduler(
            DueDeliveries(notifications, self.holder, settings.claim_seconds, self.attempt),
            work="notify-deliveries",
            max_running=settings.concurrency,
            poll_seconds=settings.poll_interval_seconds,
            metrics=metrics,
            clock=clock,
        )

    async def start(self, *, consume: bool = True, send: bool = True) -> None:
        """Start consuming incident events and sending due deliveries (tests may start only one of them)."""
        if consume:
            await self._loop.start()
        if send:
            await self._sender.start()

    async def stop(self) -> None:
        """Stop consuming, let attempts in flight finish within the grace period (the rest are retried once
        their claims expire). The outbound client is the runtime's: it stays open."""
        await asyncio.gather(self._loop.stop(self._grace_seconds), self._sender.stop(self._grace_seconds))

    def wake(self) -> None:
        """Look for due deliveries now (new ones were stored, e.g. by the `PersonNotifier`)."""
        self._sender.wake()

    # Consuming incident events

    async def handle(self, messages: list[BusMessage]) -> None:
        """Insert the deliveries of each message, then ack it (nak or dead-letter it when that fails)."""
        created = 0
        for message in messages:
            try:
                event = decode_incident_event(message.data)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                await self._dead_letters.send(message, "undecodable", f"incident event cannot be decoded: {exc}")
                continue
            try:
                created += await self._enqueue(event)
            except DependencyUnavailable as exc:
                if message.num_delivered >= self._pipeline.max_deliveries:
                    await self._dead_letters.send(
                        message, "store_unavailable", f"deliveries could not be stored: {exc}"
                    )
                else:
                    logger.warning("deliveries of incident event %s not stored yet: %s", event.id, exc)
                    await message.nak(self._retry_delay(message))
                continue
            await message.ack()
        if created:
            self._sender.wake()

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

    # Sending

    async def run_once(self) -> list[Delivery]:
        """Claim what is due now and attempt it all before returning (tests). Returns what was attempted."""
        return [claim.item for claim in await self._sender.run_once()]

    async def attempt(self, delivery: Delivery) -> None:
        """Make one attempt of a delivery this sender has claimed and record its outcome."""
        try:
            if delivery.contact is not None:
                outcome, label = await self._send_to_person(delivery)
            else:
                channel = await self._store.get_channel(delivery.tenant_id, delivery.channel_id or "")
                outcome, label = await self._send(delivery, channel)
            if not await self._store.record_outcome(delivery.id, self.holder, outcome):
                label = "lost_claim"
                logger.warning("delivery %s: the claim expired before the outcome was recorded", delivery.id)
            else:
                await self._on_timeline(delivery, outcome)
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
            "delivery %s to %s: %s after attempt %d%s",
            delivery.id,
            f"channel {delivery.channel_id}" if delivery.contact is None else f"person {delivery.contact.person_id}",
            outcome.status,
            delivery.attempts,
            f" ({outcome.error})" if outcome.error else "",
            extra={"tenant_id": delivery.tenant_id, "event_id": delivery.event_id, "status_code": outcome.status_code},
        )

    async def _on_timeline(self, delivery: Delivery, outcome: DeliveryOutcome) -> None:
        """Write the failure on the incident's timeline (see the module); the outcome is recorded already, so a
        database failure here loses the entry, never the delivery."""
        entry = failure_entry(delivery, outcome)
        if entry is None or self._incidents is None or delivery.incident_id is None:
            return
        try:
            with contextlib.suppress(Conflict):  # written by an earlier, taken-over run of this attempt
                await self._incidents.append_entry(delivery.tenant_id, delivery.incident_id, entry)
        except DependencyUnavailable as exc:
            logger.warning("delivery %s: its failure is not on the incident's timeline: %s", delivery.id, exc)

    async def _send(self, delivery: Delivery, channel: Channel | None) -> tuple[DeliveryOutcome, str]:
        now = self._clock()
        if channel is None:
            return DeliveryOutcome("dead", now, None, None, "the channel was deleted"), "dead"
        if not channel.is_active:
            reason = f"the channel is disabled: {channel.disabled_reason or 'switched off'}"
            return DeliveryOutcome("dead", now, None, None, reason), "dead"
        result = await self._senders.to_channel(channel, delivery, now=now)
        self._metrics.notify_attempt_seconds.observe(result.duration_seconds)
        return self._outcome(delivery, result, now)

    async def _send_to_person(self, delivery: Delivery) -> tuple[DeliveryOutcome, str]:
        now = self._clock()
        assert delivery.contact is not None
        result = await self._senders.to_person(delivery.contact, delivery, now=now)
        self._metrics.notify_attempt_seconds.observe(result.duration_seconds)
        return self._outcome(delivery, result, now)

    def _outcome(self, delivery: Delivery, result: SendResult, now: datetime) -> tuple[DeliveryOutcome, str]:
        duration_ms = round(result.duration_seconds * 1000)
        if result.ok:
            return DeliveryOutcome("delivered", now, duration_ms, result.status_code, None), "delivered"
        error = result.error or "failed"
        if result.permanent:
            reason = f"permanent failure: {error}"
            return DeliveryOutcome("dead", now, duration_ms, result.status_code, reason), "dead"
        if result.gone and delivery.contact is not None:
            return DeliveryOutcome("dead", now, duration_ms, 410, f"{error}; the contact method is gone"), "dead"
        if result.gone:
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


class DueDeliveries:
    """The sender's due work: deliveries claimed in the database for `claim_seconds` (the deadline: an attempt
    still going then may be taken over by another sender)."""

    def __init__(
        self,
        store: NotificationStore,
        holder: str,
        claim_seconds: float,
        attempt: Callable[[Delivery], Awaitable[None]],
    ) -> None:
        self._store = store
        self._holder = holder
        self._claim = timedelta(seconds=claim_seconds)
        self._attempt = attempt

    async def claim_due(self, now: datetime, limit: int, *, running: Set[str]) -> Sequence[Claim[Delivery]]:
        # No filter by `running`: a delivery in flight here is `sending` under its claim, so not due until the
        # claim expires (then it may be claimed again, here or elsewhere, and the overrun is logged).
        claimed = await self._store.claim_due_deliveries(self._holder, now=now, until=now + self._claim, limit=limit)
        return [
            Claim(delivery.id, delivery, due_at=delivery.next_attempt_at, deadline=delivery.claim_expires_at)
            for delivery in claimed
        ]

    async def run(self, item: Delivery) -> None:
        await self._attempt(item)
