"""Running a Mintlog process: open the runtime, start the selected roles (from the role registry), stop them all
on a signal.

Guarantees:

- Roles start in the registry's start order and stop in the reverse, intake first; every adapter is closed
  after the last role stopped, also when start-up failed half-way.
- "mintlog ready" is logged once, after every role started (so after every port is bound): never while a
  port is held by another program or a role is still starting.
- A process serving HTTP (ingest or api) also flushes the API keys' last use every 60 s and once at stop; a
  process serving none of it serves `/healthz`, `/readyz` and `/metrics` on `MINTLOG_HTTP__OPS_PORT` when set,
  started last, so it is ready once the roles run.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Sequence

from mintlog.launch.bootstrap import bootstrap
from mintlog.launch.ports import ready_message
from mintlog.launch.registry import ROLES, role_entry
from mintlog.roles.kit.base import Periodic, Service
from mintlog.runtime import Runtime
from mintlog.settings import RoleName, Settings

__all__ = ["build_services", "key_usage_flusher", "run", "run_until_signalled", "tune_garbage_collector"]

logger = logging.getLogger(__name__)

_KEY_USAGE_FLUSH_SECONDS = 60.0


def tune_garbage_collector() -> None:
    """Fewer, cheaper cyclic-GC passes on the hot path.

    Every batch allocates many short-lived dicts; with the default threshold (700 allocations) the collector
    runs thousands of times per second and rescans survivors. Objects alive after start-up are frozen out of
    the scans, and young collections run every 50,000 allocations instead. Reference counting still frees
    almost everything at once; only cycles wait a little longer.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def key_usage_flusher(runtime: Runtime) -> Periodic:
    """The periodic write of the API keys' last use, which the HTTP roles record in memory."""
    return Periodic("api-key-usage", _KEY_USAGE_FLUSH_SECONDS, runtime.authenticator.flush_last_used)


def build_services(runtime: Runtime, names: Sequence[RoleName]) -> list[Service]:
    """The services of the roles `names`, in start order (see the module docstring). Imports only the roles
    that run."""
    services: list[Service] = []
    for entry in sorted(ROLES, key=lambda entry: entry.start_order):
        if entry.name in names:
            built = entry.factory(runtime)
            services.extend(built if isinstance(built, list) else [built])
    if any(role_entry(name).serves_http for name in names):
        services.insert(0, key_usage_flusher(runtime))
    elif runtime.settings.http.ops_port:
        from mintlog.launch.ops import OpsServer

        services.append(OpsServer(runtime, runtime.settings.http.ops_port))  # last: ready once the roles run
    return services


async def run(
    settings: Settings, stop: asyncio.Event, *, runtime: Runtime | None = None, supervised: bool = False
) -> None:
    """Run until `stop` is set, then stop intake first, let consumers finish, and close every adapter.

    Once every role runs, logs the one "mintlog ready" line (`ready_message`: where each port is, how to create
    a key); a process `supervised` by another `mintlog run` (a pipeline child) logs it, and its stop, at debug
    level, since its parent reports both. Raises if start-up fails, after undoing whatever had started.
    """
    runtime = runtime or bootstrap(settings)
    announce = logging.DEBUG if supervised else logging.INFO
    await runtime.open()
    started: list[Service] = []
    try:
        for service in build_services(runtime, settings.roles):
            await service.start()
            started.append(service)
        serves_http = any(role_entry(name).serves_http for name in settings.roles)
        logger.log(
            announce,
            "%s",
            ready_message(settings, serves_http=serves_http),
            extra={"roles": ",".join(settings.roles), "data_dir": str(settings.data_path)},
        )
        await stop.wait()
        logger.log(announce, "stopping mintlog")
    finally:
        for service in reversed(started):
            try:
                await service.stop()
            except Exception:
                logger.exception("stopping %s failed", service.name)
        await runtime.close()
        logger.log(announce, "mintlog stopped")


async def run_until_signalled(settings: Settings, *, supervised: bool = False) -> None:
    """`run` until SIGINT or SIGTERM, with the garbage collector tuned for the hot path. A second signal while
    stopping changes nothing: the stop under way finishes."""
    tune_garbage_collector()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await run(settings, stop, supervised=supervised)
