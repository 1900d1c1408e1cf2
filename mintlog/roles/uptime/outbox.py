"""Relaying the uptime alert outbox to the bus: no confirmed transition, pause or delete is ever lost.

Every alert event of a monitor is first committed to the outbox together with the status change that caused
it (`MonitorStore.record_check`, `replace_monitor`, `delete_monitor`). `AlertRelay` then publishes it on
`alerts.events.{tenant}` with the event id as the bus message id and removes it from the outbox:

- right after the check that wrote it (`publish_monitor`), and
- every `MINTLOG_UPTIME__OUTBOX_INTERVAL_SECONDS` for whatever is left (`sweep`): events whose publish failed
  (bus down), events of a process killed before publishing, and the events the API writes on a pause or a
  delete.

Guarantees:
- in order per monitor: a relay publishes a monitor's events oldest first and stops at the first one the bus
  refuses, so a `resolved` never overtakes its `firing`;
- at least once on the bus, exactly once in effect: an event published again (the mark lost in a crash, two
  relays racing) has the same message id, dropped by the bus's duplicate window, and the incident worker keys
  its timeline entry on the event id, so it changes the incident once;
- relays on several uptime instances may run at once: each keeps the per-monitor order, and duplicates are
  harmless as above.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from mintlog.domain.alerting import AlertEvent
from mintlog.domain.streams import alerts_subject, encode_event
from mintlog.errors import DependencyUnavailable
from mintlog.ports.bus import EventBus
from mintlog.ports.uptime import MonitorStore

__all__ = ["AlertRelay"]

logger = logging.getLogger(__name__)

_SWEEP_BATCH = 200


class AlertRelay:
    """Publishes the uptime alert outbox, in order per monitor."""

    def __init__(self, *, monitors: MonitorStore, bus: EventBus) -> None:
        self._monitors = monitors
        self._bus = bus

    async def publish_monitor(self, monitor_id: str) -> int:
        """Publish every pending event of `monitor_id`, oldest first; the number published. Never raises for a
        bus or database outage: what is left stays in the outbox for the sweep."""
        try:
            pending = await self._monitors.pending_alerts(monitor_id=monitor_id, limit=_SWEEP_BATCH)
            return await self._publish(pending)
        except DependencyUnavailable as exc:
            logger.warning("monitor %s: alert events left in the outbox: %s", monitor_id, exc)
            return 0

    async def sweep(self) -> int:
        """One pass over the whole outbox, oldest first; the number published. Stops at the first failure
        (raising nothing: the next sweep goes on from there)."""
        total = 0
        while True:
            try:
                pending = await self._monitors.pending_alerts(limit=_SWEEP_BATCH)
                if not pending:
                    break
                total += await self._publish(pending)
            except DependencyUnavailable as exc:
                logger.warning("uptime alert outbox: %d published, the rest waits for the next sweep: %s", total, exc)
                break
            if len(pending) < _SWEEP_BATCH:
                break
        if total:
            logger.info("uptime alert outbox published %d events", total)
        return total

    async def _publish(self, pending: Sequence[AlertEvent]) -> int:
        published: list[str] = []
        try:
            for event in pending:
                await self._bus.publish(alerts_subject(event.tenant_id), encode_event(event), msg_id=event.id)
                published.append(event.id)
                logger.info("uptime alert event %s (%s) published", event.id, event.state)
        finally:
            if published:
                await self._monitors.mark_alerts_published(published)
        return len(published)
