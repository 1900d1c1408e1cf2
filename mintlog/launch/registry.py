"""The role registry: the one table of the roles a Mintlog process can run.

Each entry names a role (a value of `MINTLOG_ROLES`), the factory that builds its services from the process's
`Runtime`, whether it serves HTTP, and where it starts. The all-in-one process (`mintlog.launch.process`) and
the Granian workers (`mintlog.launch.workers`) both read this table and nothing else to decide what runs.

Guarantees:

- Roles start in ascending `start_order` and stop in the reverse: consumers start before intake and stop after
  it, so nothing accepted waits on a stopped consumer.
- A factory imports its role's modules when called, so a process imports only the roles it runs.
- Only roles that serve HTTP (`serves_http`) may run in Granian workers; their factory returns one
  `HttpService`, whose ASGI `app` the worker serves without starting the role's own server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from mintlog.settings import RoleName

if TYPE_CHECKING:
    from mintlog.roles.kit.base import Service
    from mintlog.runtime import Runtime

__all__ = ["ROLES", "HttpService", "RoleEntry", "RoleFactory", "http_role_names", "role_entry"]

RoleFactory = Callable[["Runtime"], "Service | list[Service]"]


@runtime_checkable
class HttpService(Protocol):
    """A role that serves HTTP: a service with its own server, and the ASGI app that server serves."""

    name: str

    @property
    def app(self) -> Any:
        """The ASGI app (Granian workers serve it themselves, without starting the role)."""
        ...

    async def start(self) -> None: ...

    async def start_background(self) -> None:
        """Start what the app needs besides a server (periodic work), as `start` does before its server: what a
        Granian worker calls instead of `start`. `stop` stops it."""
        ...

    async def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class RoleEntry:
    """One role: its `MINTLOG_ROLES` name, the factory of its services, whether it serves HTTP, and its place
    in the start order (lower starts first and stops last)."""

    name: RoleName
    factory: RoleFactory
    serves_http: bool
    start_order: int


def _ingest(runtime: Runtime) -> Service:
    from mintlog.roles.ingest.role import IngestRole

    return IngestRole(runtime)


def _pipeline(runtime: Runtime) -> Service | list[Service]:
    from mintlog.launch.pipeline_child import pipeline_services

    return pipeline_services(runtime, serves_http=any(role_entry(name).serves_http for name in runtime.settings.roles))


def _api(runtime: Runtime) -> Service:
    from mintlog.roles.api.role import ApiRole

    return ApiRole(runtime)


def _alert(runtime: Runtime) -> Service:
    from mintlog.roles.alert.role import AlertRole

    return AlertRole(runtime)


def _notify(runtime: Runtime) -> Service:
    from mintlog.roles.notify.role import NotifyRole

    return NotifyRole(runtime)


def _uptime(runtime: Runtime) -> Service:
    from mintlog.adapters.probes import Prober
    from mintlog.domain.egress import EgressPolicy
    from mintlog.errors import ConfigError
    from mintlog.roles.uptime.role import UptimeRole

    nameservers = runtime.settings.uptime.nameservers
    try:
        prober = Prober(EgressPolicy.from_setting(runtime.settings.egress_allow), nameservers=nameservers)
    except ValueError as exc:
        raise ConfigError(f"invalid setting MINTLOG_UPTIME__NAMESERVERS={','.join(nameservers)!r}: {exc}") from None
    return UptimeRole(runtime, prober=prober, close_prober=prober.close)


ROLES: tuple[RoleEntry, ...] = (
    RoleEntry("ingest", _ingest, serves_http=True, start_order=50),
    RoleEntry("pipeline", _pipeline, serves_http=False, start_order=10),
    RoleEntry("api", _api, serves_http=True, start_order=40),
    RoleEntry("alert", _alert, serves_http=False, start_order=20),
    RoleEntry("notify", _notify, serves_http=False, start_order=30),
    RoleEntry("uptime", _uptime, serves_http=False, start_order=35),
)

_BY_NAME = {entry.name: entry for entry in ROLES}


def role_entry(name: str) -> RoleEntry:
    """The entry of role `name`; `KeyError` for a name the registry does not hold."""
    return _BY_NAME[name]


def http_role_names() -> tuple[RoleName, ...]:
    """The roles that serve HTTP, in the order of the table."""
    return tuple(entry.name for entry in ROLES if entry.serves_http)
