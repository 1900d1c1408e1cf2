"""The pipeline role: the normalizer, the archive writer, the indexer and the retention jobs."""

from __future__ import annotations

from mintlog.roles.pipeline.archive import ArchiveWriter
from mintlog.roles.pipeline.archive_retention import ArchiveRetentionJob
from mintlog.roles.pipeline.indexer import IndexerWorker
from mintlog.roles.pipeline.normalizer import NormalizerWorker
from mintlog.roles.pipeline.retention import RetentionJob
from mintlog.roles.pipeline.tenant_parsing import TenantParsingCache
from mintlog.runtime import Runtime
from mintlog.settings import Settings

__all__ = ["PipelineRole", "indexer_concurrent_writes", "indexer_max_inflight_bytes"]

_OPENSEARCH_CONCURRENT_WRITES = 4
_TANTIVY_MAX_INFLIGHT_BYTES = 16 * 1024 * 1024
_OPENSEARCH_MAX_INFLIGHT_BYTES = 8 * 1024 * 1024


def indexer_concurrent_writes(settings: Settings) -> int:
    """`MINTLOG_INDEXER__CONCURRENT_WRITES`, or the store's default when it is 0: one for Tantivy (one writer
    thread commits every write; a queue of writes would only make each smaller), four for OpenSearch (it
    indexes concurrent bulk requests on all its cores)."""
    if settings.indexer.concurrent_writes:
        return settings.indexer.concurrent_writes
    url = settings.store.url
    return 1 if not url or url.startswith("tantivy://") else _OPENSEARCH_CONCURRENT_WRITES


def indexer_max_inflight_bytes(settings: Settings) -> int:
    """`MINTLOG_INDEXER__MAX_INFLIGHT_BYTES`, or the store's default when it is 0: 16 MiB for Tantivy (one write
    of up to `max_batch_events`, as before the bound), 8 MiB for OpenSearch (four writes of 2 MiB, ~7,000
    events each: a pipeline process stays near 400 MiB under a backlog)."""
    if settings.indexer.max_inflight_bytes:
        return settings.indexer.max_inflight_bytes
    url = settings.store.url
    return _TANTIVY_MAX_INFLIGHT_BYTES if not url or url.startswith("tantivy://") else _OPENSEARCH_MAX_INFLIGHT_BYTES


class PipelineRole:
    """The pipeline stages of `MINTLOG_PIPELINE__STAGES` (both by default): `normalize` normalizes raw batches,
    archives them (when enabled) and runs archive retention; `index` indexes parsed batches and enforces
    retention (when enabled), in the process that writes the store.

    Any number of instances share the durable consumers; each retention job runs on the one holding its lease.
    """

    name = "pipeline"

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        stages = settings.pipeline.stages
        grace = settings.http.shutdown_grace_seconds
        self.archive: ArchiveWriter | None = None
        self.archive_retention: ArchiveRetentionJob | None = None
        self.normalizer: NormalizerWorker | None = None
        self.indexer: IndexerWorker | None = None
        self.retention: RetentionJob | None = None
        if "normalize" in stages:
            if settings.archive.enabled:
                self.archive = ArchiveWriter(
                    bus=runtime.bus,
                    blobs=runtime.blobs,
                    manifest=runtime.archive,
                    settings=settings.archive,
                    pipeline=settings.pipeline,
                    metrics=runtime.metrics,
                )
            # Archive retention runs even with archiving off, so objects written before still age out.
            self.archive_retention = ArchiveRetentionJob(
                metadata=runtime.metadata,
                manifest=runtime.archive,
                blobs=runtime.blobs,
                settings=settings.archive,
                metrics=runtime.metrics,
            )
            self.normalizer = NormalizerWorker(
                bus=runtime.bus,
                settings=settings.pipeline,
                limits=settings.ingest,
                metrics=runtime.metrics,
                grace_seconds=grace,
                archive=self.archive,
                parsing=TenantParsingCache(runtime.metadata, runtime.extraction_rules, settings.parsing),
            )
        if "index" in stages:
            self.indexer = IndexerWorker(
                bus=runtime.bus,
                store=runtime.store,
                pipeline=settings.pipeline,
                settings=settings.indexer,
                metrics=runtime.metrics,
                grace_seconds=grace,
                concurrent_writes=indexer_concurrent_writes(settings),
                max_inflight_bytes=indexer_max_inflight_bytes(settings),
            )
            if settings.retention.enabled:
                self.retention = RetentionJob(
                    metadata=runtime.metadata,
                    store=runtime.store,
                    settings=settings.retention,
                    metrics=runtime.metrics,
                )

    async def start(self) -> None:
        if self.indexer is not None:
            await self.indexer.start()
        if self.archive is not None:
            await self.archive.start()
        if self.normalizer is not None:
            await self.normalizer.start()
        if self.retention is not None:
            await self.retention.start()
        if self.archive_retention is not None:
            await self.archive_retention.start()

    async def stop(self) -> None:
        if self.archive_retention is not None:
            await self.archive_retention.stop()
        if self.retention is not None:
            await self.retention.stop()
        if self.normalizer is not None:
            await self.normalizer.stop()
        if self.archive is not None:
            await self.archive.stop()  # flushes what the normalizer handed over, then acks it
        if self.indexer is not None:
            await self.indexer.stop()
