"""The metadata port: tenants, API keys, the audit log and job leases (more tables join in later issues)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from mintlog.domain.audit import AuditEntry, AuditQuery
from mintlog.domain.tenants import ApiKey, Tenant, TenantChanges

__all__ = ["JobLeases", "MetadataStore"]


class JobLeases(Protocol):
    """Time-limited leases that let exactly one instance do a unit of scheduled work (retention, rule evaluation).

    A lease names a job (any string up to 100 characters, e.g. `retention` or `alert-rule:42`) and is held by
    one holder (up to 255 characters, unique per running instance) until an instant. Expiry is judged
    against the `now` each caller passes, so instances need clocks that agree to well within a lease.
    """

    async def try_claim(self, job: str, holder: str, *, until: datetime, now: datetime) -> bool:
        """Take or renew the lease on `job` for `holder` until `until`; True when `holder` holds it on return.

        Succeeds when nobody holds the lease, when it has expired (its expiry is not after `now`), or when
        `holder` already holds it (renewal: `until` replaces the expiry). Fails, changing nothing, while
        another holder's lease runs. Atomic: of several holders racing for a free or expired lease, exactly
        one wins. Durable when it returns. Raises `ValueError` when `until` is not after `now`.
        """
        ...

    async def release(self, job: str, holder: str) -> None:
        """End `holder`'s lease on `job` now, so anyone may claim it; does nothing when another holds it."""
        ...


class MetadataStore(JobLeases, Protocol):
    """Relational metadata on SQLite (embedded) or PostgreSQL (production).

    Every method raises `DatabaseUnavailable` when the database cannot be reached. A write is durable when it
    returns. Lookups by key id always take the tenant id too, so one tenant's ids never reach another's rows.
    """

    async def start(self) -> None:
        """Connect, and migrate to the latest schema when configured to (idempotent)."""
        ...

    async def close(self) -> None:
        """Release every connection."""
        ...

    async def ping(self) -> None:
        """Return when the database answers; raise `DatabaseUnavailable` otherwise."""
        ...

    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        """The tenant (deleted ones included), or None."""
        ...

    async def create_tenant(self, tenant: Tenant) -> Tenant:
        """Insert a tenant and return it as stored (`updated_at` set); raises `Conflict` if the id exists."""
        ...

    async def list_tenants(self, *, after: str | None = None, limit: int = 50) -> Sequence[Tenant]:
        """Up to `limit` tenants whose id sorts after `after`, ordered by id."""
        ...

    async def update_tenant(self, tenant_id: str, changes: TenantChanges, *, updated_at: datetime) -> Tenant | None:
        """Apply `changes` atomically and return the tenant as stored; None when no tenant has this id.

        A deleted tenant is read-only: any change but a repeated deletion raises `Conflict` (`tenant_deleted`);
        deleting again keeps the first `deleted_at`.
        """
        ...

    async def create_api_key(self, key: ApiKey) -> ApiKey:
        """Insert a key (its hash, never its secret); raises `Conflict` if its id or hash exists."""
        ...

    async def find_api_key(self, key_hash: str) -> tuple[ApiKey, Tenant] | None:
        """The key with this SHA-256 and its tenant, whatever their state (revoked, expired, suspended)."""
        ...

    async def get_api_key(self, tenant_id: str, key_id: str) -> ApiKey | None:
        """The tenant's key with this id, whatever its state; None when it is absent or another tenant's."""
        ...

    async def list_api_keys(
        self, tenant_id: str, *, after: tuple[datetime, str] | None = None, limit: int | None = None
    ) -> Sequence[ApiKey]:
        """The tenant's keys, oldest first (by `created_at`, then id), after the (created_at, id) `after`;
        all of them when `limit` is None."""
        ...

    async def revoke_api_key(self, tenant_id: str, key_id: str, *, revoked_at: datetime) -> ApiKey | None:
        """Revoke the tenant's key and return it; None when it is absent or another tenant's.

        Idempotent: revoking a revoked key keeps its first `revoked_at`.
        """
        ...

    async def rotate_api_key(
        self, tenant_id: str, key_id: str, replacement: ApiKey, *, retire_at: datetime
    ) -> tuple[ApiKey, ApiKey] | None:
        """In one transaction, insert `replacement` and retire the old key at `retire_at`; return (old, new).

        The old key's expiry becomes the earlier of its own and `retire_at`; when `retire_at` is not after
        `replacement.created_at`, the old key is revoked instead. None when the old key is absent or another
        tenant's; `Conflict` (`key_revoked`, `key_expired`) when it no longer works.
        """
        ...

    async def touch_api_keys(self, last_used: dict[str, datetime]) -> None:
        """Record when keys were last used, in one write for many keys."""
        ...

    async def append_audit(self, entry: AuditEntry) -> None:
        """Append one entry to the audit log (entries are never updated or deleted by Mintlog)."""
        ...

    async def list_audit(self, query: AuditQuery) -> Sequence[AuditEntry]:
        """Up to `query.limit` entries matching `query`, newest first (by `occurred_at`, then id)."""
        ...
