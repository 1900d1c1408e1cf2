"""Creating, revoking and rotating API keys, for operators (`admin`) and for tenants themselves (`keys:write`).

Guarantees:
- a secret exists only in the answer that creates it; the database gets its SHA-256 and display prefix;
- a key id of another tenant is never found (404), whatever the verb;
- self-service never grants more than the caller holds: no scope it lacks (403 naming the scope), no higher
  rate limit, no later expiry. For the same reason a caller may only revoke or rotate keys whose scopes it
  holds itself (rotating hands out a secret with the old key's scopes);
- a revocation, and the retirement a rotation sets on the old key, reach the auth cache before the answer
  is sent (`Authenticator.invalidate_key`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mintlog.auth import Authenticator
from mintlog.domain.keys import DEFAULT_SCOPES, SCOPES, generate_api_key, missing_scopes, new_key_id
from mintlog.domain.tenants import ApiKey, Principal
from mintlog.errors import Conflict, Forbidden, NotFound
from mintlog.ports.metadata import MetadataStore
from mintlog.roles.api.admin.wire import KeyCreate, KeyRotate
from mintlog.roles.api.common.wire import invalid_field

__all__ = ["CreatedKey", "KeyService"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A stored key and its secret, to be shown once."""

    key: ApiKey
    secret: str


def _key_not_found(key_id: str) -> NotFound:
    return NotFound(f"no API key {key_id!r} in this tenant", code="key_not_found")


class KeyService:
    """Key management over the metadata store. `grantor` is the calling key for self-service, and None for an
    operator (`admin`), who may grant anything to any tenant."""

    def __init__(
        self,
        metadata: MetadataStore,
        authenticator: Authenticator,
        *,
        default_rate_limit: int,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._metadata = metadata
        self._authenticator = authenticator
        self._default_rate_limit = default_rate_limit
        self._clock = clock

    async def require_tenant(self, tenant_id: str, *, writable: bool = False) -> None:
        """404 when the tenant does not exist; with `writable`, 409 `tenant_deleted` when it was deleted."""
        tenant = await self._metadata.get_tenant(tenant_id)
        if tenant is None:
            raise NotFound(f"no tenant {tenant_id!r}", code="tenant_not_found")
        if writable and tenant.deleted_at is not None:
            raise Conflict(f"tenant {tenant_id!r} is deleted; it gets no new keys", code="tenant_deleted")

    async def get(self, tenant_id: str, key_id: str) -> ApiKey:
        """The tenant's key; 404 when absent or another tenant's."""
        key = await self._metadata.get_api_key(tenant_id, key_id)
        if key is None:
            raise _key_not_found(key_id)
        return key

    async def list(self, tenant_id: str, *, after: tuple[datetime, str] | None, limit: int) -> Sequence[ApiKey]:
        """A page of the tenant's keys, oldest first."""
        return await self._metadata.list_api_keys(tenant_id, after=after, limit=limit)

    @staticmethod
    def _check_scopes(grantor: Principal | None, scopes: Sequence[str], verb: str) -> None:
        lacking = () if grantor is None else missing_scopes(scopes, grantor.scopes)
        if lacking:
            raise Forbidden(
                f"this API key cannot {verb} a key with the scope {lacking[0]!r}: it does not hold it",
                code="scope_not_held",
                extra={"required_scope": lacking[0], "missing_scopes": list(lacking)},
            )

    def _check_grant(
        self, grantor: Principal | None, scopes: Sequence[str], rate_limit: int | None, expires_at: datetime | None
    ) -> None:
        if grantor is None:
            return
        self._check_scopes(grantor, scopes, "grant")
        own_limit = grantor.rate_limit or self._default_rate_limit
        if (rate_limit or self._default_rate_limit) > own_limit:
            raise Forbidden(
                f"this API key cannot grant a rate limit above its own ({own_limit} requests/minute)",
                code="rate_limit_not_held",
            )
        if grantor.expires_at is not None and (expires_at is None or expires_at > grantor.expires_at):
            raise Forbidden(
                "this API key expires and cannot grant a key that outlives it "
                f"(expires_at must be at most {grantor.expires_at.isoformat()})",
                code="expiry_not_held",
            )

    def _future_expiry(self, expires_at: datetime | None, now: datetime) -> datetime | None:
        """`expires_at` in UTC; a 422 when it is not in the future or has no UTC time (beyond year 1 or 9999)."""
        if expires_at is None:
            return None
        try:
            expires_at = expires_at.astimezone(UTC)
        except OverflowError:
            raise invalid_field("expires_at", "`expires_at` is out of range in UTC") from None
        if expires_at <= now:
            raise invalid_field("expires_at", "`expires_at` must be in the future")
        return expires_at

    async def create(self, tenant_id: str, request: KeyCreate, *, grantor: Principal | None) -> CreatedKey:
        """A new key for the tenant.

        Defaults: for an operator, every scope but `admin`; for self-service, the caller's scopes but `admin`,
        its rate limit and its expiry. Raises 403 when the grantor lacks what it grants, 422 for a past expiry.
        """
        now = self._clock()
        expires_at = self._future_expiry(request.expires_at, now)
        if request.scopes is not None:
            requested = set(request.scopes)
        elif grantor is None:
            requested = set(DEFAULT_SCOPES)
        else:
            requested = set(grantor.scopes) - {"admin"}
        scopes = tuple(scope for scope in SCOPES if scope in requested)
        rate_limit = request.rate_limit
        if grantor is not None:
            rate_limit = rate_limit if rate_limit is not None else grantor.rate_limit
            expires_at = expires_at if expires_at is not None else grantor.expires_at
        self._check_grant(grantor, scopes, rate_limit, expires_at)
        generated = generate_api_key()
        key = await self._metadata.create_api_key(
            ApiKey(
                id=new_key_id(),
                tenant_id=tenant_id,
                name=request.name,
                key_hash=generated.key_hash,
                prefix=generated.prefix,
                scopes=scopes,
                rate_limit=rate_limit,
                expires_at=expires_at,
                created_at=now,
            )
        )
        return CreatedKey(key=key, secret=generated.secret)

    async def revoke(self, tenant_id: str, key_id: str, *, grantor: Principal | None) -> ApiKey:
        """Revoke the tenant's key (idempotent) and drop it from the auth cache: its next request gets 401."""
        if grantor is not None:
            key = await self.get(tenant_id, key_id)
            self._check_scopes(grantor, key.scopes, "revoke")
        revoked = await self._metadata.revoke_api_key(tenant_id, key_id, revoked_at=self._clock())
        if revoked is None:
            raise _key_not_found(key_id)
        await self._authenticator.invalidate_key(revoked.key_hash)
        return revoked

    async def rotate(
        self, tenant_id: str, key_id: str, request: KeyRotate, *, grantor: Principal | None
    ) -> tuple[ApiKey, CreatedKey]:
        """A replacement with the old key's name, scopes and rate limit (and `request.expires_at`, by default
        none, or the grantor's expiry for self-service); the old key keeps working for `grace_seconds` (0
        revokes it now). Returns (old key as retired, new key). 409 when the old key no longer works."""
        now = self._clock()
        old = await self.get(tenant_id, key_id)
        expires_at = self._future_expiry(request.expires_at, now)
        if grantor is not None and expires_at is None:
            expires_at = grantor.expires_at
        self._check_grant(grantor, old.scopes, old.rate_limit, expires_at)
        generated = generate_api_key()
        replacement = ApiKey(
            id=new_key_id(),
            tenant_id=tenant_id,
            name=old.name,
            key_hash=generated.key_hash,
            prefix=generated.prefix,
            scopes=old.scopes,
            rate_limit=old.rate_limit,
            expires_at=expires_at,
            created_at=now,
            rotated_from=old.id,
        )
        rotated = await self._metadata.rotate_api_key(
            tenant_id, key_id, replacement, retire_at=now + timedelta(seconds=request.grace_seconds)
        )
        if rotated is None:
            raise _key_not_found(key_id)
        retired, created = rotated
        await self._authenticator.invalidate_key(retired.key_hash)
        return retired, CreatedKey(key=created, secret=generated.secret)
