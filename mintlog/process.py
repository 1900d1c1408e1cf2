"""Running a Mintlog process: open the runtime, start the selected roles, stop them all on a signal."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from mintlog.bootstrap import bootstrap
from mintlog.roles.base import Periodic, Service
from mintlog.runtime import Runtime
from mintlog.settings import RoleName, Settings

__all__ = ["START_ORDER", "build_roles", "pipeline_in_child", "run"]

logger = logging.getLogger(__name__)

# Consumers start before intake and stop after it, so nothing accepted waits on a stopped consumer.
START_ORDER: tuple[RoleName, ...] = ("pipeline", "alert", "notify", "api", "ingest")
_KEY_USAGE_FLUSH_SECONDS = 60.0


def pipeline_in_child(runtime: Runtime, names: Sequence[RoleName]) -> bool:
    """Whether the pipeline stages run in child processes (`mintlog.roles.pipeline.child`): when this process
    also serves ingest or api, `MINTLOG_PIPELINE__OWN_PROCESS` is on, and the bus is one a child can reach."""
    if "pipeline" not in names or not {"ingest", "api"} & set(names) or not runtime.settings.pipeline.own_process:
        return False
    from mintlog.roles.pipeline.child import child_bus_url

    return child_bus_url(runtime) is not None


def build_roles(runtime: Runtime, names: Sequence[RoleName]) -> list[Service]:
    """The selected roles, in start order. Imports only the roles that run."""
    services: list[Service] = []
    for name in START_ORDER:
        if name not in names:
            continue
        if name == "pipeline" and pipeline_in_child(runtime, names):
            from mintlog.roles.pipeline.child import PipelineChild

            # The indexer starts before the normalizer and stops after it, as within one PipelineRole.
            stages = runtime.settings.pipeline.stages
            services.extend(PipelineChild(runtime, stage) for stage in ("index", "normalize") if stage in stages)
        elif name == "pipeline":
            from mintlog.roles.pipeline.role import PipelineRole

            services.append(PipelineRole(runtime))
        elif name == "alert":
            from mintlog.roles.alert.role import AlertRole

            services.append(AlertRole(runtime))
        elif name == "notify":
            from mintlog.roles.notify.role import NotifyRole

            services.append(NotifyRole(runtime))
        elif name == "api":
            from mintlog.roles.api.role import ApiRole

            services.append(ApiRole(runtime))
        else:
            from mintlog.roles.ingest.role import IngestRole

            services.append(IngestRole(runtime))
    if {"api", "ingest"} & set(names):
        services.insert(0, Periodic("api-key-usage", _KEY_USAGE_FLUSH_SECONDS, runtime.authenticator.flush_last_used))
    elif runtime.settings.http.ops_port:
        from mintlog.http.ops import OpsServer

        services.append(OpsServer(runtime, runtime.settings.http.ops_port))  # last: ready once the roles run
    return services


async def run(settings: Settings, stop: asyncio.Event, *, runtime: Runtime | None = None) -> None:
    """Run until `stop` is set, then stop intake first, let consumers finish, and close every adapter.

    Raises if start-up fails, after undoing whatever had started.
    """
    runtime = runtime or bootstrap(settings)
    await runtime.open()
    started: list[Service] = []
    try:
        for service in build_roles(runtime, settings.roles):
            await service.start()
            started.append(service)
        logger.info(
            "mintlog running",
            extra={
                "roles": ",".join(settings.roles),
                "ingest_url": f"http://{settings.http.host}:{settings.http.ingest_port}",
                "api_url": f"http://{settings.http.host}:{settings.http.api_port}",
                "data_dir": str(settings.data_path),
            },
        )
        await stop.wait()
        logger.info("stopping mintlog")
    finally:
        for service in reversed(started):
            try:
                await service.stop()
            except Exception:
                logger.exception("stopping %s failed", service.name)
        await runtime.close()
        logger.info("mintlog stopped")
