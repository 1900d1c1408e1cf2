"""`IncidentWorker`: turns each alert event into an incident change and publishes it as an `IncidentEvent`.

It reads `ALERTS_EVENTS` (`alerts.events.>`) through the durable consumer `notify-incidents`, shared by every
notify instance. Per alert event (see `mintlog.domain.incidents.plan_alert_change`):
- `firing` opens an incident for its dedup key, or appends `alert_refired` to the open one;
- `resolved` appends to the open incident, resolving it when the rule auto-resolves incidents;
- `nodata` and `error` append a note to the open incident, if any; other transitions change nothing.
An active silence matching the event (rule and/or labels) is named in the entry ("silenced by <id>") and in
the event's `silenced_by`, and turns its `notify` off. A `firing` event whose rule a maintenance window covers
at the event's `evaluated_at` (`mintlog.domain.maintenance_windows.covers_alert`) changes nothing: no incident
opens and the open one gets no entry.

Guarantees:
- exactly one timeline entry per alert event: its id derives from the alert event's id, so a redelivery finds
  it and only publishes its event again if it was not out yet;
- one open incident per dedup key, however many events race (the store's partial unique index);
- the `IncidentEvent` is published after the commit with the entry id as message id, and the message is
  acked only then; a publish that fails leaves the entry to the outbox sweeper (`IncidentOutbox`);
- a message that cannot be decoded, or that failed `max_deliveries` times, is dead-lettered with its reason.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

import msgspec

from mintlog.domain.alerting import AlertEvent
from mintlog.domain.incidents import plan_alert_change
from mintlog.domain.maintenance_windows import window_for_alert
from mintlog.domain.silences import matching_silence
from mintlog.domain.streams import ALERTS_EVENTS, ALERTS_FILTER, alerts_subject, decode_alert_event
from mintlog.errors import DependencyUnavailable
from mintlog.ports.bus import BusMessage
from mintlog.ports.incidents import AppliedChange
from mintlog.roles.kit.consumer import ConsumerLoop
from mintlog.roles.kit.deadletter import DeadLetters
from mintlog.roles.notify.incident_outbox import IncidentOutbox, publish_entries
from mintlog.runtime import Runtime

__all__ = ["INCIDENT_CONSUMER", "IncidentWorker"]

logger = logging.getLogger(__name__)

INCIDENT_CONSUMER = "notify-incidents"
_FETCH_BATCH = 32
_CHANGING_STATES = frozenset({"firing", "resolved", "nodata", "error"})


def _utcnow() -> datetime:
    return datetime.now(UTC)


class IncidentWorker:
    """The notify role's incident side: the `notify-incidents` consumer and the incident outbox sweeper."""

    name = "incident-worker"

    def __init__(self, runtime: Runtime, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self._bus = runtime.bus
        self._incidents = runtime.incidents
        self._maintenance_windows = runtime.maintenance_windows
        self._settings = runtime.settings.incidents
        self._metrics = runtime.metrics
        self._clock = clock
        self.outbox = IncidentOutbox(
            bus=runtime.bus,
            incidents=runtime.incidents,
            leases=runtime.metadata,
            settings=self._settings,
            metrics=runtime.metrics,
            clock=clock,
        )
        self._dead_letters = DeadLetters(
            runtime.bus,
            consumer=INCIDENT_CONSUMER,
            metrics=runtime.metrics,
            retry_delay_seconds=self._settings.retry_delay_seconds,
        )
        self._loop = ConsumerLoop(
            name="incident-worker",
            bus=runtime.bus,
            stream=ALERTS_EVENTS.name,
            durable=INCIDENT_CONSUMER,
            filter_subject=ALERTS_FILTER,
            ack_wait_seconds=self._settings.ack_wait_seconds,
            fetch_batch=_FETCH_BATCH,
            handle=self._handle_all,
        )

    async def start(self) -> None:
        """Bind the durable consumer, then consume in the background and sweep the outbox periodically."""
        await self._loop.start()
        await self.outbox.start()

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Let the messages in hand finish (at most `grace_seconds`), close the consumer, stop the sweeper."""
        await self._loop.stop(grace_seconds)
        await self.outbox.stop()

    async def _handle_all(self, messages: list[BusMessage]) -> None:
        for message in messages:
            await self.handle(message)

    async def handle(self, message: BusMessage) -> None:
        """Process one delivery and ack, nak or dead-letter it; never raises."""
        try:
            await self._handle(message)
        except DependencyUnavailable as exc:
            logger.warning("alert event on %s postponed: %s", message.subject, exc)
            with contextlib.suppress(Exception):
                await message.nak(self._settings.retry_delay_seconds)
        except Exception:
            logger.exception("alert event on %s failed; it will be redelivered", message.subject)
            with contextlib.suppress(Exception):
                await message.nak(self._settings.retry_delay_seconds)

    async def _handle(self, message: BusMessage) -> None:
        if message.num_delivered > self._settings.max_deliveries:
            await self._dead_letters.send(message, "too_many_deliveries", f"failed {message.num_delivered - 1} times")
            return
        try:
            event = decode_alert_event(message.data)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            await self._dead_letters.send(message, "malformed", f"not an alert event: {exc}")
            return
        if message.subject != alerts_subject(event.tenant_id):
            await self._dead_letters.send(
                message, "wrong_tenant", f"event of tenant {event.tenant_id!r} on {message.subject}"
            )
            return
        applied = await self.apply(event)
        if applied is not None and applied.entry.published_at is None:
            try:
                await publish_entries(self._bus, self._incidents, [applied.entry], now=self._clock())
            except DependencyUnavailable as exc:
                # Committed: the outbox sweeper publishes it; the redelivery of this message may do it first.
                logger.warning("incident event %s not published yet: %s", applied.entry.id, exc)
                await message.nak(self._settings.retry_delay_seconds)
                return
        await message.ack()

    async def apply(self, event: AlertEvent) -> AppliedChange | None:
        """Record what `event` does to its incident (idempotent per event id); None when it changes nothing."""
        if event.state not in _CHANGING_STATES:
            return None
        if event.state == "firing":
            windows = await self._maintenance_windows.tenant_windows(event.tenant_id)
            window = window_for_alert(windows, event, event.evaluated_at)
            if window is not None:
                logger.info("alert event %s is in maintenance window %s: no incident change", event.id, window.id)
                return None
        now = self._clock()
        silence = matching_silence(await self._incidents.active_silences(event.tenant_id, now=now), event, now)
        applied = await self._incidents.apply_alert(
            event.tenant_id,
            event.dedup_key,
            event.id,
            partial(plan_alert_change, event, silenced_by=None if silence is None else silence.id, now=now),
        )
        if applied is not None and not applied.replayed:
            self._metrics.incident_changes.labels(applied.entry.event_type).inc()
            logger.info(
                "incident %s: %s from alert event %s%s",
                applied.incident.id,
                applied.entry.event_type,
                event.id,
                "" if silence is None else f" (silenced by {silence.id})",
            )
        return applied
