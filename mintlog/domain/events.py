"""The canonical log event and the bus messages that carry batches of events.

Everything on the bus is a msgspec Struct; the streams, subjects and codecs of these messages are in
`mintlog.domain.streams`. One bus message carries one ingest batch (never one event), so the hot path never
pays per-event round trips.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

__all__ = [
    "LEVELS",
    "FieldValue",
    "Level",
    "LogEvent",
    "ParsedBatch",
    "RawBatch",
    "event_id",
]

Level = Literal["trace", "debug", "info", "warn", "error", "fatal"]
LEVELS: tuple[Level, ...] = ("trace", "debug", "info", "warn", "error", "fatal")

# A value in `LogEvent.fields`: keys are flat (dotted) strings, values are scalars or lists of scalars.
FieldValue = str | int | float | bool | None | list[str | int | float | bool | None]


class LogEvent(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """One normalized log event, as stored and as returned by search.

    `id` is unique per tenant and stable across redelivery (see `event_id`), so every store write keyed on
    it is idempotent. `timestamp` is the event time and `received_at` the time ingest accepted it, both UTC.
    `gc=False`: `fields` holds only scalars and lists of scalars, so no cycle can form, and big batches do
    not pay for garbage-collector scans.
    """

    id: str
    tenant_id: str
    timestamp: datetime
    received_at: datetime
    service: str
    level: Level
    message: str
    host: str
    trace_id: str | None = None
    span_id: str | None = None
    fields: dict[str, FieldValue] = {}
    source: str = "http"


class RawBatch(msgspec.Struct, frozen=True, kw_only=True, tag="raw"):
    """One accepted ingest batch (or part of one) on `LOGS_RAW`: validated but not yet normalized events.

    `source` names the protocol the batch came in by (`http` for the native body); every event of the batch
    gets it. `first_index` is the position of `events[0]` among the batch's accepted events (each part of a
    batch split to fit the bus's payload limit carries its offset).
    """

    batch_id: str
    tenant_id: str
    received_at: datetime
    source: str
    events: list[dict[str, Any]]
    first_index: int = 0


class ParsedBatch(msgspec.Struct, frozen=True, kw_only=True, tag="parsed"):
    """The normalized events of one raw message on `LOGS_PARSED`."""

    batch_id: str
    tenant_id: str
    events: list[LogEvent]


def event_id(batch_id: str, index: int) -> str:
    """The id of the `index`-th event of a batch: sortable by batch time, identical on every redelivery."""
    return f"{batch_id}-{index:05d}"
