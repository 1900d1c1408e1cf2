"""The archive writer: every accepted raw event, as gzip-compressed NDJSON objects in the blob store.

What is archived. The raw events exactly as ingest accepted them (the `events` of each `logs.raw.{tenant}`
batch), not the normalized ones: the archive is the long-term record of what was sent, it keeps members the
normalizer lifts, truncates or drops, and it can be replayed through ingest after a normalizer change. Each
NDJSON line wraps one raw event with what ingest and the normalizer decided about it:
`{"id": …, "received_at": …, "timestamp": …, "source": …, "event": {…as sent…}}`, where `id` is the event's
id in search and `timestamp` its normalized event time.

Where. Objects are partitioned by receive time (the UTC hour ingest accepted the batch in), not event time:
an hour's partition is complete once the hour is over (late or clock-skewed events cannot reopen old
partitions), and a batch lands in exactly one partition. The key is
`archive/{tenant}/{YYYY-MM-DD}/{HH}/{first event id}.ndjson.gz`, lines sorted by event id. Each object is
recorded in the manifest (`ArchiveManifest`) with its SHA-256, byte size, event count and earliest/latest
event time.

When. Events are buffered per tenant and hour and flushed when the buffer holds `max_bytes` of NDJSON or its
oldest event waited `max_age_seconds` (capped at half the pipeline's `ack_wait_seconds`, so a buffered
message is never redelivered while it waits), and on stop.

Exactly-once-ish. The raw bus message is acked only after the object holding its events was written and
recorded in the manifest; if either fails the message is nak'ed and comes back. Lines are deduplicated by
event id inside a buffer, gzip output is deterministic (no timestamp in the header), and the key is the
smallest event id, so a redelivered message that is grouped the same way rewrites the same object with the
same bytes. The remaining duplicate window: a crash (or lost ack) after an object was written but before its
messages were acked, followed by a redelivery that groups those messages differently (another first event
id), writes the events again under another key of the same hour. Readers that need exactly-once dedupe on
`id`, which is stable across redeliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import msgspec

from mintlog.domain.archive_keys import PackedObject, archive_hour, count_lines, object_key, pack_lines
from mintlog.domain.events import LogEvent, RawBatch, event_id
from mintlog.errors import DependencyUnavailable
from mintlog.metrics import Metrics
from mintlog.ports.archive import ArchiveManifest, ArchiveObject
from mintlog.ports.blobstore import BlobStore
from mintlog.ports.bus import BusMessage, EventBus
from mintlog.roles.kit.deadletter import DeadLetters
from mintlog.settings import ArchiveSettings, PipelineSettings

__all__ = [
    "ARCHIVE_CONTENT_TYPE",
    "ArchiveLine",
    "ArchiveWriter",
    "PackedObject",
    "archive_hour",
    "count_lines",
    "object_key",
    "pack_lines",
]

logger = logging.getLogger(__name__)

ARCHIVE_CONTENT_TYPE = "application/x-ndjson"
_RETRY_DELAY_SECONDS = 2.0
_MAX_RETRY_DELAY_SECONDS = 60.0


class ArchiveLine(msgspec.Struct, frozen=True, kw_only=True):
    """One NDJSON line of an archive object: a raw event as accepted, with its id and times."""

    id: str
    received_at: datetime
    timestamp: datetime
    source: str
    event: dict[str, Any]


_line_encoder = msgspec.json.Encoder()


def _encode_line(batch: RawBatch, raw: dict[str, Any], event: LogEvent, index: int) -> tuple[str, bytes]:
    identifier = event_id(batch.batch_id, batch.first_index + index)
    line = ArchiveLine(
        id=identifier,
        received_at=event.received_at,
        timestamp=event.timestamp,
        source=batch.source,
        event=raw,
    )
    return identifier, _line_encoder.encode(line) + b"\n"


@dataclass
class _Buffer:
    tenant_id: str
    hour: datetime
    started: float
    lines: dict[str, bytes] = field(default_factory=lambda: {})
    messages: list[BusMessage] = field(default_factory=lambda: [])
    size: int = 0
    first_event_at: datetime | None = None
    last_event_at: datetime | None = None


@dataclass
class _SlotLock:
    """Serializes the flushes of one tenant and hour; dropped when no flush uses it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ArchiveWriter:
    """Buffers raw batches per tenant and hour, writes them as archive objects and acks their messages after.

    `add` takes over the message: from then on the writer acks it (after the flush) or nak's it (when the flush
    fails). Flushes of one tenant and hour never overlap, so the manifest row of a key always describes the
    bytes stored under it.
    """

    name = "archive"

    def __init__(
        self,
        *,
        bus: EventBus,
        blobs: BlobStore,
        manifest: ArchiveManifest,
        settings: ArchiveSettings,
        pipeline: PipelineSettings,
        metrics: Metrics,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], datetime] = _utcnow,
        retry_delay_seconds: float = _RETRY_DELAY_SECONDS,
    ) -> None:
        self._bus = bus
        self._blobs = blobs
        self._manifest = manifest
        self._max_bytes = settings.max_bytes
        self._gzip_level = settings.gzip_level
        self.max_age_seconds = min(settings.max_age_seconds, pipeline.ack_wait_seconds / 2)
        if self.max_age_seconds < settings.max_age_seconds:
            logger.warning(
                "MINTLOG_ARCHIVE__MAX_AGE_SECONDS=%s exceeds half of MINTLOG_PIPELINE__ACK_WAIT_SECONDS=%s; "
                "archive buffers flush after %.1fs",
                settings.max_age_seconds,
                pipeline.ack_wait_seconds,
                self.max_age_seconds,
            )
        self._max_deliveries = pipeline.max_deliveries
        self._metrics = metrics
        self._monotonic = monotonic
        self._clock = clock
        self._retry_delay = retry_delay_seconds
        self._dead_letters = DeadLetters(
            bus, consumer=self.name, metrics=metrics, retry_delay_seconds=retry_delay_seconds
        )
        self._buffers: dict[tuple[str, datetime], _Buffer] = {}
        self._locks: dict[tuple[str, datetime], _SlotLock] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @property
    def buffered_events(self) -> int:
        """Events waiting in buffers (for tests and shutdown logs)."""
        return sum(len(buffer.lines) for buffer in self._buffers.values())

    async def start(self) -> None:
        """Flush buffers by age in the background."""
        self._stopping.clear()
        self._ticker = asyncio.create_task(self._tick(), name="archive-flush")

    async def stop(self) -> None:
        """Stop the age flushes (letting a flush in progress finish) and flush everything buffered (call after
        the normalizer stopped)."""
        self._stopping.set()
        if self._ticker is not None:
            await self._ticker
            self._ticker = None
        await self.flush_all()

    async def _tick(self) -> None:
        interval = max(0.05, min(1.0, self.max_age_seconds / 4))
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval)
            try:
                await self.flush_due()
            except Exception:
                logger.exception("archive age flush failed")

    async def add(self, message: BusMessage, batch: RawBatch, events: Sequence[LogEvent]) -> None:
        """Buffer the batch's raw events (whose normalized forms are `events`, in order) and own `message`."""
        if not batch.events:
            await message.ack()  # nothing to archive
            return
        hour = archive_hour(batch.received_at)
        slot = (batch.tenant_id, hour)
        buffer = self._buffers.get(slot)
        if buffer is None:
            buffer = self._buffers[slot] = _Buffer(batch.tenant_id, hour, self._monotonic())
        for index, (raw, event) in enumerate(zip(batch.events, events, strict=True)):
            identifier, line = _encode_line(batch, raw, event, index)
            previous = buffer.lines.get(identifier)
            buffer.size += len(line) - (0 if previous is None else len(previous))
            buffer.lines[identifier] = line
            if buffer.first_event_at is None or event.timestamp < buffer.first_event_at:
                buffer.first_event_at = event.timestamp
            if buffer.last_event_at is None or event.timestamp > buffer.last_event_at:
                buffer.last_event_at = event.timestamp
        buffer.messages.append(message)
        if buffer.size >= self._max_bytes:
            await self._flush(slot)

    async def flush_due(self) -> None:
        """Flush every buffer whose oldest event waited `max_age_seconds`."""
        now = self._monotonic()
        due = [slot for slot, buffer in self._buffers.items() if now - buffer.started >= self.max_age_seconds]
        await asyncio.gather(*(self._flush(slot) for slot in due))

    async def flush_all(self) -> None:
        """Flush every buffer now."""
        await asyncio.gather(*(self._flush(slot) for slot in list(self._buffers)))

    async def _flush(self, slot: tuple[str, datetime]) -> None:
        buffer = self._buffers.pop(slot, None)
        if buffer is None:
            return
        lock = self._locks.get(slot)
        if lock is None:
            lock = self._locks[slot] = _SlotLock()
        lock.users += 1
        try:
            async with lock.lock:
                await self._write(buffer)
        except Exception as exc:
            await self._hand_back(buffer, exc)
            return
        finally:
            lock.users -= 1
            if lock.users == 0:
                del self._locks[slot]
        await asyncio.gather(*(message.ack() for message in buffer.messages))

    async def _write(self, buffer: _Buffer) -> ArchiveObject:
        if not buffer.lines:
            raise AssertionError("an archive buffer always holds the events of at least one message")
        ids = sorted(buffer.lines)
        # Up to `max_bytes` of NDJSON: gzip it off the event loop, which also serves intake in one process.
        packed = await asyncio.to_thread(pack_lines, [buffer.lines[identifier] for identifier in ids], self._gzip_level)
        key = object_key(buffer.tenant_id, buffer.hour, ids[0])
        await self._blobs.put(key, packed.data, content_type=ARCHIVE_CONTENT_TYPE)
        assert buffer.first_event_at is not None
        assert buffer.last_event_at is not None
        entry = ArchiveObject(
            tenant_id=buffer.tenant_id,
            key=key,
            day=date(buffer.hour.year, buffer.hour.month, buffer.hour.day),
            hour=buffer.hour.hour,
            event_count=packed.event_count,
            bytes=len(packed.data),
            sha256=packed.sha256,
            first_event_at=buffer.first_event_at,
            last_event_at=buffer.last_event_at,
            created_at=self._clock(),
        )
        await self._manifest.record(entry)
        self._metrics.archive_objects.inc()
        self._metrics.archive_events.inc(packed.event_count)
        logger.debug("archived %d events of tenant %s as %s", packed.event_count, buffer.tenant_id, key)
        return entry

    async def _hand_back(self, buffer: _Buffer, exc: Exception) -> None:
        """Nak the buffer's messages so they come back; dead-letter those that failed too often for a reason
        other than an outage (an outage is retried without limit, like every pipeline stage)."""
        self._metrics.archive_failures.inc()
        outage = isinstance(exc, DependencyUnavailable)
        if outage:
            logger.warning("archive flush of tenant %s failed: %s; will retry", buffer.tenant_id, exc)
        else:
            logger.error("archive flush of tenant %s failed", buffer.tenant_id, exc_info=exc)
        for message in buffer.messages:
            if not outage and message.num_delivered >= self._max_deliveries:
                await self._dead_letters.send(message, "archive_failed", f"archive object cannot be written: {exc!r}")
                continue
            delay = min(_MAX_RETRY_DELAY_SECONDS, self._retry_delay * max(1, message.num_delivered))
            await message.nak(delay)
