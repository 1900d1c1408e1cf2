"""The bodies of the management API: what a client may send (strict) and what it gets back.

Request bodies forbid unknown members, so a read-only member (`id` in a PATCH, `created_at`, `key`, …) or a
`tenant_id` is refused with 422 naming it, never ignored or obeyed. Malformed JSON is a 400; well-formed JSON
of the wrong shape is a 422 `validation_failed` with the member's path in `field`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, TypeVar

import msgspec
from msgspec import UNSET, Meta, UnsetType

from mintlog.domain.audit import AuditEntry
from mintlog.domain.keys import Scope
from mintlog.domain.tenants import ApiKey, KeyStatus, Tenant
from mintlog.errors import BadRequest, PayloadTooLarge, UnprocessableEntity

__all__ = [
    "ApiKeyPage",
    "ApiKeyView",
    "AuditEntryView",
    "AuditPage",
    "CreatedApiKeyView",
    "KeyCreate",
    "KeyRotate",
    "RotatedApiKeyView",
    "TenantCreate",
    "TenantPage",
    "TenantPatch",
    "TenantView",
    "TimeZoneName",
    "api_key_view",
    "audit_entry_view",
    "decode_body",
    "invalid_field",
    "read_body",
    "tenant_view",
]

MAX_BODY_BYTES = 64 * 1024
MAX_GRACE_SECONDS = 30 * 86_400
DEFAULT_GRACE_SECONDS = 86_400

TenantName = Annotated[str, Meta(min_length=1, max_length=200)]
Plan = Annotated[str, Meta(min_length=1, max_length=40)]
RetentionDays = Annotated[int, Meta(ge=1, le=3650)]
ArchiveRetentionDays = Annotated[int, Meta(ge=1, le=36500)]
TimeZoneName = Annotated[str, Meta(min_length=1, max_length=64, description="An IANA time zone, e.g. Europe/Berlin.")]
KeyName = Annotated[str, Meta(min_length=1, max_length=200)]
RateLimit = Annotated[int, Meta(ge=1, le=10_000_000, description="Requests per minute.")]
AwareDateTime = Annotated[datetime, Meta(tz=True)]

# Members a client may read but never write: naming one gets a clearer message than "unknown".
_READ_ONLY = frozenset(
    {
        "id",
        "tenant_id",
        "created_at",
        "updated_at",
        "deleted_at",
        "key",
        "key_hash",
        "prefix",
        "revoked_at",
        "last_used_at",
        "rotated_from",
        "status",
    }
)
_T = TypeVar("_T")
_UNKNOWN_FIELD = re.compile(r"unknown field `([^`]*)`")
_MISSING_FIELD = re.compile(r"missing required field `([^`]*)`")
_AT_PATH = re.compile(r" - at `\$\.?([^`]*)`$")


class TenantCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`POST /v1/admin/tenants`. Without `id`, the id is derived from `name`."""

    name: TenantName
    plan: Plan = "free"
    retention_days: RetentionDays = 30
    archive_retention_days: ArchiveRetentionDays | None = None
    time_zone: TimeZoneName = "UTC"
    id: str | None = None


class TenantPatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`PATCH /v1/admin/tenants/{id}`: the members to change; absent ones stay as they are."""

    plan: Plan | UnsetType = UNSET
    retention_days: RetentionDays | UnsetType = UNSET
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
    archive_retention_days: int | None
    time_zone: str
    suspended: bool
    created_at: datetime
    updated_at: datetime | None
    deleted_at: datetime | None


class TenantPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of tenants; pass `next_cursor` as `cursor` for the next one (null on the last page)."""

    items: list[TenantView]
    next_cursor: str | None


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


class ApiKeyPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of keys, oldest first."""

    items: list[ApiKeyView]
    next_cursor: str | None


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


class AuditPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of the audit log, newest first."""

    items: list[AuditEntryView]
    next_cursor: str | None


def tenant_view(tenant: Tenant) -> TenantView:
    return TenantView(
        id=tenant.id,
        name=tenant.name,
        plan=tenant.plan,
        retention_days=tenant.retention_days,
        archive_retention_days=tenant.archive_retention_days,
        time_zone=tenant.time_zone,
        suspended=tenant.suspended,
        created_at=tenant.created_at,
        updated_at=tenant.updated_at,
        deleted_at=tenant.deleted_at,
    )


def api_key_view(key: ApiKey, now: datetime) -> ApiKeyView:
    return ApiKeyView(
        id=key.id,
        tenant_id=key.tenant_id,
        name=key.name,
        prefix=key.prefix,
        scopes=list(key.scopes),
        rate_limit=key.rate_limit,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        last_used_at=key.last_used_at,
        created_at=key.created_at,
        rotated_from=key.rotated_from,
        status=key.status(now),
    )


def audit_entry_view(entry: AuditEntry) -> AuditEntryView:
    return AuditEntryView(
        id=entry.id,
        occurred_at=entry.occurred_at,
        tenant_id=entry.tenant_id,
        actor_tenant_id=entry.actor_tenant_id,
        actor_key_id=entry.actor_key_id,
        actor_key_prefix=entry.actor_key_prefix,
        action=entry.action,
        target_type=entry.target_type,
        target_id=entry.target_id,
        result=entry.result,
        detail=entry.detail,
    )


def _validation_problem(message: str) -> UnprocessableEntity:
    unknown = _UNKNOWN_FIELD.search(message)
    missing = _MISSING_FIELD.search(message)
    at_path = _AT_PATH.search(message)
    prefix = at_path.group(1) + "." if at_path and at_path.group(1) else ""
    if unknown:
        field = prefix + unknown.group(1)
        reason = "is read-only" if unknown.group(1) in _READ_ONLY else "is not a known member"
        detail = f"`{field}` {reason}; remove it"
    elif missing:
        field = prefix + missing.group(1)
        detail = f"`{field}` is required"
    else:
        field = at_path.group(1) if at_path else ""
        detail = _AT_PATH.sub("", message) + (f" at `{field}`" if field else "")
    return UnprocessableEntity(f"invalid body: {detail}", code="validation_failed", extra={"field": field})


async def read_body(chunks: AsyncIterator[bytes], *, max_bytes: int = MAX_BODY_BYTES) -> bytes:
    """The request body, or a 413 `body_too_large` as soon as it exceeds `max_bytes` (read no further)."""
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > max_bytes:
            raise PayloadTooLarge(f"the body exceeds {max_bytes} bytes", code="body_too_large")
    return bytes(body)


def decode_body(body: bytes, decoder: msgspec.json.Decoder[_T], *, empty: _T | None = None) -> _T:
    """Decode a write body. An empty body is `empty` when given, else a 400 `empty_body`; malformed JSON is a
    400 `malformed_json`; a member of the wrong type, out of bounds, unknown or read-only is a 422
    `validation_failed` whose `field` names it (`""` for the body itself)."""
    if not body.strip():
        if empty is not None:
            return empty
        raise BadRequest("the body is empty; send a JSON object", code="empty_body")
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise _validation_problem(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}", code="malformed_json") from None
    except UnicodeDecodeError as exc:
        raise BadRequest(f"body is not valid UTF-8: {exc.reason}", code="malformed_json") from None


def invalid_field(field: str, detail: str) -> UnprocessableEntity:
    """A 422 `validation_failed` about one member, for checks msgspec cannot express."""
    return UnprocessableEntity(f"invalid body: {detail}", code="validation_failed", extra={"field": field})
