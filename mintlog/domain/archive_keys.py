"""What the archive's writer (the pipeline) and its readers (the API's `/v1/archive`) agree on: where an
object lives and what its bytes are.

An object holds the raw events a tenant's ingest accepted in one UTC hour (its receive hour), as NDJSON, one
line per event, gzip-compressed deterministically (ISA-L's igzip at levels 1 to 3, zlib above: `pack_lines`);
its key is `archive/{tenant}/{YYYY-MM-DD}/{HH}/{first event id}.ndjson.gz`. Pure: no I/O.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from isal import igzip

__all__ = ["IGZIP_MAX_LEVEL", "PackedObject", "archive_hour", "count_lines", "object_key", "pack_lines"]

IGZIP_MAX_LEVEL = 3
"""The highest level `pack_lines` compresses with ISA-L's igzip; higher levels use zlib."""


def archive_hour(received_at: datetime) -> datetime:
    """The UTC hour (its first instant) whose partition holds events received at `received_at`."""
    return received_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def object_key(tenant_id: str, hour: datetime, first_event_id: str) -> str:
    """`archive/{tenant}/{YYYY-MM-DD}/{HH}/{first event id}.ndjson.gz`."""
    hour = hour.astimezone(UTC)
    return f"archive/{tenant_id}/{hour:%Y-%m-%d}/{hour:%H}/{first_event_id}.ndjson.gz"


@dataclass(frozen=True, slots=True)
class PackedObject:
    """An object ready to store: its gzip bytes and what the manifest records about them."""

    data: bytes
    sha256: str
    event_count: int


def pack_lines(lines: Sequence[bytes], level: int = 1) -> PackedObject:
    """Gzip the NDJSON `lines` (each ending in a newline) at `level` deterministically: the same lines and
    level, the same bytes (a plain gzip member with no timestamp, which any gzip reader reads).

    Levels 1 to 3 (`IGZIP_MAX_LEVEL`) compress with ISA-L's igzip at that level, 4 to 9 with zlib. On the
    benchmark's archive lines igzip's level 1 takes about a fifth of the CPU of zlib's level 1 and is a little
    smaller (docs/benchmarks.md). The bytes differ from zlib's: the same lines packed at the same level by
    Mintlog versions from before and after this choice are different bytes of the same NDJSON.
    """
    joined = b"".join(lines)
    if level <= IGZIP_MAX_LEVEL:
        data = igzip.compress(joined, compresslevel=level, mtime=0)  # pyright: ignore[reportUnknownMemberType]
    else:
        data = gzip.compress(joined, compresslevel=level, mtime=0)
    return PackedObject(data=data, sha256=hashlib.sha256(data).hexdigest(), event_count=len(lines))


def count_lines(data: bytes) -> int:
    """The number of NDJSON lines in gzip `data`; raises `gzip.BadGzipFile`, `EOFError` or `zlib.error` when
    it is not whole gzip."""
    return gzip.decompress(data).count(b"\n")
