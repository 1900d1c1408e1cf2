"""`OpsServer`: `/healthz`, `/readyz` and `/metrics` for a process that serves no API (pipeline, alert, notify).

A worker-only container needs a liveness probe, a readiness probe and a scrape target like the HTTP roles have.
`MINTLOG_HTTP__OPS_PORT` (0, the default: off) names the port; it is started only when the process runs
neither the ingest nor the api role, whose ports already serve the same three endpoints.
"""

from __future__ import annotations

from mintlog.http.app import create_app
from mintlog.http.server import HttpServer
from mintlog.runtime import Runtime

__all__ = ["OpsServer"]


class OpsServer:
    """Serves the health, readiness and metrics endpoints of the process's runtime on the ops port."""

    name = "ops"

    def __init__(self, runtime: Runtime, port: int) -> None:
        app = create_app(
            server="ops",
            route_handlers=[],
            metrics=runtime.metrics,
            readiness_checks={
                "bus": runtime.bus.ping,
                "store": runtime.store.ping,
                "database": runtime.metadata.ping,
                "blobs": runtime.blobs.ping,
            },
        )
        self._server = HttpServer(app, name="ops", http=runtime.settings.http, port=port)

    async def start(self) -> None:
        await self._server.start()

    async def stop(self) -> None:
        await self._server.stop()
