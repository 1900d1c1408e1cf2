"""The pipeline role: the normalizer, the indexer and the retention job."""

from __future__ import annotations

from mintlog.roles.pipeline.indexer import IndexerWorker
from mintlog.roles.pipeline.normalizer import NormalizerWorker
from mintlog.roles.pipeline.retention import RetentionJob
from mintlog.runtime import Runtime

__all__ = ["PipelineRole"]


class PipelineRole:
    """Normalizes raw batches, indexes parsed ones and enforces retention (when enabled).

    Any number of instances share the durable consumers; retention runs on the one holding its lease.
    """

    name = "pipeline"

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        grace = settings.http.shutdown_grace_seconds
        self.normalizer = NormalizerWorker(
            bus=runtime.bus,
            settings=settings.pipeline,
            limits=settings.ingest,
            metrics=runtime.metrics,
            grace_seconds=grace,
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
        await self.normalizer.start()
        if self.retention is not None:
            await self.retention.start()

    async def stop(self) -> None:
        if self.retention is not None:
            await self.retention.stop()
        await self.normalizer.stop()
        await self.indexer.stop()
