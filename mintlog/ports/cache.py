"""The cache port: small values with a time to live (API keys and their invalidations)."""

from __future__ import annotations

from typing import Protocol

__all__ = ["Cache"]


class Cache(Protocol):
    """A best-effort key/value cache. Losing an entry is always safe; it only costs a lookup."""

    async def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""
        ...

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        """Store `value` for `ttl_seconds`."""
        ...

    async def delete(self, key: str) -> None:
        """Forget `key` now (e.g. a revoked API key)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
