"""Who may call the API: the API key checks of every port (`KeyAdmission`: 400 `key_in_query`, 401, 429,
403), then no NUL character in a path or query parameter (`refuse_nul_in_parameters`), with a refused scope
check of a write recorded in the audit log (`AuditedAdmission`)."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from mintlog.http.guards import Admission, KeyAdmission
from mintlog.http.ratelimit import KeyRateLimits
from mintlog.roles.api.common.auditing import AuditedAdmission, AuditTrail
from mintlog.roles.api.common.wire import refuse_nul_in_parameters
from mintlog.runtime import Runtime

__all__ = ["api_admission"]


class _RefusingNulParameters:
    """Admits like `inner`, then refuses a path or query parameter holding a NUL character (401, 429 and 403
    come first)."""

    def __init__(self, inner: Admission) -> None:
        self._inner = inner

    async def admit(
        self, connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler, scope: str
    ) -> None:
        await self._inner.admit(connection, handler, scope)
        refuse_nul_in_parameters(connection)


def api_admission(runtime: Runtime, trail: AuditTrail) -> Admission:
    """The admission of the API's routes, bound to the runtime's authenticator and rate limits."""
    keys = KeyAdmission(runtime.authenticator, rate_limits=KeyRateLimits.of(runtime))
    return AuditedAdmission(_RefusingNulParameters(keys), runtime.authenticator, trail)
