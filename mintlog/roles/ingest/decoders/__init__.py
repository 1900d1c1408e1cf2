"""Ingest decoders: one per wire protocol, each turning a request body into the events `IngestService.accept` takes.

A decoder only reads its protocol. Everything every protocol shares is done once, outside it: the body is read
within `MINTLOG_INGEST__MAX_BODY_BYTES` and decompressed by `mintlog.roles.ingest.body` before the decoder
sees it, and `IngestService.accept` owns validation and its limits, per-event rejections, the tenant's quota,
`Idempotency-Key` records, publishing and the 202-only-once-durable promise. How to add a protocol:
docs/architecture.md, "A new ingest protocol".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["IngestDecoder"]


class IngestDecoder(Protocol):
    """Reads one wire protocol's request body. Pure and synchronous: no I/O, no state between requests."""

    @property
    def source(self) -> str:
        """The protocol's name, stored as `source` on every event it brings (`http` for the native body)."""
        ...

    def check_content_type(self, content_type: str | None) -> None:
        """Before the body is read: raise `UnsupportedMediaType` (415) for a `Content-Type` the protocol does
        not take (`None` when the request has none)."""
        ...

    def decode(self, body: bytes, headers: Mapping[str, str]) -> list[Any]:
        """The events of a whole, decompressed request body, in request order, as JSON-like values.

        Each event should be a dict with the keys `mintlog.domain.validation` knows (`message`, `level`,
        `timestamp`, `service`, `host`, `trace_id`, `span_id`, `fields`, ...); anything else is validated
        and rejected by index like a bad native event. Raises a `ProblemError` (400 with a `code`, 413, ...)
        when the body cannot be used at all; the protocol's route answers it in the protocol's own shape.
        Must not parse what `accept` and the pipeline do anyway: levels, timestamps and messages are
        normalized later (`mintlog.parsing` holds the parsers, for a protocol whose wire format needs one).
        """
        ...
