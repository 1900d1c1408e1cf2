"""The pipeline role: the normalizer and the indexer."""

from __future__ import annotations

from mintlog.roles.pipeline.indexer import IndexerWorker
from mintlog.roles.pipeline.normalizer import NormalizerWorker
from mintlog.runtime import Runtime

__all__ = ["PipelineRole"]


class PipelineRole:
    """Normalizes raw batches and indexes parsed ones. Any number of instances share the durable consumers."""

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

    async def start(self) -> None:
        await self.indexer.start()
        await self.normalizer.start()

    async def stop(self) -> None:
        await self.normalizer.stop()
        await self.indexer.stop()
