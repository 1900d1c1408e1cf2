"""Tenants and the principal an API key resolves to. Pure code, no I/O (but the zone database's files)."""

from __future__ import annotations

import functools
import logging
import re
from datetime import UTC, datetime, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

__all__ = [
    "MAX_RETENTION_DAYS",
    "RETENTION_BASES",
    "TENANT_ID_PATTERN",
    "ApiKey",
    "IngestTimePolicy",
    "KeyStatus",
    "Principal",
    "RetentionBasis",
    "Tenant",
    "TenantChanges",
    "is_valid_tenant_id",
    "tenant_id_from_name",
    "zone_named",
]

logger = logging.getLogger(__name__)

# Tenant ids appear in NATS subjects, index names and directory names: keep them boringly safe.
TENANT_ID_PATTERN = r"^[a-z0-9-]{1,40}$"
_TENANT_ID = re.compile(TENANT_ID_PATTERN)

RetentionBasis = Literal["event_time", "received_at"]
"""What a tenant's `retention_days` counts from: each event's own time, or the time Mintlog received it."""
RETENTION_BASES: tuple[RetentionBasis, ...] = ("event_time", "received_at")
MAX_RETENTION_DAYS = 36_500
"""The longest searchable retention (100 years, like the archive's): history imported for audits may be
decades old, and nothing in either store depends on the bound."""


class Tenant(msgspec.Struct, frozen=True, kw_only=True):
    """A customer of the platform; every event, key and object belongs to exactly one tenant."""

    id: str
    name: str
    plan: str = "free"
    retention_days: int = 30
    retention_basis: RetentionBasis = "event_time"
    """`event_time`: an event is deleted `retention_days` after its timestamp, and ingest refuses events already
    older than that (`too_old`); `received_at`: `retention_days` after it was received, so imported history of
    any age is accepted and kept that long (see docs/ingest.md, "Old and future timestamps")."""
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
    retention_basis: RetentionBasis | None = None
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


class IngestTimePolicy(msgspec.Struct, frozen=True, kw_only=True):
    """What ingest needs of a tenant to check event times: its retention and the zone of zone-less times."""

    retention_days: int
    retention_basis: RetentionBasis = "event_time"
    time_zone: str = "UTC"

    @classmethod
    def of(cls, tenant: Tenant) -> IngestTimePolicy:
        """The policy of `tenant` as it is now."""
        return cls(
            retention_days=tenant.retention_days, retention_basis=tenant.retention_basis, time_zone=tenant.time_zone
        )


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: resolved from a valid key, cached by key hash. The tenant always comes from here."""

    tenant_id: str
    key_id: str
    key_prefix: str
    scopes: frozenset[str]
    expires_at: datetime | None = None
    rate_limit: int | None = None
    """The key's request limit in requests per minute; None uses the configured default."""
    time_policy: IngestTimePolicy | None = None
    """The tenant's retention and zone when the key was resolved (as fresh as the cached principal); None
    (a principal cached by an older version) skips ingest's time checks."""

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


@functools.lru_cache(maxsize=1024)
def zone_named(name: str) -> tzinfo:
    """The IANA zone `name` (a tenant's `time_zone`); UTC for `UTC` and for a name this process's zone database
    does not know (logged)."""
    if name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("unknown time zone %r, using UTC", name)
        return UTC
