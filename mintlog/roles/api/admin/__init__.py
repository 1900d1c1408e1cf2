"""The admin area of the API: tenants (the operator's), API keys (the operator's and a tenant's own) and the
audit log."""

from __future__ import annotations

from collections.abc import Mapping

from mintlog.roles.api.admin.audit import AuditLog
from mintlog.roles.api.admin.key_service import KeyService
from mintlog.roles.api.admin.keys import OperatorKeys, OwnKeys
from mintlog.roles.api.admin.tenants import Tenants
from mintlog.roles.api.common.area import ApiArea
from mintlog.runtime import Runtime

__all__ = ["AREA"]


def _provides(runtime: Runtime) -> Mapping[str, object]:
    """`keys`: the key management of the process (`KeyService`)."""
    keys = KeyService(
        runtime.metadata,
        runtime.authenticator,
        default_rate_limit=runtime.settings.ratelimit.default_key_requests_per_minute,
    )
    return {"keys": keys}


AREA = ApiArea("admin", controllers=(Tenants, OperatorKeys, OwnKeys, AuditLog), provides=_provides)
