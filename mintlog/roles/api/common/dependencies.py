"""What API handlers receive by name (Litestar `Provide`), read from the process's `Runtime`.

A handler asks for a dependency by naming a parameter after it, typed `Injected[...]` (Litestar does not
re-validate what the runtime holds): `store: Injected[LogStore]`. The names:

| name | what |
|---|---|
| `settings`, `metrics` | the process's settings and metrics |
| `store`, `bus`, `metadata`, `blobs`, `archive` | the log store, event bus, metadata store, blobs, archive manifest |
| `notifications`, `incidents`, `alert_rules`, `extraction_rules`, `monitors`, `oncall` | the other stores |
| `outbound`, `smtp` | outbound HTTP and the operator's SMTP relay |
| `maintenance_windows`, `badges` | the uptime area's other ports |
| `authenticator` | the API key authenticator (and its cache) |
| `trail` | the audit log (`AuditTrail`) |
| `clock` | the time now (`Clock`), UTC |
| `audit` | the audit of this write (`AuditedWrite`), for a route declared with `operation(audit=...)` |

Areas may provide more (`extra`), such as the live tails of the process. The caller is not a dependency:
a handler reads it with `principal_of(request)` (its route's guard stored it). Each dependency a request
resolves costs it time in Litestar (a request resolving several resolves them in a task group), so the
busiest routes ask for one: the log-reading routes for `reading` (`mintlog.roles.api.logs.reading`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, TypeAlias, TypeVar

from litestar import Request
from litestar.di import Dependency, Provide
from litestar.params import SkipValidationMarker

from mintlog.http.guards import principal_of
from mintlog.roles.api.common.auditing import AuditedWrite, AuditTrail
from mintlog.runtime import Runtime

__all__ = ["Clock", "Injected", "runtime_dependencies", "utcnow"]

_T = TypeVar("_T")
Injected: TypeAlias = Annotated[_T, Dependency(), SkipValidationMarker()]
"""A parameter Litestar fills from a dependency of this module, as it is (ports are Protocols)."""
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The time now, in UTC."""
    return datetime.now(UTC)


def _constant(value: object) -> Provide:
    def provide() -> object:
        return value

    return Provide(provide, sync_to_thread=False, use_cache=True)


def _audit(request: Request[Any, Any, Any], trail: Injected[AuditTrail]) -> AuditedWrite:
    return AuditedWrite.of(request.route_handler, trail, principal_of(request))


def runtime_dependencies(
    runtime: Runtime, *, trail: AuditTrail, extra: Mapping[str, object] | None = None
) -> dict[str, Provide]:
    """The dependencies of the API's handlers (see the module), read from `runtime` when a request asks;
    `trail` is the audit log they write to."""
    values: dict[str, Callable[[], object]] = {
        "settings": lambda: runtime.settings,
        "metrics": lambda: runtime.metrics,
        "store": lambda: runtime.store,
        "bus": lambda: runtime.bus,
        "metadata": lambda: runtime.metadata,
        "blobs": lambda: runtime.blobs,
        "archive": lambda: runtime.archive,
        "notifications": lambda: runtime.notifications,
        "incidents": lambda: runtime.incidents,
        "alert_rules": lambda: runtime.alert_rules,
        "extraction_rules": lambda: runtime.extraction_rules,
        "monitors": lambda: runtime.monitors,
        "maintenance_windows": lambda: runtime.maintenance_windows,
        "badges": lambda: runtime.badges,
        "oncall": lambda: runtime.oncall,
        "outbound": lambda: runtime.outbound,
        "smtp": lambda: runtime.smtp,
        "authenticator": lambda: runtime.authenticator,
    }
    dependencies = {name: Provide(read, sync_to_thread=False) for name, read in values.items()}
    dependencies["trail"] = _constant(trail)
    dependencies["clock"] = _constant(utcnow)
    dependencies["audit"] = Provide(_audit, sync_to_thread=False)
    for name, value in (extra or {}).items():
        dependencies[name] = _constant(value)
    return dependencies
