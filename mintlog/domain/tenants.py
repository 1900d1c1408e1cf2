"""Tenants and the principal an API key resolves to. Pure code, no I/O."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

import msgspec

__all__ = [
    "TENANT_ID_PATTERN",
    "ApiKey",
    "KeyStatus",
    "Principal",
    "Tenant",
    "TenantChanges",
    "is_valid_tenant_id",
    "tenant_id_from_name",
]

# Tenant ids appear in NATS subjects, index names and directory names: keep them boringly safe.
TENANT_ID_PATTERN = r"^[a-z0-9-]{1,40}$"
_TENANT_ID = re.compile(TENANT_ID_PATTERN)


class Tenant(msgspec.Struct, frozen=True, kw_only=True):
    """A customer of the platform; every event, key and object belongs to exactly one tenant."""

    id: str
    name: str
    plan: str = "free"
    retention_days: int = 30
    archive_retention_days: int | None = None
    """Days the raw-event archive keeps the tenant's objects; None: `MINTLOG_ARCHIVE__DEFAULT_RETENTION_DAYS`."""
    time_zone: str = "UTC"
    """IANA zone of the wall times in the tenant's logs that are written without an offset."""
    suspended: bool = False
    created_at: datetime
    updated_at: datetime | None = None
    deleted_at: datetime | None = None
    """Set by `DELETE /v1/admin/tenants/{id}`: the tenant stays suspended and its data awaits the retention job."""


class TenantChanges(msgspec.Struct, frozen=True, kw_only=True):
    """A partial update of a tenant: None leaves a member unchanged."""

    plan: str | None = None
    retention_days: int | None = None
    archive_retention_days: int | msgspec.UnsetType | None = msgspec.UNSET
    """UNSET leaves it unchanged; None resets it to the default setting."""
    time_zone: str | None = None
    suspended: bool | None = None
    deleted_at: datetime | None = None


KeyStatus = Literal["active", "revoked", "expired"]


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    """A stored API key: its hash and display prefix, never its secret."""

    id: str
    tenant_id: str
    name: str
    key_hash: str
    prefix: str
    scopes: tuple[str, ...]
    rate_limit: int | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    created_at: datetime
    last_used_at: datetime | None = None
    rotated_from: str | None = None
    """The id of the key this one replaced by rotation, if any."""

    def status(self, now: datetime) -> KeyStatus:
        """`revoked` wins over `expired`; a key expiring exactly at `now` is expired."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: resolved from a valid key, cached by key hash. The tenant always comes from here."""

    tenant_id: str
    key_id: str
    key_prefix: str
    scopes: frozenset[str]
    expires_at: datetime | None = None
    rate_limit: int | None = None
    """The key's request limit in requests per minute; None uses the configured default."""

    def has_scope(self, scope: str) -> bool:
        """Scopes are explicit: `admin` does not imply the others."""
        return scope in self.scopes


def is_valid_tenant_id(tenant_id: str) -> bool:
    """True when `tenant_id` is safe in subjects, index names and paths."""
    return _TENANT_ID.match(tenant_id) is not None


def tenant_id_from_name(name: str) -> str:
    """A tenant id derived from a display name: lower case, runs of other characters become one dash."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40].strip("-")
    return slug or "tenant"
