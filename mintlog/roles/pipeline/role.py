"""The pipeline role: the normalizer, the archive writer, the indexer and the retention jobs."""

from __future__ import annotations

from mintlog.roles.pipeline.archive import ArchiveWriter
from mintlog.roles.pipeline.archive_retention import ArchiveRetentionJob
from mintlog.roles.pipeline.indexer import IndexerWorker
from mintlog.roles.pipeline.normalizer import NormalizerWorker
from mintlog.roles.pipeline.retention import RetentionJob
from mintlog.runtime import Runtime

__all__ = ["PipelineRole"]


class PipelineRole:
    """Normalizes raw batches, archives them (when enabled), indexes parsed ones and enforces retention (when
    enabled) and archive retention.

    Any number of instances share the durable consumers; each retention job runs on the one holding its lease.
    """

    name = "pipeline"

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        grace = settings.http.shutdown_grace_seconds
        self.archive: ArchiveWriter | None = None
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
        )
        self.indexer = IndexerWorker(
            bus=runtime.bus,
            store=runtime.store,
            pipeline=settings.pipeline,
            settings=settings.indexer,
            metrics=runtime.metrics,
            grace_seconds=grace,
        )
        self.retention: RetentionJob | None = None
        if settings.retention.enabled:
            self.retention = RetentionJob(
                metadata=runtime.metadata,
                store=runtime.store,
                settings=settings.retention,
                metrics=runtime.metrics,
            )

    async def start(self) -> None:
        await self.indexer.start()
        if self.archive is not None:
            await self.archive.start()
        await self.normalizer.start()
        if self.retention is not None:
            await self.retention.start()
        await self.archive_retention.start()

    async def stop(self) -> None:
        await self.archive_retention.stop()
        if self.retention is not None:
            await self.retention.stop()
        await self.normalizer.stop()
        if self.archive is not None:
            await self.archive.stop()  # flushes what the normalizer handed over, then acks it
        await self.indexer.stop()
