"""Encoded events grouped into `POST /v1/ingest/logs` bodies, each with a deterministic `Idempotency-Key`.

Guarantees:

- A batch holds at most `BatchLimits.max_events` events and its body is at most `BatchLimits.max_bytes`
  bytes, exactly (the body is `{"events":[` + the events joined by `,` + `]}`).
- Batch boundaries depend only on the file's content and the options (format, service, timestamps, limits):
  reading the same file with the same options gives the same batches, so a re-run sends the same bodies
  under the same keys, and the server stores each once (within its idempotency window).
- `idempotency_key` = SHA-256 over the file's absolute path, the byte offset of the batch's first line in
  the (decompressed) file, and the SHA-256 of the body; `Batch.halves` (after a `413`) gives each half its own
  offset and body, hence its own key, as deterministically.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from mintlog.importer.reading import Encoded, Refused

__all__ = ["ENVELOPE_BYTES", "Batch", "BatchLimits", "batch_events", "idempotency_key", "make_batch"]

_OPEN = b'{"events":['
_CLOSE = b"]}"
ENVELOPE_BYTES = len(_OPEN) + len(_CLOSE)
"""Bytes of a body around its events."""
_KEY_PREFIX = "mintlog-import-"


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """Most events, and most body bytes, in one request."""

    max_events: int
    max_bytes: int

    @property
    def max_event_bytes(self) -> int:
        """The largest encoded event a batch may hold alone."""
        return self.max_bytes - ENVELOPE_BYTES


@dataclass(frozen=True, slots=True)
class Batch:
    """One request: its events (`parts`), the line number and start offset of each, its body and key."""

    path: str
    parts: tuple[bytes, ...]
    lines: tuple[int, ...]
    offsets: tuple[int, ...]
    body: bytes
    key: str

    @property
    def events(self) -> int:
        return len(self.parts)

    def halves(self) -> tuple[Batch, Batch]:
        """The first and second half of the events (a batch of at least two), as two batches."""
        middle = len(self.parts) // 2
        return (
            make_batch(self.path, self.parts[:middle], self.lines[:middle], self.offsets[:middle]),
            make_batch(self.path, self.parts[middle:], self.lines[middle:], self.offsets[middle:]),
        )


def idempotency_key(path: str, offset: int, body: bytes) -> str:
    """`mintlog-import-` + 64 hex digits (see the module docstring); 79 characters, within the API's 200."""
    digest = hashlib.sha256(b"mintlog-import/1\0")
    digest.update(path.encode("utf-8", "surrogateescape"))
    digest.update(b"\0%d\0" % offset)
    digest.update(hashlib.sha256(body).digest())
    return _KEY_PREFIX + digest.hexdigest()


def make_batch(path: str, parts: tuple[bytes, ...], lines: tuple[int, ...], offsets: tuple[int, ...]) -> Batch:
    """A batch of `parts` (at least one), its body and key computed."""
    body = b"".join((_OPEN, b",".join(parts), _CLOSE))
    return Batch(path, parts, lines, offsets, body, idempotency_key(path, offsets[0], body))


def batch_events(
    path: str, items: Iterable[Encoded | Refused], limits: BatchLimits, refused: list[Refused]
) -> Iterator[Batch]:
    """Batches of the encoded events of `items`, in order; each `Refused` item is appended to `refused` and
    takes no room."""
    parts: list[bytes] = []
    lines: list[int] = []
    offsets: list[int] = []
    size = ENVELOPE_BYTES
    for item in items:
        if isinstance(item, Refused):
            refused.append(item)
            continue
        added = len(item.part) + (1 if parts else 0)
        if parts and (len(parts) >= limits.max_events or size + added > limits.max_bytes):
            yield make_batch(path, tuple(parts), tuple(lines), tuple(offsets))
            parts, lines, offsets = [], [], []
            size = ENVELOPE_BYTES
            added = len(item.part)
        parts.append(item.part)
        lines.append(item.line)
        offsets.append(item.offset)
        size += added
    if parts:
        yield make_batch(path, tuple(parts), tuple(lines), tuple(offsets))
