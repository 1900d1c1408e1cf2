"""The ingest role: the ingest API on :8080."""

from __future__ import annotations

from typing import Any

from mintlog.http.app import create_app
from mintlog.http.guards import make_requires
from mintlog.http.ratelimit import KeyRateLimits
from mintlog.http.server import HttpServer
from mintlog.roles.ingest.backlog import BacklogGate, BacklogLimits
from mintlog.roles.ingest.bulk_routes import bulk_routes
from mintlog.roles.ingest.loki_routes import loki_routes
from mintlog.roles.ingest.otlp_routes import otlp_routes
from mintlog.roles.ingest.ping_routes import PingIntake, ping_routes
from mintlog.roles.ingest.routes import IngestRequests, ingest_routes
from mintlog.roles.ingest.service import IngestService
from mintlog.roles.ingest.syslog.listener import SyslogListener
from mintlog.runtime import Runtime

__all__ = ["IngestRole"]


class IngestRole:
    """Authenticates, validates and limits batches, and publishes them to `logs.raw.{tenant}`."""

    name = "ingest"

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self.backlog = BacklogGate(
            runtime.bus,
            BacklogLimits.of(settings.ingest),
            runtime.metrics,
            check_interval_seconds=settings.ingest.backlog_check_interval_ms / 1000,
        )
        """Refuses intake while the pipeline is too far behind."""
        service = IngestService(
            bus=runtime.bus,
            idempotency=runtime.idempotency,
            limits=settings.ingest,
            limiter=runtime.rate_limiter,
            rate_limits=settings.ratelimit,
            metrics=runtime.metrics,
            backlog=self.backlog,
        )
        requires = make_requires(runtime.authenticator, rate_limits=KeyRateLimits.of(runtime))
        ingest_request = IngestRequests(service, max_body_bytes=settings.ingest.max_body_bytes, metrics=runtime.metrics)
        route_handlers = [
            *ingest_routes(ingest_request, requires=requires),
            *bulk_routes(ingest_request, requires=requires, metrics=runtime.metrics),
            *loki_routes(ingest_request, requires=requires),
            *otlp_routes(ingest_request, requires=requires),
            *ping_routes(
                PingIntake(
                    monitors=runtime.monitors,
                    bus=runtime.bus,
                    limiter=runtime.rate_limiter,
                    requests_per_minute=settings.uptime.ping_requests_per_minute,
                    rate_limited=settings.ratelimit.enabled,
                )
            ),
            # One line per ingest protocol (docs/architecture.md, "a new ingest protocol").
        ]
        syslog = SyslogListener.of(runtime, service)
        app = create_app(
            server="ingest",
            route_handlers=route_handlers,
            metrics=runtime.metrics,
            readiness_checks={
                "bus": runtime.bus.ping,
                "store": runtime.store.ping,
                "database": runtime.metadata.ping,
                **syslog.readiness_checks(),
            },
        )
        self._server = HttpServer(app, name="ingest", http=settings.http, port=settings.http.ingest_port)
        self.service = service
        """The ingest use case behind the route (what a test drives without HTTP)."""
        self.syslog = syslog

    @property
    def app(self) -> Any:
        """The role's ASGI app (what its server serves; Granian workers serve it themselves)."""
        return self._server.app

    async def start(self) -> None:
        await self.start_background()
        await self.syslog.start()
        await self._server.start()

    async def start_background(self) -> None:
        """Start reading the pipeline's backlog (also in each Granian worker, which serves `app` itself)."""
        await self.backlog.start()

    async def stop(self) -> None:
        await self._server.stop()
        await self.syslog.stop()
        await self.backlog.stop()
        await self.service.close()
