"""The metadata port: tenants and API keys (more tables join in later issues)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from mintlog.domain.tenants import ApiKey, Tenant

__all__ = ["MetadataStore"]


class MetadataStore(Protocol):
    """Relational metadata on SQLite (embedded) or PostgreSQL (production)."""

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
        """The tenant, or None."""
        ...

    async def create_tenant(self, tenant: Tenant) -> Tenant:
        """Insert a tenant; raises `Conflict` if the id exists."""
        ...

    async def create_api_key(self, key: ApiKey) -> ApiKey:
        """Insert a key (its hash, never its secret)."""
        ...

    async def find_api_key(self, key_hash: str) -> tuple[ApiKey, Tenant] | None:
        """The key with this SHA-256 and its tenant, whatever their state (revoked, expired, suspended)."""
        ...

    async def list_api_keys(self, tenant_id: str) -> Sequence[ApiKey]:
        """The tenant's keys, oldest first."""
        ...

    async def touch_api_keys(self, last_used: dict[str, datetime]) -> None:
        """Record when keys were last used, in one write for many keys."""
        ...
