"""Publishing incident events from the timeline, and the sweeper that re-publishes what a crash left behind.

Every timeline entry is written with its `IncidentEvent` and `published_at` null. Whoever made the change (the
incident worker, the API) publishes the event right after the commit, with the entry id as the bus message
id, then marks the entry published. When that publish fails or the process dies first, the entry stays
unpublished, and `IncidentOutbox` (run by the notify role, on the one instance that holds the
`incident-outbox` lease) publishes it a few seconds later. A publish repeated because the mark was lost is
dropped by the bus's duplicate window, and consumers key on the event id anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from mintlog.domain.incidents import TimelineEntry, entry_event
from mintlog.domain.streams import encode_event, incidents_subject
from mintlog.errors import DependencyUnavailable
from mintlog.metrics import Metrics
from mintlog.ports.bus import EventBus
from mintlog.ports.incidents import IncidentStore
from mintlog.ports.metadata import JobLeases
from mintlog.roles.kit.base import Periodic, instance_holder
from mintlog.settings import IncidentSettings

__all__ = ["OUTBOX_LEASE", "IncidentOutbox", "publish_entries"]

logger = logging.getLogger(__name__)

OUTBOX_LEASE = "incident-outbox"
"""The job name of the sweeper's lease in `JobLeases`."""

_SWEEP_BATCH = 500


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def publish_entries(
    bus: EventBus, incidents: IncidentStore, entries: Sequence[TimelineEntry], *, now: datetime
) -> int:
    """Publish the events of `entries` in order and mark them published; the number published.

    Stops at the first entry the bus refuses (raising its `DependencyUnavailable` after marking those before
    it), so the sweeper keeps the order and finds the rest.
    """
    published: list[str] = []
    try:
        for entry in entries:
            event = entry_event(entry)
            if event is not None:
                await bus.publish(incidents_subject(event.tenant_id), encode_event(event), msg_id=entry.id)
            published.append(entry.id)
    finally:
        if published:
            await incidents.mark_published(published, published_at=now)
    return len(published)


class IncidentOutbox:
    """Re-publishes incident events left unpublished for `outbox_min_age_seconds`, every
    `outbox_interval_seconds`, on the one notify instance holding the `incident-outbox` lease."""

    name = "incident-outbox"

    def __init__(
        self,
        *,
        bus: EventBus,
        incidents: IncidentStore,
        leases: JobLeases,
        settings: IncidentSettings,
        metrics: Metrics,
        clock: Callable[[], datetime] = _utcnow,
        holder: str | None = None,
    ) -> None:
        self._bus = bus
        self._incidents = incidents
        self._leases = leases
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self.holder = holder or instance_holder()
        self._periodic = Periodic(self.name, settings.outbox_interval_seconds, self.sweep)

    async def start(self) -> None:
        await self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
        try:
            await self._leases.release(OUTBOX_LEASE, self.holder)
        except DependencyUnavailable:
            logger.warning("could not release the %s lease; it expires on its own", OUTBOX_LEASE)

    async def sweep(self) -> int:
        """One pass: publish every entry old enough that is still unpublished; the number published (0 when
        another instance holds the lease)."""
        now = self._clock()
        until = now + timedelta(seconds=self._settings.outbox_lease_seconds)
        if not await self._leases.try_claim(OUTBOX_LEASE, self.holder, until=until, now=now):
            return 0
        cutoff = now - timedelta(seconds=self._settings.outbox_min_age_seconds)
        total = 0
        while True:
            entries = await self._incidents.unpublished_entries(occurred_before=cutoff, limit=_SWEEP_BATCH)
            if not entries:
                break
            try:
                count = await publish_entries(self._bus, self._incidents, entries, now=self._clock())
            except DependencyUnavailable as exc:
                logger.warning("incident outbox could not publish: %s; retrying on the next sweep", exc)
                break
            total += count
            if len(entries) < _SWEEP_BATCH:
                break
        if total:
            self._metrics.incident_events_republished.inc(total)
            logger.info("incident outbox published %d events left unpublished", total)
        return total
