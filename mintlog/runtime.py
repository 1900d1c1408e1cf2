"""`Runtime`: the adapters of one Mintlog process, opened and closed together."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

from mintlog.auth import Authenticator
from mintlog.metrics import Metrics
from mintlog.ports.alerting import AlertRuleStore
from mintlog.ports.archive import ArchiveManifest
from mintlog.ports.blobstore import BlobStore
from mintlog.ports.bus import EventBus
from mintlog.ports.cache import Cache
from mintlog.ports.escalation import EscalationStore
from mintlog.ports.idempotency import IdempotencyStore
from mintlog.ports.incidents import IncidentStore
from mintlog.ports.logstore import LogStore
from mintlog.ports.maintenance import BadgeStore, MaintenanceWindowStore
from mintlog.ports.metadata import MetadataStore
from mintlog.ports.notifications import NotificationStore
from mintlog.ports.oncall_store import OnCallStore
from mintlog.ports.outbound import OutboundHttp
from mintlog.ports.parsing import ExtractionRuleStore
from mintlog.ports.person_notify import PersonNotifier
from mintlog.ports.ratelimit import RateLimiter
from mintlog.ports.smtp import SmtpSender
from mintlog.ports.uptime import MonitorStore
from mintlog.settings import Settings

__all__ = ["Runtime"]

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything roles need, built by `mintlog.launch.bootstrap.bootstrap`. Roles receive ports, never adapters."""

    settings: Settings
    bus: EventBus
    store: LogStore
    metadata: MetadataStore
    cache: Cache
    rate_limiter: RateLimiter
    metrics: Metrics
    authenticator: Authenticator
    blobs: BlobStore
    archive: ArchiveManifest
    notifications: NotificationStore
    incidents: IncidentStore
    alert_rules: AlertRuleStore
    extraction_rules: ExtractionRuleStore
    idempotency: IdempotencyStore
    monitors: MonitorStore
    maintenance_windows: MaintenanceWindowStore
    badges: BadgeStore
    oncall: OnCallStore
    """On-call people, schedules and overrides; the notify role reads it as its `OnCallDirectory`."""
    outbound: OutboundHttp
    """Every request to a URL a tenant named (webhooks): opens its connections on first use."""
    smtp: SmtpSender
    """Every email (email channels, emails to people): one connection per send, under the egress policy."""
    escalation: EscalationStore
    person_notifier: PersonNotifier | None = None
    """Notifications of people for escalation; None: the notify role's own (`StoredPersonNotifier`). Tests inject
    a fake here."""
    _opened: list[str] = field(default_factory=lambda: [])

    async def open(self) -> None:
        """Start the metadata database (migrating it), the bus (creating streams) and the log store.

        On failure, whatever was opened is closed again before the error propagates.
        """
        try:
            await self.metadata.start()
            self._opened.append("metadata")
            await self.bus.start()
            self._opened.append("bus")
            await self.store.start()
            self._opened.append("store")
            await self.blobs.start()
            self._opened.append("blobs")
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Close what `open` opened, in reverse order; errors are logged, never raised."""
        closers = {
            "blobs": self.blobs.close,
            "store": self.store.close,
            "bus": self.bus.close,
            "metadata": self.metadata.close,
        }
        while self._opened:
            name = self._opened.pop()
            try:
                await closers[name]()
            except Exception:
                logger.exception("closing %s failed", name)
        with contextlib.suppress(Exception):
            await self.authenticator.close()
        with contextlib.suppress(Exception):
            await self.cache.close()
        with contextlib.suppress(Exception):
            await self.rate_limiter.close()
        with contextlib.suppress(Exception):
            await self.outbound.close()
