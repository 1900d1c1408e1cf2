"""Partition directories of the Tantivy store and the two bounded caches over them.

A partition is one Tantivy index holding one tenant's events of one `Period` (a UTC day, or for events
that arrived late a UTC month and the month they were received in: `mintlog.adapters.logstore.periods`), in
`root/{tenant_dir}/{YYYY-MM-DD}/` or `root/{tenant_dir}/{YYYY-MM@YYYY-MM}/`. `tenant_dir` is the tenant id
with every character outside `[A-Za-z0-9_-]` percent-encoded (UTF-8), so any tenant id maps to exactly one
directory inside `root` (`acme-1` stays `acme-1`; `../x` becomes `%2E%2E%2Fx`).

`PartitionCache` keeps at most `max_open_readers` indexes open for reading (least recently used first out)
and at most `max_open_writers` `IndexWriter`s (same policy); a partition with an open writer stays open
for reading too, so at most `max_open_readers + max_open_writers` indexes are open at once. Readers reload
on demand (`refresh`), never through Tantivy's per-index file-watcher threads. Each reload of the same
`tantivy.Index` keeps about 1 KB of native memory until that index is dropped (measured with tantivy-py
0.27: ~6 MiB per 5,500 reloads, flat when reopened), so a partition without a writer is opened afresh
instead of reloaded once every `RELOADS_BEFORE_REOPEN` reloads: a search process that reloads after every
commit stays flat in memory.

A writer grows the same way: Tantivy's `MmapDirectory` remembers every file it ever mapped (a path and a
dead weak reference; it prunes them only when asked for cache statistics), and a writer maps the files of
each new segment, ~1.3 KB per commit (measured with tantivy-py 0.27: +3.9 MiB per 3,000 commits, flat when
recycled). So after `COMMITS_BEFORE_RECYCLE` commits a writer is recycled right after a commit: closed, and
its partition opened afresh (the next write gives it a new writer). Closing a writer waits for its merges,
so the recycle is put off, commit by commit, while a merge is writing (`merge_in_flight`), up to twice the
limit; a process that indexes around the clock stays flat in memory too.

Every partition has the store's current schema, or the legacy one of partitions created before the
`field_decimals` field (`tantivy_schema.build_legacy_schema`), which is read and written in its own layout
(`Partition.decimals` is False). A partition created with any other layout (e.g. before the `field_pairs`
field was added) is refused with `IncompatiblePartitionError` when it is opened, for writing and for
search, instead of silently missing terms: such a development data directory has to be recreated (delete
it, or just its tenant directories).

Thread safety: `get`, `refresh`, `list_periods` and `stats` may be called from any thread. The writer methods
(`open_writers`, `commit`, `discard_writer`, `detach`, `close`) must be called from one thread at a time
(`commit` of different partitions may run in parallel); the store calls them from its single write thread,
which is also what makes "at most one `IndexWriter` per partition" hold.
"""

from __future__ import annotations

import json
import logging
import os
import string
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import tantivy

from mintlog.adapters.logstore.periods import Period, parse_period
from mintlog.adapters.logstore.tantivy_schema import (
    MESSAGE_TOKENIZER,
    build_legacy_schema,
    configure_new_index,
    message_analyzer,
)
from mintlog.errors import StoreUnavailable

__all__ = [
    "IncompatiblePartitionError",
    "Partition",
    "PartitionCache",
    "PartitionStats",
    "fsync_directory",
    "tenant_dir_name",
]

logger = logging.getLogger(__name__)

_SAFE_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-_")
# Tantivy's bounds for the indexing memory of one writer thread.
_MIN_WRITER_HEAP_BYTES = 15_000_000
_MAX_WRITER_HEAP_BYTES = 4_293_967_294


class IncompatiblePartitionError(StoreUnavailable):
    """A partition on disk was created with another schema than the store's (an older layout)."""


def tenant_dir_name(tenant_id: str) -> str:
    """The directory name of a tenant: the id itself when it is made of `[A-Za-z0-9_-]` only."""
    if not tenant_id:
        raise ValueError("tenant_id must not be empty")
    return "".join(
        character if character in _SAFE_CHARACTERS else "".join(f"%{byte:02X}" for byte in character.encode("utf-8"))
        for character in tenant_id
    )


def fsync_directory(path: Path) -> None:
    """Make the entries of directory `path` (new or renamed children) durable."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@dataclass(eq=False, slots=True)
class Partition:
    """One open partition index, and its writer while it has one."""

    tenant_id: str
    period: Period
    path: Path
    index: tantivy.Index
    meta_signature: tuple[int, int, int] | None = None
    writer: tantivy.IndexWriter | None = None
    uncommitted: bool = False
    decimals: bool = True
    """Whether the partition has the `field_decimals` column (False: the legacy layout, numbers in `fields`)."""
    reloads: int = 0
    """Reloads of `index` since it was opened (see `RELOADS_BEFORE_REOPEN`)."""
    commits: int = 0
    """Commits of `writer` since it was opened (see `COMMITS_BEFORE_RECYCLE`)."""

    @property
    def name(self) -> str:
        """`{tenant_id}/{period name}`, as reported in `SearchPage.partitions`."""
        return f"{self.tenant_id}/{self.period.name}"


@dataclass(frozen=True, slots=True)
class PartitionStats:
    """How many partition indexes and writers are open right now."""

    open_readers: int
    open_writers: int


RELOADS_BEFORE_REOPEN = 500
"""Reloads after which `PartitionCache.refresh` opens a writer-less partition's index afresh instead."""

COMMITS_BEFORE_RECYCLE = 1000
"""Commits after which `PartitionCache.commit` recycles a writer once no merge is writing (at twice this
number, even while one is). About 1.3 MB of native memory per writer, every ~4 minutes at 4 commits a
second."""


def _prepare_for_search(index: tantivy.Index) -> tantivy.Index:
    """Register the message analyzer on a just-opened `index` and make its reader reload only when asked."""
    index.register_tokenizer(MESSAGE_TOKENIZER, message_analyzer())
    # Reload explicitly (see `refresh`) instead of one file-watcher thread per open index.
    index.config_reader(reload_policy="manual")
    return index


def _open_afresh(partition: Partition) -> None:
    """Replace `partition`'s index by a fresh open of its directory, dropping what the old one kept."""
    partition.index = _prepare_for_search(tantivy.Index.open(str(partition.path)))
    partition.reloads = 0


_SEGMENT_ID_LENGTH = 32  # a segment's files are `{uuid as 32 hex digits}.{component}`


def merge_in_flight(path: Path) -> bool:
    """Whether the partition at `path` holds files of a segment its `meta.json` does not list.

    Right after a commit (no document waits in a writer), such files are what a merge is writing, or,
    briefly, the files of merged segments not yet deleted.
    """
    try:
        meta = json.loads((path / "meta.json").read_bytes())
        listed = {str(segment["segment_id"]).replace("-", "") for segment in meta["segments"]}
        names = [entry.name for entry in os.scandir(path)]
    except (OSError, ValueError, KeyError, TypeError):
        return True  # cannot tell: as if a merge were running, so the recycle waits for the next commit
    for name in names:
        segment_id, dot, _extension = name.partition(".")
        if dot and len(segment_id) == _SEGMENT_ID_LENGTH and segment_id not in listed:
            return True
    return False


def _meta_signature(path: Path) -> tuple[int, int, int] | None:
    try:
        status = os.stat(path / "meta.json")
    except FileNotFoundError:
        return None
    return (status.st_ino, status.st_mtime_ns, status.st_size)


class PartitionCache:
    """The open partition indexes and writers of one store root, both bounded (see the module docstring)."""

    def __init__(
        self,
        root: Path,
        schema: tantivy.Schema,
        *,
        writer_heap_bytes: int,
        max_open_writers: int,
        max_open_readers: int,
    ) -> None:
        if writer_heap_bytes < _MIN_WRITER_HEAP_BYTES:
            raise ValueError(f"writer_heap_bytes must be at least {_MIN_WRITER_HEAP_BYTES} (Tantivy's minimum)")
        if max_open_writers < 1 or max_open_readers < 1:
            raise ValueError("max_open_writers and max_open_readers must be at least 1")
        self._root = root
        self._schema = schema
        self._legacy_schema = build_legacy_schema()
        self._writer_heap_bytes = min(writer_heap_bytes, _MAX_WRITER_HEAP_BYTES)
        self._max_open_writers = max_open_writers
        self._max_open_readers = max_open_readers
        self._lock = threading.Lock()
        self._open: OrderedDict[tuple[str, Period], Partition] = OrderedDict()
        self._writers: OrderedDict[tuple[str, Period], Partition] = OrderedDict()

    @property
    def max_open_writers(self) -> int:
        """How many partitions may have a writer at once."""
        return self._max_open_writers

    def tenant_path(self, tenant_id: str) -> Path:
        """The directory holding every partition of `tenant_id`."""
        return self._root / tenant_dir_name(tenant_id)

    def list_periods(self, tenant_id: str) -> list[Period]:
        """The periods of `tenant_id` that have a partition on disk, oldest first (`Period.sort_key`)."""
        try:
            entries = list(os.scandir(self.tenant_path(tenant_id)))
        except FileNotFoundError:
            return []
        periods: list[Period] = []
        for entry in entries:
            period = parse_period(entry.name)
            if period is not None and entry.is_dir():
                periods.append(period)
        return sorted(periods, key=lambda period: period.sort_key)

    def get(self, tenant_id: str, period: Period, *, create: bool) -> Partition | None:
        """The open partition of `tenant_id` for `period`; opened (or created if `create`) when needed.

        Returns None when the partition does not exist and `create` is false.
        """
        key = (tenant_id, period)
        with self._lock:
            partition = self._writers.get(key) or self._open.get(key)
            if partition is None:
                partition = self._open_index(tenant_id, period, create=create)
                if partition is None:
                    return None
            self._open[key] = partition
            self._open.move_to_end(key)
            self._evict_readers()
            return partition

    def _open_index(self, tenant_id: str, period: Period, *, create: bool) -> Partition | None:
        path = self.tenant_path(tenant_id) / period.name
        signature = _meta_signature(path)
        if signature is not None:
            try:
                index = tantivy.Index.open(str(path))
            except Exception as exc:
                if not create and not path.exists():
                    return None  # dropped (retention) between being listed and being opened
                if "zstd-compression" in str(exc):
                    raise IncompatiblePartitionError(
                        f"partition {tenant_id}/{period.name} at {path} is compressed with zstd, which the "
                        "installed Tantivy cannot read: install Tantivy built with zstd (`make install`, "
                        "docs/operations.md)"
                    ) from exc
                raise
            if index.schema not in (self._schema, self._legacy_schema):
                raise IncompatiblePartitionError(
                    f"partition {tenant_id}/{period.name} at {path} was created with another index layout "
                    "(an older Mintlog version); recreate the data directory"
                )
        elif create:
            self._create_directory(path)
            tantivy.Index(self._schema, path=str(path), reuse=True)
            # Index settings are read when an index opens: set them on the new one, then open it.
            configure_new_index(path)
            index = tantivy.Index.open(str(path))
            signature = _meta_signature(path)
        else:
            return None
        _prepare_for_search(index)
        decimals = index.schema != self._legacy_schema
        return Partition(
            tenant_id=tenant_id, period=period, path=path, index=index, meta_signature=signature, decimals=decimals
        )

    def _create_directory(self, path: Path) -> None:
        missing = [parent for parent in (path.parent, path) if not parent.exists()]
        path.mkdir(parents=True, exist_ok=True)
        for created in missing:
            fsync_directory(created.parent)

    def _evict_readers(self) -> None:
        excess = len(self._open) - len(self._writers) - self._max_open_readers
        if excess <= 0:
            return
        for key in [key for key, partition in self._open.items() if partition.writer is None][:excess]:
            del self._open[key]

    def refresh(self, partition: Partition, *, force: bool = False) -> None:
        """Make `partition`'s searchers see its latest commit (only reloads when `meta.json` changed).

        A partition dropped (moved away by retention) since it was opened keeps the searchers it has: a
        search that already holds it reads what it held, as `detach` promises, instead of failing.
        """
        signature = _meta_signature(partition.path)
        if force or signature != partition.meta_signature:
            try:
                if partition.writer is None and partition.reloads >= RELOADS_BEFORE_REOPEN:
                    _open_afresh(partition)
                else:
                    partition.index.reload()
                    partition.reloads += 1
            except Exception:  # Tantivy raises ValueError("Failed to acquire Lockfile ...") for a moved index
                if partition.path.exists():
                    raise
                return
            partition.meta_signature = signature

    def open_writers(self, partitions: Sequence[Partition], pool: Executor | None = None) -> None:
        """Give every partition of `partitions` a writer (at most `max_open_writers` of them).

        The least recently used writers of other partitions are closed to make room, in parallel on `pool`
        when given (closing waits for the writer's merges).
        """
        if len(partitions) > self._max_open_writers:
            raise ValueError(f"cannot keep {len(partitions)} writers open, the limit is {self._max_open_writers}")
        wanted = {(partition.tenant_id, partition.period) for partition in partitions}
        with self._lock:
            for key in wanted & self._writers.keys():
                self._writers.move_to_end(key)
            missing = [partition for partition in partitions if partition.writer is None]
            evicted: list[Partition] = []
            for key in list(self._writers):
                if len(self._writers) + len(missing) <= self._max_open_writers:
                    break
                if key not in wanted:
                    evicted.append(self._writers.pop(key))
        if pool is not None and len(evicted) > 1:
            list(pool.map(self._close_writer, evicted))
        else:
            for partition in evicted:
                self._close_writer(partition)
        for partition in missing:
            writer = partition.index.writer(heap_size=self._writer_heap_bytes, num_threads=1)
            key = (partition.tenant_id, partition.period)
            with self._lock:
                partition.writer = writer
                self._writers[key] = partition
                self._open[key] = partition
                self._open.move_to_end(key)
                self._evict_readers()

    def commit(self, partition: Partition) -> None:
        """Commit `partition`'s writer (durable once this returns) and reload its searchers.

        Every `COMMITS_BEFORE_RECYCLE` commits (see the module docstring) the writer is closed afterwards
        and the partition opened afresh; the next `open_writers` gives it a new writer.
        """
        if partition.writer is None:
            return
        partition.writer.commit()
        partition.uncommitted = False
        partition.commits += 1
        if partition.commits >= COMMITS_BEFORE_RECYCLE and (
            partition.commits >= 2 * COMMITS_BEFORE_RECYCLE or not merge_in_flight(partition.path)
        ):
            self._recycle_writer(partition)
            return
        self.refresh(partition, force=True)

    def _recycle_writer(self, partition: Partition) -> None:
        """Close `partition`'s (committed) writer and open its index afresh, dropping what both held."""
        with self._lock:
            self._writers.pop((partition.tenant_id, partition.period), None)
        self._close_writer(partition)
        signature = _meta_signature(partition.path)
        _open_afresh(partition)
        partition.meta_signature = signature

    def discard_writer(self, partition: Partition) -> None:
        """Drop what `partition`'s writer holds uncommitted, then close it."""
        writer = partition.writer
        if writer is None:
            return
        with self._lock:
            self._writers.pop((partition.tenant_id, partition.period), None)
        partition.uncommitted = False
        try:
            writer.rollback()
        finally:
            self._close_writer(partition)

    def _close_writer(self, partition: Partition) -> None:
        writer = partition.writer
        if writer is None:
            return
        partition.writer = None
        partition.commits = 0
        if partition.uncommitted:
            # Not expected (a write commits or discards what it added before returning, and never uses more
            # writers than there are slots); should it happen, committing keeps the documents.
            writer.commit()
            partition.uncommitted = False
        writer.wait_merging_threads()

    def detach(self, tenant_id: str, period: Period, trash: Path) -> None:
        """Close one partition's writer and reader and move its directory to `trash` (same file system).

        The move happens under the cache lock, so no search reopens the partition once it is gone;
        searches that already hold it keep reading the open files.
        """
        key = (tenant_id, period)
        with self._lock:
            partition = self._open.pop(key, None)
            writer_partition = self._writers.pop(key, None)
        for closing in (partition, writer_partition):
            if closing is not None:
                self._close_writer(closing)
        with self._lock:
            self._open.pop(key, None)  # a search may have reopened it while the writer closed
            (self.tenant_path(tenant_id) / period.name).rename(trash)

    def close(self) -> None:
        """Close every writer (waiting for their merges) and drop every open index."""
        with self._lock:
            writers = list(self._writers.values())
            self._writers.clear()
            self._open.clear()
        failures: list[BaseException] = []
        for partition in writers:
            try:
                self._close_writer(partition)
            except BaseException as exc:  # pyo3 panics are BaseException; close the others first
                logger.exception("closing the writer of partition %s failed", partition.name)
                failures.append(exc)
        if failures:
            raise failures[0]

    def stats(self) -> PartitionStats:
        """How many indexes and writers are open."""
        with self._lock:
            return PartitionStats(open_readers=len(self._open), open_writers=len(self._writers))
