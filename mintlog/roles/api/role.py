"""The API role: search and management on :8081.

The API is split into areas (`AREAS`), one folder each: `logs`, `admin`, `incidents`, `uptime`, `oncall`. A new area
is a new folder whose `__init__` defines its `ApiArea`, added to `AREAS`; nothing else changes.
"""

from __future__ import annotations

from typing import Any

from litestar.types import ASGIApp

from mintlog.http.app import create_app
from mintlog.http.guards import ADMISSION_OPT
from mintlog.http.server import HttpServer
from mintlog.roles.api import admin, incidents, logs, oncall, uptime
from mintlog.roles.api.common.admission import api_admission
from mintlog.roles.api.common.area import ApiArea
from mintlog.roles.api.common.auditing import AuditTrail
from mintlog.roles.api.common.dependencies import runtime_dependencies
from mintlog.roles.api.logs.tail_hub import TailHub
from mintlog.runtime import Runtime

__all__ = ["AREAS", "ApiRole", "build_api_app", "tail_hub"]

AREAS: tuple[ApiArea, ...] = (logs.AREA, admin.AREA, incidents.AREA, uptime.AREA, oncall.AREA)
"""The areas of the API, in the order their routes are registered."""


def tail_hub(runtime: Runtime) -> TailHub:
    """The live tails of one API process, their keys re-checked through the runtime's authenticator."""
    settings = runtime.settings.tail
    return TailHub(
        settings.max_per_tenant,
        runtime.metrics,
        runtime.authenticator,
        recheck_seconds=settings.key_recheck_seconds,
    )


def build_api_app(runtime: Runtime, tails: TailHub | None = None) -> ASGIApp:
    """The API app: every area's routes, with the runtime's ports as their dependencies
    (`runtime_dependencies`, plus what each area provides) and the API's admission (API keys, rate limits,
    refused writes audited).

    `tails` holds the live tails (the role closes it at shutdown); a private one is made when absent.
    """
    trail = AuditTrail(runtime.metadata)
    extra: dict[str, object] = {"tails": tails or tail_hub(runtime)}
    for area in AREAS:
        extra.update(area.provides(runtime))
    return create_app(
        server="api",
        route_handlers=[controller for area in AREAS for controller in area.controllers],
        metrics=runtime.metrics,
        readiness_checks={
            "bus": runtime.bus.ping,
            "store": runtime.store.ping,
            "database": runtime.metadata.ping,
            "blobs": runtime.blobs.ping,
        },
        dependencies=runtime_dependencies(runtime, trail=trail, extra=extra),
        opt={ADMISSION_OPT: api_admission(runtime, trail)},
    )


class ApiRole:
    """Serves search and management (tenants, keys, audit log) from the log store and the metadata store."""

    name = "api"

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self._tails = tail_hub(runtime)
        self._grace_seconds = settings.http.shutdown_grace_seconds
        self._server = HttpServer(
            build_api_app(runtime, self._tails), name="api", http=settings.http, port=settings.http.api_port
        )

    @property
    def app(self) -> Any:
        """The role's ASGI app (what its server serves; Granian workers serve it themselves)."""
        return self._server.app

    async def start(self) -> None:
        await self.start_background()
        await self._server.start()

    async def start_background(self) -> None:
        """Nothing runs in the background of the api role besides its server."""

    async def stop(self) -> None:
        await self._tails.close(self._grace_seconds)  # open SSE streams would hold the server's shutdown
        await self._server.stop()
