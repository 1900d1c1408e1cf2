"""The normalizer: `LOGS_RAW` → normalized events → `LOGS_PARSED` (`logs.parsed.{tenant}`).

Each raw message is acked only after every parsed message it produced was acknowledged by the bus, and the
parsed messages carry msg ids derived from the raw batch, so a redelivered raw message is published again
without creating duplicates. A message that cannot be decoded, or keeps failing, is dead-lettered with its
reason and counted; the others keep flowing. Bus outages never dead-letter anything: the message is nak'ed.
With the archive enabled, the raw message is handed to the `ArchiveWriter` instead of being acked: it is
acked once its raw events are in a written archive object (see `mintlog.roles.pipeline.archive`).
Each batch is normalized with its tenant's text parsing (time zone, extraction rules) from `parsing`; while
the metadata database cannot give it for a tenant never read, the batch is nak'ed like in a bus outage.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import msgspec

from mintlog.domain.events import LogEvent, ParsedBatch, RawBatch
from mintlog.domain.normalize import NormalizeStats, normalize_batch
from mintlog.domain.streams import (
    LOGS_RAW,
    NORMALIZER_DURABLE,
    RAW_FILTER,
    decode_raw_batch,
    encode_bus_message,
    parsed_subject,
)
from mintlog.errors import DependencyUnavailable
from mintlog.metrics import Metrics
from mintlog.parsing.text import TextParsing
from mintlog.ports.bus import BusMessage, EventBus
from mintlog.roles.kit.consumer import ConsumerLoop
from mintlog.roles.kit.deadletter import DeadLetters
from mintlog.roles.kit.publish import publish_in_parts
from mintlog.roles.pipeline.archive import ArchiveWriter
from mintlog.roles.pipeline.tenant_parsing import TenantParsingCache
from mintlog.settings import IngestSettings, PipelineSettings

__all__ = ["NormalizerWorker"]

logger = logging.getLogger(__name__)

_RETRY_DELAY_SECONDS = 2.0


class NormalizerWorker:
    """Consumes `LOGS_RAW` with the durable consumer `pipeline`."""

    name = "normalizer"

    def __init__(
        self,
        *,
        bus: EventBus,
        settings: PipelineSettings,
        limits: IngestSettings,
        metrics: Metrics,
        grace_seconds: float,
        retry_delay_seconds: float = _RETRY_DELAY_SECONDS,
        archive: ArchiveWriter | None = None,
        parsing: TenantParsingCache | None = None,
        default_parsing: TextParsing | None = None,
    ) -> None:
        """`parsing` gives each tenant's text parsing; without it every batch uses `default_parsing` (UTC, no
        rules, detection on)."""
        self._parsing = parsing
        self._default_parsing = default_parsing or TextParsing()
        self._retry_delay = retry_delay_seconds
        self._archive = archive
        self._bus = bus
        self._settings = settings
        self._limits = limits
        self._metrics = metrics
        self._grace_seconds = grace_seconds
        self._dead_letters = DeadLetters(
            bus, consumer=self.name, metrics=metrics, retry_delay_seconds=retry_delay_seconds
        )
        self._loop = ConsumerLoop(
            name=self.name,
            bus=bus,
            stream=LOGS_RAW.name,
            durable=NORMALIZER_DURABLE,
            filter_subject=RAW_FILTER,
            ack_wait_seconds=settings.ack_wait_seconds,
            fetch_batch=settings.fetch_batch,
            handle=self._handle_messages,
        )

    async def start(self) -> None:
        await self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop(self._grace_seconds)

    async def _handle_messages(self, messages: list[BusMessage]) -> None:
        await asyncio.gather(*(self._handle(message) for message in messages))

    async def _handle(self, message: BusMessage) -> None:
        try:
            batch = decode_raw_batch(message.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            await self._dead_letters.send(message, "undecodable", f"raw batch cannot be decoded: {exc}")
            return
        try:
            parsing = self._default_parsing if self._parsing is None else await self._parsing.get(batch.tenant_id)
        except DependencyUnavailable as exc:
            logger.warning("no text parsing for tenant %s yet: %s; will retry", batch.tenant_id, exc)
            await message.nak(self._retry_delay)
            return
        stats = NormalizeStats()
        try:
            events = normalize_batch(
                batch,
                default_service=self._settings.default_service,
                default_host=self._settings.default_host,
                limits=self._limits,
                parsing=parsing,
                stats=stats,
            )
        except Exception as exc:
            logger.exception("normalization failed for batch %s", batch.batch_id)
            if message.num_delivered >= self._settings.max_deliveries:
                await self._dead_letters.send(message, "normalize_failed", f"normalization failed: {exc!r}")
            else:
                await message.nak(self._retry_delay * message.num_delivered)
            return
        try:
            await self._publish(batch, events)
        except DependencyUnavailable as exc:
            logger.warning("cannot publish parsed batch %s: %s; will retry", batch.batch_id, exc)
            await message.nak(self._retry_delay)
            return
        if self._archive is not None:
            await self._archive.add(message, batch, events)  # acks the message once its events are archived
        else:
            await message.ack()
        self._metrics.pipeline_events.inc(len(events))
        if stats.rule_timeouts:
            self._metrics.extraction_rule_timeouts.inc(stats.rule_timeouts)
        self._metrics.pipeline_lag.set(max(0.0, (datetime.now(UTC) - batch.received_at).total_seconds()))

    async def _publish(self, batch: RawBatch, events: list[LogEvent]) -> None:
        """Publish the batch's events in as few parts as fit, with msg ids derived from the raw message."""

        def encode(_first_index: int, chunk: list[LogEvent]) -> bytes:
            return encode_bus_message(ParsedBatch(batch_id=batch.batch_id, tenant_id=batch.tenant_id, events=chunk))

        await publish_in_parts(
            self._bus,
            parsed_subject(batch.tenant_id),
            events,
            encode=encode,
            msg_id_prefix=f"parsed:{batch.batch_id}:{batch.first_index}:",
        )
