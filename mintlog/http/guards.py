"""Litestar glue for authentication: `ScopeGuard`, the `requires(scope)` guard factories and `principal_of`.

A route that needs an API key carries a `ScopeGuard` naming its scope. The guard admits a request through an
`Admission`; `KeyAdmission`, in order: refuses a key in the query string (400), authenticates (401), counts
the request against the key's rate limit (429, see `mintlog.http.ratelimit`), then checks the scope (403),
and stores the caller for `principal_of`. A server may wrap it with checks of its own (the API records
refused writes in the audit log).

The key is read by `mintlog.auth.presented_key`: `X-API-Key`, or `Authorization: Bearer|ApiKey|Basic` for
clients that cannot set a header of their own.

The guard is also what the OpenAPI document reads (`mintlog.http.openapi`): every operation behind a
`ScopeGuard` accepts any of the security schemes `SECURITY_SCHEMES` names (`X-API-Key` first), names its
scope, and lists the statuses the admission can answer (`ADMISSION_STATUSES`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from mintlog.auth import Authenticator, presented_key
from mintlog.domain.tenants import Principal
from mintlog.errors import BadRequest, Forbidden
from mintlog.http.ratelimit import KeyRateLimits

__all__ = [
    "ADMISSION_OPT",
    "ADMISSION_STATUSES",
    "API_KEY_HEADER",
    "API_KEY_SCHEME",
    "SECURITY_SCHEMES",
    "Admission",
    "Guard",
    "KeyAdmission",
    "ScopeGuard",
    "make_requires",
    "principal_of",
    "requires",
]

Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]
API_KEY_HEADER = "X-API-Key"
API_KEY_SCHEME = "ApiKey"
"""The name of the security scheme of `X-API-Key` in the OpenAPI documents."""
SECURITY_SCHEMES: dict[str, dict[str, str]] = {
    API_KEY_SCHEME: {
        "type": "apiKey",
        "in": "header",
        "name": API_KEY_HEADER,
        "description": "An API key (`mlk_…`); each operation names the scope it needs.",
    },
    "Bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "The same API key as `Authorization: Bearer mlk_…`.",
    },
    "ElasticApiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": (
            "The same API key as `Authorization: ApiKey mlk_…`, or `ApiKey base64(<id>:mlk_…)` as Elasticsearch "
            "clients send an (id, key) pair (the id is ignored)."
        ),
    },
    "Basic": {
        "type": "http",
        "scheme": "basic",
        "description": "HTTP Basic with the same API key as the password; any user name.",
    },
}
"""The OpenAPI security schemes of the ways to present an API key (`mintlog.auth.presented_key`); any one
of them admits a request."""
ADMISSION_OPT = "admission"
"""The route `opt` member holding the `Admission` of a `ScopeGuard` made without one (set on a router)."""
ADMISSION_STATUSES = (400, 401, 403, 429, 503)
"""What admission can answer: a key in the query string, no valid key, a missing scope, over the rate limit,
the key store unreachable."""
_QUERY_KEY_NAMES = frozenset({"api_key", "apikey", "key", "x-api-key", "token"})


class Admission(Protocol):
    """Decides whether a request may reach a route that needs `scope`."""

    async def admit(
        self, connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler, scope: str
    ) -> None:
        """Return when the request may go on, with its `Principal` stored for `principal_of`; raise the
        `ProblemError` (or `DependencyUnavailable`) that answers it otherwise."""
        ...


class KeyAdmission:
    """The API key checks: 400 `key_in_query`, 401, 429 (when `rate_limits` is given), 403 `missing_scope`.

    `rate_limits` is required so that no server forgets it; None (tests only) leaves keys unlimited.
    """

    def __init__(self, authenticator: Authenticator, *, rate_limits: KeyRateLimits | None) -> None:
        self._authenticator = authenticator
        self._rate_limits = rate_limits

    async def admit(
        self, connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler, scope: str
    ) -> None:
        if _QUERY_KEY_NAMES.intersection(name.lower() for name in connection.query_params):
            raise BadRequest(
                "API keys are not accepted in the query string (they leak into logs); use the X-API-Key or "
                "Authorization header",
                code="key_in_query",
            )
        principal = await self._authenticator.authenticate(presented_key(connection.headers))
        if self._rate_limits is not None:
            await self._rate_limits.check(principal, connection.state)
        if not principal.has_scope(scope):
            raise Forbidden(f"this API key lacks the scope {scope!r}", extra={"required_scope": scope})
        connection.state["principal"] = principal


class ScopeGuard:
    """The guard of a route that needs an API key holding `scope`.

    It admits requests through its own `admission`, or, made without one (a route written before the server
    that serves it, such as a controller's), through the `Admission` in the route's `opt` under
    `ADMISSION_OPT`, which the server sets on the router holding its routes.
    """

    __slots__ = ("_admission", "scope")

    def __init__(self, scope: str, admission: Admission | None = None) -> None:
        self.scope = scope
        self._admission = admission

    async def __call__(self, connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        admission: Admission | None = self._admission or handler.opt.get(ADMISSION_OPT)
        if admission is None:
            raise RuntimeError(f"route {handler} needs the scope {self.scope!r} but no router gives it an admission")
        await admission.admit(connection, handler, self.scope)

    def __repr__(self) -> str:
        return f"ScopeGuard({self.scope!r})"


def requires(scope: str) -> ScopeGuard:
    """The guard of a route that needs `scope`, admitted by its router's `Admission` (see `ScopeGuard`)."""
    return ScopeGuard(scope)


def make_requires(authenticator: Authenticator, *, rate_limits: KeyRateLimits | None) -> Callable[[str], ScopeGuard]:
    """A factory of guards: `requires("search:logs")` authenticates, rate-limits and checks one scope
    (`KeyAdmission`). `rate_limits` None (tests only) leaves keys unlimited."""
    admission = KeyAdmission(authenticator, rate_limits=rate_limits)

    def requires(scope: str) -> ScopeGuard:
        return ScopeGuard(scope, admission)

    return requires


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The principal the guard stored for this request."""
    principal = connection.state["principal"]
    assert isinstance(principal, Principal)
    return principal
