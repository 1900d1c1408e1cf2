"""The blob store port: whole objects by key (filesystem on embedded defaults, S3 in production).

Keys are `/`-separated relative paths of printable ASCII without `..` segments or a leading `/`
(e.g. `archive/acme/2026-11-27/13/batch-0001.ndjson.gz`); adapters refuse others with `ValueError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["BlobInfo", "BlobNotFound", "BlobStore"]


class BlobNotFound(KeyError):
    """No object has this key."""


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """One object of a listing: its key and size in bytes."""

    key: str
    size: int


class BlobStore(Protocol):
    """Durable objects. Every method raises `StoreUnavailable` (mintlog.errors) when the store cannot be reached.

    A `put` is atomic and durable when it returns: readers see the whole old object or the whole new one,
    never a part, and a crash after the return loses nothing.
    """

    async def start(self) -> None:
        """Connect (and create the bucket or directory when missing)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...

    async def ping(self) -> None:
        """Return when the store answers; raise `StoreUnavailable` otherwise."""
        ...

    async def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        """Store `data` under `key`, replacing any object there."""
        ...

    async def get(self, key: str) -> bytes:
        """The object's bytes; raises `BlobNotFound` when there is none."""
        ...

    async def list(self, prefix: str, *, after: str | None = None, limit: int = 1000) -> Sequence[BlobInfo]:
        """Up to `limit` objects whose key starts with `prefix` and sorts after `after`, in key order."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; does nothing when there is none (idempotent)."""
        ...
