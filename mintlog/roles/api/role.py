"""The API role: search and management on :8081."""

from __future__ import annotations

from mintlog.http.app import create_app
from mintlog.http.guards import make_requires
from mintlog.http.server import HttpServer
from mintlog.roles.api.routes import api_routes
from mintlog.runtime import Runtime

__all__ = ["ApiRole"]


class ApiRole:
    """Serves search (and, in later issues, tail, aggregations and management) from the log store."""

    name = "api"

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        app = create_app(
            server="api",
            route_handlers=api_routes(
                runtime.store,
                requires=make_requires(runtime.authenticator),
                settings=settings.search,
                metrics=runtime.metrics,
            ),
            metrics=runtime.metrics,
            readiness_checks={
                "bus": runtime.bus.ping,
                "store": runtime.store.ping,
                "database": runtime.metadata.ping,
            },
        )
        self._server = HttpServer(app, name="api", host=settings.http.host, port=settings.http.api_port)

    async def start(self) -> None:
        await self._server.start()

    async def stop(self) -> None:
        await self._server.stop()
