"""Litestar glue for authentication: the `requires(scope)` guard and `principal_of(request)`.

The guard, in order: refuses a key in the query string (400), authenticates (401), counts the request
against the key's rate limit (429, see `mintlog.http.ratelimit`), then checks the scope (403).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from mintlog.auth import Authenticator
from mintlog.domain.tenants import Principal
from mintlog.errors import BadRequest, Forbidden
from mintlog.http.ratelimit import KeyRateLimits

__all__ = ["Guard", "make_requires", "principal_of"]

Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]
_QUERY_KEY_NAMES = frozenset({"api_key", "apikey", "key", "x-api-key", "token"})


def make_requires(authenticator: Authenticator, *, rate_limits: KeyRateLimits | None) -> Callable[[str], Guard]:
    """A factory of guards: `requires("search:logs")` authenticates, rate-limits and checks one scope.

    `rate_limits` is required so that no server forgets it; None (tests only) leaves keys unlimited.
    """

    def requires(scope: str) -> Guard:
        async def guard(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
            if _QUERY_KEY_NAMES.intersection(name.lower() for name in connection.query_params):
                raise BadRequest(
                    "API keys are not accepted in the query string (they leak into logs); use X-API-Key",
                    code="key_in_query",
                )
            principal = await authenticator.authenticate(connection.headers.get("x-api-key"))
            if rate_limits is not None:
                await rate_limits.check(principal, connection.state)
            if not principal.has_scope(scope):
                raise Forbidden(f"this API key lacks the scope {scope!r}", extra={"required_scope": scope})
            connection.state["principal"] = principal

        return guard

    return requires


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The principal the guard stored for this request."""
    principal = connection.state["principal"]
    assert isinstance(principal, Principal)
    return principal
