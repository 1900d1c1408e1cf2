"""The API role: search and management on :8081."""

from __future__ import annotations

from typing import Any

from litestar.types import ASGIApp

from mintlog.egress import EgressPolicy
from mintlog.http.app import create_app
from mintlog.http.guards import make_requires
from mintlog.http.ratelimit import KeyRateLimits
from mintlog.http.server import HttpServer
from mintlog.roles.api.admin_tenants import admin_tenant_routes
from mintlog.roles.api.aggregate import aggregate_routes
from mintlog.roles.api.alert_rules import alert_rule_routes
from mintlog.roles.api.archive import archive_routes
from mintlog.roles.api.audit import audit_routes
from mintlog.roles.api.auditing import AuditTrail, audited_requires
from mintlog.roles.api.channels import channel_routes
from mintlog.roles.api.deliveries import delivery_routes
from mintlog.roles.api.extraction_rules import extraction_rule_routes
from mintlog.roles.api.incidents import incident_routes
from mintlog.roles.api.key_service import KeyService
from mintlog.roles.api.keys import admin_key_routes, own_key_routes
from mintlog.roles.api.routes import api_routes
from mintlog.roles.api.silences import silence_routes
from mintlog.roles.api.tail import tail_routes
from mintlog.roles.api.tail_hub import TailHub
from mintlog.runtime import Runtime

__all__ = ["ApiRole", "build_api_app", "tail_hub"]


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
    """The API app: search, tail, tenant and key management, and the audit log, bound to the runtime's ports.

    `tails` holds the live tails (the role closes it at shutdown); a private one is made when absent.
    """
    settings = runtime.settings
    tails = tails or tail_hub(runtime)
    requires = make_requires(runtime.authenticator, rate_limits=KeyRateLimits.of(runtime))
    trail = AuditTrail(runtime.metadata)
    audited = audited_requires(requires, runtime.authenticator, trail)
    keys = KeyService(
        runtime.metadata,
        runtime.authenticator,
        default_rate_limit=settings.ratelimit.default_key_requests_per_minute,
    )
    return create_app(
        server="api",
        route_handlers=[
            *api_routes(runtime.store, requires=requires, settings=settings.search, metrics=runtime.metrics),
            *aggregate_routes(runtime.store, requires=requires, settings=settings.search, metrics=runtime.metrics),
            *tail_routes(
                runtime.bus, runtime.store, tails, requires=requires, settings=settings.tail, metrics=runtime.metrics
            ),
            *admin_tenant_routes(runtime.metadata, runtime.authenticator, trail, requires=audited),
            *admin_key_routes(keys, trail, requires=audited),
            *own_key_routes(keys, trail, requires=audited),
            *audit_routes(runtime.metadata, requires=requires),
            *archive_routes(runtime.archive, runtime.blobs, requires=requires),
            *incident_routes(runtime.incidents, runtime.bus, trail, requires=audited, channels=runtime.notifications),
            *silence_routes(runtime.incidents, trail, requires=audited),
            *channel_routes(
                runtime.notifications,
                trail,
                requires=audited,
                egress=EgressPolicy.from_setting(settings.egress_allow),
            ),
            *delivery_routes(runtime.notifications, trail, requires=audited),
            *extraction_rule_routes(
                runtime.extraction_rules, runtime.metadata, trail, settings=settings.parsing, requires=audited
            ),
            *alert_rule_routes(
                runtime.alert_rules,
                trail,
                requires=audited,
                channels=runtime.notifications,
                max_rules_per_tenant=settings.alert.max_rules_per_tenant,
            ),
        ],
        metrics=runtime.metrics,
        readiness_checks={
            "bus": runtime.bus.ping,
            "store": runtime.store.ping,
            "database": runtime.metadata.ping,
            "blobs": runtime.blobs.ping,
        },
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
        await self._server.start()

    async def stop(self) -> None:
        await self._tails.close(self._grace_seconds)  # open SSE streams would hold the server's shutdown
        await self._server.stop()
