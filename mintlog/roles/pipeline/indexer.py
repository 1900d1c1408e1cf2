"""The indexer: `logs.parsed.>` → the log store.

Messages are buffered until `max_batch_events` events, their share of `max_inflight_bytes` (bus bytes:
`max_inflight_bytes / concurrent_writes`) or `flush_interval_ms` after the first one, written with one
`LogStore.write` (durable and searchable when it returns), and only then acked. Up to `concurrent_writes`
writes are in flight at once (1: the next batch waits for the previous write; more lets a store that indexes
requests in parallel, like OpenSearch, work on several batches while this process keeps fetching); a flush
waits while that many are in flight, and a fetched list is buffered message by message, flushing as soon as a
share is full, so the writes in flight hold at most `max_inflight_bytes` of bus messages (plus one message
each) and the buffer one share more; a pull takes about one share of messages (by the size of recent ones,
at most `fetch_batch`), so what waits to be buffered is bounded too. `stop()` waits for the writes. Writes are
idempotent by event id, so a redelivery after a crash stores nothing twice. When the store is down every
buffered message is nak'ed and retried without limit; so is every message of a write the store's disk
refused (`StoreDiskFailure`: full, over quota, read-only, I/O error; on OpenSearch, a write block such as the
flood-stage watermark's `read_only_allow_delete`), retried every `retry_delay_seconds` and
shown by `mintlog_store_write_failed` until a write succeeds. When the store answers but a write fails, the
messages are retried one by one: a message the store says can never be stored (`ValueError`, a permanent
4xx such as a mapping conflict) is dead-lettered at once; a message that fails with a transient error (a
timeout, 429, 5xx, an unavailable shard while the cluster recovers after a restart) is never dead-lettered,
however often it was delivered: it is retried with a delay that grows with its deliveries (at most
`_MAX_RETRY_DELAY_SECONDS`) and `mintlog_store_write_failed` stays 1 until a write succeeds. Dead-lettering
on a count of transient failures lost accepted events while a restarted OpenSearch recovered its shards.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

import msgspec

from mintlog.domain.events import LogEvent
from mintlog.domain.streams import INDEXER_DURABLE, LOGS_PARSED, PARSED_FILTER, decode_parsed_batch
from mintlog.errors import DependencyUnavailable, StoreDiskFailure
from mintlog.metrics import Metrics
from mintlog.ports.bus import BusMessage, EventBus
from mintlog.ports.logstore import LogStore
from mintlog.roles.kit.consumer import PULL_MAX_BYTES, ConsumerLoop
from mintlog.roles.kit.deadletter import DeadLetters
from mintlog.settings import IndexerSettings, PipelineSettings

__all__ = ["IndexerWorker"]

logger = logging.getLogger(__name__)

_RETRY_DELAY_SECONDS = 2.0
_MAX_RETRY_DELAY_SECONDS = 60.0
_DEFAULT_MAX_INFLIGHT_BYTES = 16 * 1024 * 1024


class IndexerWorker:
    """Consumes `LOGS_PARSED` with the durable consumer `indexer`."""

    name = "indexer"

    def __init__(
        self,
        *,
        bus: EventBus,
        store: LogStore,
        pipeline: PipelineSettings,
        settings: IndexerSettings,
        metrics: Metrics,
        grace_seconds: float,
        retry_delay_seconds: float = _RETRY_DELAY_SECONDS,
        concurrent_writes: int = 1,
        max_inflight_bytes: int = 0,
    ) -> None:
        """`max_inflight_bytes` (else `settings.max_inflight_bytes`, else 16 MiB) bounds the bus bytes of the
        writes in flight; the role passes the store's default (`indexer_max_inflight_bytes`)."""
        if concurrent_writes < 1:
            raise ValueError("concurrent_writes must be at least 1")
        self._retry_delay = retry_delay_seconds
        self._concurrent_writes = concurrent_writes
        self._write_slots = asyncio.Semaphore(concurrent_writes)
        self._writes: set[asyncio.Task[None]] = set()
        self._bus = bus
        self._store = store
        self._pipeline = pipeline
        self._settings = settings
        self._metrics = metrics
        self._grace_seconds = grace_seconds
        self._flush_interval = settings.flush_interval_ms / 1000
        inflight_bytes = max_inflight_bytes or settings.max_inflight_bytes or _DEFAULT_MAX_INFLIGHT_BYTES
        self._batch_bytes = max(1, inflight_bytes // concurrent_writes)
        self._messages: list[BusMessage] = []
        self._batches: list[list[LogEvent]] = []
        self._event_count = 0
        self._buffered_bytes = 0
        self._first_buffered_at: float | None = None
        self._dead_letters = DeadLetters(
            bus, consumer=self.name, metrics=metrics, retry_delay_seconds=retry_delay_seconds
        )
        self._loop = ConsumerLoop(
            name=self.name,
            bus=bus,
            stream=LOGS_PARSED.name,
            durable=INDEXER_DURABLE,
            filter_subject=PARSED_FILTER,
            ack_wait_seconds=pipeline.ack_wait_seconds,
            fetch_batch=settings.fetch_batch,
            handle=self._buffer,
            fetch_timeout_seconds=self._fetch_timeout,
            on_idle=self._flush_if_due,
            pull_bytes=min(self._batch_bytes, PULL_MAX_BYTES),
        )

    async def start(self) -> None:
        await self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop(self._grace_seconds)
        await self._flush()
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    def _fetch_timeout(self) -> float:
        if self._first_buffered_at is None:
            return 1.0
        return max(0.01, self._flush_interval - (time.monotonic() - self._first_buffered_at))

    async def _buffer(self, messages: list[BusMessage]) -> None:
        for message in messages:
            try:
                batch = decode_parsed_batch(message.data)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                await self._dead_letters.send(message, "undecodable", f"parsed batch cannot be decoded: {exc}")
                continue
            if self._first_buffered_at is None:
                self._first_buffered_at = time.monotonic()
            self._messages.append(message)
            self._batches.append(batch.events)
            self._event_count += len(batch.events)
            self._buffered_bytes += len(message.data)
            if self._event_count >= self._settings.max_batch_events or self._buffered_bytes >= self._batch_bytes:
                await self._flush()
        await self._flush_if_due()

    async def _flush_if_due(self) -> None:
        if self._first_buffered_at is None:
            return
        if time.monotonic() - self._first_buffered_at >= self._flush_interval:
            await self._flush()

    async def _flush(self) -> None:
        messages, batches = self._messages, self._batches
        self._messages, self._batches, self._event_count, self._first_buffered_at = [], [], 0, None
        self._buffered_bytes = 0
        if not messages:
            return
        if self._concurrent_writes == 1:
            await self._write(messages, batches)
            return
        await self._write_slots.acquire()
        task = asyncio.create_task(self._write_in_slot(messages, batches), name="indexer-write")
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write_in_slot(self, messages: list[BusMessage], batches: list[list[LogEvent]]) -> None:
        try:
            await self._write(messages, batches)
        except Exception:  # never lost: unacked messages are redelivered after the ack wait
            logger.exception("indexer write of %d messages failed unexpectedly", len(messages))
        finally:
            self._write_slots.release()

    async def _write(self, messages: list[BusMessage], batches: list[list[LogEvent]]) -> None:
        events = [event for batch in batches for event in batch]
        started = time.perf_counter()
        try:
            await self._store.write(events)
        except StoreDiskFailure as exc:
            await self._retry_after_disk_failure(messages, exc)
            return
        except (DependencyUnavailable, ValueError) as exc:
            logger.warning("log store write of %d events failed: %s", len(events), exc)
            await self._retry_one_by_one(messages, batches)
            return
        self._metrics.store_write_seconds.observe(time.perf_counter() - started)
        self._metrics.store_write_failed.set(0)
        await asyncio.gather(*(message.ack() for message in messages))
        self._record(batches)

    async def _retry_one_by_one(self, messages: list[BusMessage], batches: list[list[LogEvent]]) -> None:
        try:
            await self._store.ping()
        except DependencyUnavailable:
            await asyncio.gather(*(message.nak(self._retry_delay) for message in messages))
            return
        for message, events in zip(messages, batches, strict=True):
            try:
                await self._store.write(events)
            except ValueError as exc:
                await self._dead_letters.send(message, "unstorable", f"an event can never be stored: {exc}")
                continue
            except StoreDiskFailure as exc:
                await self._retry_after_disk_failure([message], exc)
                continue
            except DependencyUnavailable as exc:
                self._metrics.store_write_failed.set(1)
                delay = min(_MAX_RETRY_DELAY_SECONDS, self._retry_delay * max(1, message.num_delivered))
                log = logger.warning if message.num_delivered >= self._pipeline.max_deliveries else logger.info
                log(
                    "message delivered %d times not stored yet, retrying in %.1f s: %s",
                    message.num_delivered,
                    delay,
                    exc,
                )
                await message.nak(delay)
                continue
            await message.ack()
            self._metrics.store_write_failed.set(0)
            self._record([events])

    async def _retry_after_disk_failure(self, messages: list[BusMessage], exc: StoreDiskFailure) -> None:
        """Nak `messages` for another try after the retry delay, however often they were delivered: the disk,
        not the events, refused them."""
        self._metrics.store_write_failed.set(1)
        logger.warning("log store write of %d messages refused by its disk, retrying: %s", len(messages), exc)
        await asyncio.gather(*(message.nak(self._retry_delay) for message in messages))

    def _record(self, batches: list[list[LogEvent]]) -> None:
        """Count what was indexed; the lag is that of the oldest batch (all events of a batch share it)."""
        received = [batch[0].received_at for batch in batches if batch]
        if not received:
            return
        self._metrics.indexer_events.inc(sum(len(batch) for batch in batches))
        self._metrics.indexer_lag.set(max(0.0, (datetime.now(UTC) - min(received)).total_seconds()))
