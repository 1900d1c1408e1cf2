"""`TantivyLogStore`: the embedded `LogStore`, one Tantivy index per tenant and partition period.

Layout (periods: `mintlog.adapters.logstore.periods`)::

    root/
      {tenant_dir}/            the tenant id, percent-encoded outside [A-Za-z0-9_-]
        {YYYY-MM-DD}/          one Tantivy index: the tenant's events whose `timestamp` falls on that UTC day
                               and that arrived at most two days later
        {YYYY-MM}@{YYYY-MM}/   one Tantivy index: the tenant's older events of that UTC month (first) that
                               were received in that UTC month (second): imported history stays in a few
                               partitions instead of one small partition per day
          meta.json, *.idx, *.store, ...

Guarantees:

- `write` returns only after every touched partition is committed (fsynced by Tantivy) and reloaded, so an
  event is durable and searchable once `write` returned. A batch is grouped by partition and committed once
  per partition, never once per event.
- Writes are create-only by `(tenant_id, id)`, like OpenSearch's `op_type=create`: an event whose id is
  already in its partition is skipped, whether it came in the same call, an earlier call or before a
  restart. The check looks in the partition of the event's period: the pipeline derives an event's
  timestamp, receive time and id from the same delivered batch, so a redelivered event lands in the same
  partition.
- A process killed at any point (even `kill -9` in the middle of a commit) leaves indexes Tantivy reopens
  at their last commit; writer locks are OS file locks, released with the process.
- Search visits partitions newest first (or oldest first), merging the ones whose periods overlap, and
  orders by `(timestamp, id)` exactly, at microsecond precision; `total` is the exact number of matches.
- Every partition has the current schema: one created with an older layout makes reads and writes of it
  fail with `IncompatiblePartitionError` (a `StoreUnavailable`); recreate such a development data dir. So
  does one compressed with zstd when the installed Tantivy lacks zstd (the error says so).
- A write the disk refuses (full, over quota, read-only, I/O error) raises `StoreDiskFailure`, and `ping`
  raises it too, in this process and in every other one that opens the same root, until a write succeeds
  again (`mintlog.adapters.logstore.tantivy_disk`). The refused write's uncommitted documents are dropped
  with their writers (opened again by the next write), so retrying it once there is room stores each
  event once.

Memory stays bounded with any number of tenants and days: at most `max_open_writers` partitions have an
`IndexWriter` (the least recently used is closed first, after its merges finish); each writer has one
indexing thread and uses up to `writer_heap_bytes` of indexing memory while a write fills it. At most
`max_open_readers` other partitions stay open for search (least recently used first out). The bound is
about `max_open_writers * writer_heap_bytes` of indexing memory (256 MiB with the defaults) plus the
memory-mapped files and small per-index state of at most `max_open_readers + max_open_writers` indexes.
A write touching more partitions than there are writer slots proceeds in groups of `max_open_writers`.
Merges free what they built, but glibc keeps much of it: after a write, at most once every
`release_freed_memory_seconds`, that free memory is handed back to the system (`FreedMemoryReleaser`).

Threads: every write, `drop_partitions_before` and `close` runs on one dedicated writer thread, in call
order, so the event loop never waits for a commit and a partition never has two writers; the partitions
of one group are committed in parallel on a small pool (commits mostly wait on indexing threads and
fsync). Searches run on the default executor, concurrently with writes and with each other.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import msgspec
import tantivy

from mintlog.adapters.logstore.days import day_range
from mintlog.adapters.logstore.freed_memory import FreedMemoryReleaser
from mintlog.adapters.logstore.periods import Period, expired, overlapping, period_of, visit_groups
from mintlog.adapters.logstore.tantivy_aggregate import aggregate_partitions
from mintlog.adapters.logstore.tantivy_disk import DiskHealth
from mintlog.adapters.logstore.tantivy_partitions import (
    IncompatiblePartitionError,
    Partition,
    PartitionCache,
    PartitionStats,
    fsync_directory,
)
from mintlog.adapters.logstore.tantivy_query import build_query
from mintlog.adapters.logstore.tantivy_schema import (
    EventEncodingError,
    build_schema,
    encode_document,
    to_utc,
)
from mintlog.adapters.logstore.tantivy_search import PageCollector, match_count
from mintlog.domain.events import LogEvent
from mintlog.domain.tenants import RetentionBasis
from mintlog.errors import StoreUnavailable
from mintlog.ports.aggregation import AggregateQuery, AggregateResult
from mintlog.ports.logstore import SearchPage, SearchQuery

__all__ = ["EventEncodingError", "IncompatiblePartitionError", "PartitionStats", "TantivyLogStore"]

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
_TRASH_PREFIX = ".dropped-"
_ONE_MICROSECOND = timedelta(microseconds=1)
_T = TypeVar("_T")
# The events of one write that belong to one partition, by id, each with its timestamp in UTC.
_PartitionBatch: TypeAlias = dict[str, tuple[LogEvent, datetime]]
_events_encoder = msgspec.json.Encoder()


@contextmanager
def _translate_errors(action: str) -> Generator[None]:
    """Turn whatever Tantivy or the file system raises into `StoreUnavailable`."""
    try:
        yield
    except (StoreUnavailable, EventEncodingError, KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # Tantivy panics surface as pyo3's PanicException, a BaseException
        raise StoreUnavailable(f"tantivy store could not {action}: {exc}") from exc


class TantivyLogStore:
    """The embedded log store (see the module docstring for layout, guarantees and memory bound)."""

    def __init__(
        self,
        root: Path,
        *,
        writer_heap_bytes: int = 64 * MiB,
        max_open_writers: int = 4,
        max_open_readers: int = 256,
        release_freed_memory_seconds: float = 60.0,
    ) -> None:
        """Raises `ValueError` when `writer_heap_bytes` is below Tantivy's 15 MB or a limit is below 1.

        `release_freed_memory_seconds`: how often a successful write hands memory freed by Tantivy (its
        merges) back to the system (`FreedMemoryReleaser`); 0: never.
        """
        self._root = root
        self._schema = build_schema()
        self._partitions = PartitionCache(
            root,
            self._schema,
            writer_heap_bytes=writer_heap_bytes,
            max_open_writers=max_open_writers,
            max_open_readers=max_open_readers,
        )
        self._disk = DiskHealth(root)
        self._freed_memory = FreedMemoryReleaser(release_freed_memory_seconds)
        self._write_executor: ThreadPoolExecutor | None = None
        self._commit_pool: ThreadPoolExecutor | None = None

    @property
    def root(self) -> Path:
        """The directory holding every partition."""
        return self._root

    async def start(self) -> None:
        """Create the root directory and the writer thread; remove leftovers of interrupted drops."""
        if self._write_executor is not None:
            return
        await asyncio.to_thread(self._start_sync)
        self._write_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tantivy-writer")
        self._commit_pool = ThreadPoolExecutor(
            max_workers=self._partitions.max_open_writers, thread_name_prefix="tantivy-commit"
        )

    def _start_sync(self) -> None:
        with _translate_errors("create its root directory"):
            self._root.mkdir(parents=True, exist_ok=True)
            for trash in self._root.glob(f"*/{_TRASH_PREFIX}*"):
                shutil.rmtree(trash, ignore_errors=True)
            self._disk.start()

    async def close(self) -> None:
        """Close every writer (waiting for merges) and reader; commits nothing new. Idempotent."""
        executor = self._write_executor
        if executor is None:
            return
        self._write_executor = None
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._close_sync)
        finally:
            executor.shutdown(wait=False)
            if self._commit_pool is not None:
                self._commit_pool.shutdown(wait=False)  # idle: the last write finished before _close_sync
                self._commit_pool = None

    def _close_sync(self) -> None:
        with _translate_errors("close its partitions"):
            self._partitions.close()

    async def ping(self) -> None:
        """Return when the store is started, its root is a writable directory and its disk did not refuse the
        last write (`StoreDiskFailure`, see the module docstring); else `StoreUnavailable`."""
        if self._write_executor is None:
            raise StoreUnavailable("tantivy store is not started")
        await asyncio.to_thread(self._ping_sync)

    def _ping_sync(self) -> None:
        if not (self._root.is_dir() and os.access(self._root, os.R_OK | os.W_OK | os.X_OK)):
            raise StoreUnavailable(f"tantivy store root {self._root} is not a writable directory")
        self._disk.check()

    def stats(self) -> PartitionStats:
        """How many partition indexes and writers are open now (never above the configured bounds)."""
        return self._partitions.stats()

    async def _on_writer_thread(self, function: Callable[..., _T], *args: Any) -> _T:
        executor = self._write_executor
        if executor is None:
            raise StoreUnavailable("tantivy store is not started")
        return await asyncio.get_running_loop().run_in_executor(executor, function, *args)

    # --- writing -------------------------------------------------------------------------------------

    async def write(self, events: Sequence[LogEvent]) -> None:
        """Store `events` durably and searchably before returning; create-only by `(tenant_id, id)`.

        Raises `StoreUnavailable` when Tantivy or the disk fails (some partitions may be committed: retry
        the whole batch), `StoreDiskFailure` (one of them) when the disk refused the write, `EventEncodingError`
        (a `ValueError`) when an event cannot be encoded at all, and `ValueError` for an empty tenant id; in
        those two cases nothing of the offending partition is kept.
        """
        if not events:
            return
        await self._on_writer_thread(self._write_sync, list(events))

    def _write_sync(self, events: list[LogEvent]) -> None:
        batches: dict[tuple[str, Period], _PartitionBatch] = {}
        for event in events:
            if not event.tenant_id:
                raise ValueError(f"event {event.id!r} has an empty tenant_id")
            timestamp_utc = to_utc(event.timestamp)
            batch = batches.setdefault((event.tenant_id, period_of(timestamp_utc, event.received_at)), {})
            batch.setdefault(event.id, (event, timestamp_utc))
        try:
            with _translate_errors("write"):
                pending = list(batches.items())
                # At most as many partitions as there are writer slots at a time, so none is evicted uncommitted.
                step = self._partitions.max_open_writers
                for first in range(0, len(pending), step):
                    self._write_partitions(pending[first : first + step])
        except StoreUnavailable as exc:
            refusal = self._disk.refusal(exc, needed_bytes=len(_events_encoder.encode(events)))
            if refusal is None:
                raise
            raise refusal from exc.__cause__
        self._disk.succeeded()
        self._freed_memory.release_if_due()

    def _write_partitions(self, group: list[tuple[tuple[str, Period], _PartitionBatch]]) -> None:
        """Add the new events of every partition of `group`, then commit each.

        Adding to all writers before committing any lets each writer's indexing thread work while the
        next partition's documents are encoded. A partition whose events did not all get committed is
        rolled back, so a failed write never leaves half a partition batch behind for a later commit.
        """
        additions: list[tuple[Partition, list[tuple[LogEvent, datetime]]]] = []
        for (tenant_id, period), batch in group:
            partition = self._partitions.get(tenant_id, period, create=True)
            assert partition is not None
            stored = self._stored_ids(partition, list(batch))
            if len(stored) < len(batch):
                additions.append((partition, [item for event_id, item in batch.items() if event_id not in stored]))
        if not additions:
            return
        self._partitions.open_writers([partition for partition, _events in additions], self._commit_pool)
        uncommitted: list[Partition] = []
        try:
            for partition, new_events in additions:
                writer = partition.writer
                assert writer is not None
                uncommitted.append(partition)
                partition.uncommitted = True
                for event, timestamp_utc in new_events:
                    writer.add_json(encode_document(event, timestamp_utc, decimals=partition.decimals))
            self._commit_all(uncommitted)
        except BaseException:
            for partition in uncommitted:
                self._partitions.discard_writer(partition)
            raise

    def _commit_all(self, partitions: list[Partition]) -> None:
        """Commit every partition, removing each from `partitions` once committed; raise the first failure.

        Several commits run in parallel: a commit mostly waits for its indexing thread and for fsyncs.
        """
        pool = self._commit_pool
        if pool is None or len(partitions) == 1:
            for partition in list(partitions):
                self._partitions.commit(partition)
                partitions.remove(partition)
            return
        commits = [(partition, pool.submit(self._partitions.commit, partition)) for partition in partitions]
        failure: BaseException | None = None
        for partition, commit in commits:
            try:
                commit.result()
            except BaseException as exc:  # wait for every commit before reporting
                failure = failure or exc
            else:
                partitions.remove(partition)
        if failure is not None:
            raise failure

    def _stored_ids(self, partition: Partition, event_ids: list[str]) -> set[str]:
        """Which of `event_ids` the partition already holds (it holds each id at most once)."""
        self._partitions.refresh(partition)
        searcher = partition.index.searcher()
        if searcher.num_docs == 0:
            return set()
        query = tantivy.Query.term_set_query(partition.index.schema, "id", event_ids)
        matches = match_count(searcher.search(query, 1, count=True))
        if matches == 0:
            return set()
        if matches == len(event_ids):
            return set(event_ids)
        # Sorting by the `id` fast field hands back the ids themselves, without loading documents.
        hits = searcher.search(query, matches, count=False, order_by_field="id").hits
        return {str(sort_value) for sort_value, _address in hits}

    # --- retention -----------------------------------------------------------------------------------

    async def drop_partitions_before(
        self, tenant_id: str, day: date, *, basis: RetentionBasis = "event_time"
    ) -> list[str]:
        """Delete every partition of `tenant_id` all of whose events are before `day` by `basis`
        (`periods.expired`); a partition that may hold a later event is kept whole.

        Closes their writers and readers first, runs after writes already submitted, and returns the
        dropped partitions as `{tenant_id}/{period name}`, oldest first. Other tenants are never touched.
        Searches already running may still read a dropped partition; later ones no longer see it.
        """
        return await self._on_writer_thread(self._drop_sync, tenant_id, day, basis)

    def _drop_sync(self, tenant_id: str, day: date, basis: RetentionBasis) -> list[str]:
        with _translate_errors("drop partitions"):
            tenant_path = self._partitions.tenant_path(tenant_id)
            dropped: list[str] = []
            for period in self._partitions.list_periods(tenant_id):
                if not expired(period, day, basis):
                    continue
                # The rename makes the drop atomic for searches; the trash is removed now or at next start.
                trash = tenant_path / f"{_TRASH_PREFIX}{period.name}-{uuid.uuid4().hex}"
                self._partitions.detach(tenant_id, period, trash)
                dropped.append(f"{tenant_id}/{period.name}")
                shutil.rmtree(trash, ignore_errors=True)
            if dropped:
                fsync_directory(tenant_path)
                logger.info("dropped %d partition(s) of tenant %s before %s by %s", len(dropped), tenant_id, day, basis)
            return dropped

    # --- aggregating --------------------------------------------------------------------------------

    async def aggregate(self, query: AggregateQuery) -> AggregateResult:
        """Group and summarize the events of `query.tenant_id` matching `query.node` within `[start, end)`.

        One native aggregation per day partition in range, merged exactly; see
        `mintlog.adapters.logstore.tantivy_aggregate`. Runs on the default executor like `search`.
        """
        if self._write_executor is None:
            raise StoreUnavailable("tantivy store is not started")
        return await asyncio.to_thread(aggregate_partitions, self._partitions, self._schema, query)

    # --- searching -----------------------------------------------------------------------------------

    async def search(self, query: SearchQuery) -> SearchPage:
        """Events of `query.tenant_id` matching `query.node` in `[start, end)`, ordered by `(timestamp, id)`.

        The node is compiled once (`mintlog.query.tantivy.to_tantivy`, builders only: no user text reaches
        a query parser) and run on every partition whose period overlaps both `[start, end)` and the time
        window the node implies (`mintlog.query.time_window`); `total` is exact. Raises `QuerySyntaxError`
        when a time bound of the node cannot be resolved against `query.now`.
        """
        if self._write_executor is None:
            raise StoreUnavailable("tantivy store is not started")
        return await asyncio.to_thread(self._search_sync, query)

    def _search_sync(self, query: SearchQuery) -> SearchPage:
        started = time.perf_counter()
        first_day, last_day = day_range(query)
        if not query.tenant_id or (first_day is not None and last_day is not None and first_day > last_day):
            return SearchPage(events=[], total=0, took_ms=_elapsed_ms(started))
        # Outside `_translate_errors`: a time bound out of range is the caller's error, not the store's.
        collector = PageCollector.start(self._schema, build_query(self._schema, query), query)
        searched: list[str] = []
        with _translate_errors("search"):
            periods = overlapping(self._partitions.list_periods(query.tenant_id), first_day, last_day)
            # Groups of overlapping periods never overlap each other: visiting them in order merges them.
            for group in visit_groups(periods, collector.descending):
                if collector.done:
                    break
                partitions: list[Partition] = []
                for period in group:
                    partition = self._partitions.get(query.tenant_id, period, create=False)
                    if partition is None:  # dropped since it was listed
                        continue
                    self._partitions.refresh(partition)
                    partitions.append(partition)
                collector.visit(partitions)
                searched.extend(partition.name for partition in partitions)
        total, lower_bound = collector.total_and_bound()
        return SearchPage(
            events=collector.found,
            total=total,
            total_is_lower_bound=lower_bound,
            took_ms=_elapsed_ms(started),
            partitions=searched,
        )


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
