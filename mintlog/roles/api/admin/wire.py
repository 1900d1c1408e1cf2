"""The bodies of the admin area: tenants, API keys and audit entries, as a client sends (strict) and reads them.

Request bodies forbid unknown members (`mintlog.roles.api.common.wire.decode_body` names them in a 422);
views are built from the domain objects with `msgspec.convert(..., from_attributes=True)`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, UnsetType

from mintlog.domain.audit import AuditEntry
from mintlog.domain.keys import Scope
from mintlog.domain.tenants import MAX_RETENTION_DAYS, ApiKey, KeyStatus, RetentionBasis, Tenant
from mintlog.roles.api.common.wire import TimeZoneName

__all__ = [
    "DEFAULT_GRACE_SECONDS",
    "MAX_GRACE_SECONDS",
    "ApiKeyView",
    "AuditEntryView",
    "CreatedApiKeyView",
    "KeyCreate",
    "KeyRotate",
    "RotatedApiKeyView",
    "TenantCreate",
    "TenantPatch",
    "TenantView",
    "api_key_view",
    "audit_entry_view",
    "tenant_view",
]

MAX_GRACE_SECONDS = 30 * 86_400
DEFAULT_GRACE_SECONDS = 86_400

TenantName = Annotated[str, Meta(min_length=1, max_length=200)]
Plan = Annotated[str, Meta(min_length=1, max_length=40)]
RetentionDays = Annotated[int, Meta(ge=1, le=MAX_RETENTION_DAYS)]
ArchiveRetentionDays = Annotated[int, Meta(ge=1, le=36500)]
KeyName = Annotated[str, Meta(min_length=1, max_length=200)]
RateLimit = Annotated[int, Meta(ge=1, le=10_000_000, description="Requests per minute.")]
AwareDateTime = Annotated[datetime, Meta(tz=True)]


class TenantCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`POST /v1/admin/tenants`. Without `id`, the id is derived from `name`."""

    name: TenantName
    plan: Plan = "free"
    retention_days: RetentionDays = 30
    retention_basis: RetentionBasis = "event_time"
    archive_retention_days: ArchiveRetentionDays | None = None
    time_zone: TimeZoneName = "UTC"
    id: str | None = None


class TenantPatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`PATCH /v1/admin/tenants/{id}`: the members to change; absent ones stay as they are."""

    plan: Plan | UnsetType = UNSET
    retention_days: RetentionDays | UnsetType = UNSET
    retention_basis: RetentionBasis | UnsetType = UNSET
    archive_retention_days: ArchiveRetentionDays | UnsetType | None = UNSET
    time_zone: TimeZoneName | UnsetType = UNSET
    suspended: bool | UnsetType = UNSET


class KeyCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`POST …/keys`. Absent `scopes`, `rate_limit` and `expires_at` take the endpoint's documented defaults."""

    name: KeyName
    scopes: Annotated[list[Scope], Meta(min_length=1)] | None = None
    rate_limit: RateLimit | None = None
    expires_at: AwareDateTime | None = None


class KeyRotate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`POST …/keys/{id}/rotate`: how long the old key keeps working (0 revokes it now), and the new key's
    expiry."""

    grace_seconds: Annotated[int, Meta(ge=0, le=MAX_GRACE_SECONDS)] = DEFAULT_GRACE_SECONDS
    expires_at: AwareDateTime | None = None


class TenantView(msgspec.Struct, frozen=True, kw_only=True):
    """A tenant as the API shows it."""

    id: str
    name: str
    plan: str
    retention_days: int
    retention_basis: RetentionBasis
    archive_retention_days: int | None
    time_zone: str
    suspended: bool
    created_at: datetime
    updated_at: datetime | None
    deleted_at: datetime | None


class ApiKeyView(msgspec.Struct, frozen=True, kw_only=True):
    """A key as the API shows it: never its secret nor its hash."""

    id: str
    tenant_id: str
    name: str
    prefix: str
    scopes: list[str]
    rate_limit: int | None
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime
    rotated_from: str | None
    status: KeyStatus


class CreatedApiKeyView(ApiKeyView, frozen=True, kw_only=True):
    """A key just created, with its secret: the only time the secret is ever shown."""

    key: str


class RotatedApiKeyView(CreatedApiKeyView, frozen=True, kw_only=True):
    """The replacement of a rotated key, with its secret, and the old key as it now stands."""

    previous: ApiKeyView


class AuditEntryView(msgspec.Struct, frozen=True, kw_only=True):
    """One audit entry."""

    id: str
    occurred_at: datetime
    tenant_id: str
    actor_tenant_id: str
    actor_key_id: str
    actor_key_prefix: str
    action: str
    target_type: str
    target_id: str | None
    result: str
    detail: dict[str, Any]


def tenant_view(tenant: Tenant) -> TenantView:
    return msgspec.convert(tenant, TenantView, from_attributes=True)


def api_key_view(key: ApiKey, now: datetime) -> ApiKeyView:
    """The key as shown at `now` (its `status` depends on the time); never its hash."""
    return msgspec.convert({**msgspec.structs.asdict(key), "status": key.status(now)}, ApiKeyView)


def audit_entry_view(entry: AuditEntry) -> AuditEntryView:
    return msgspec.convert(entry, AuditEntryView, from_attributes=True)
