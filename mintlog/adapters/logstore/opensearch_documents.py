"""The OpenSearch document of a `LogEvent` (see `opensearch_layout.index_template` for the mapping).

A document holds the indexed attributes of the event plus `event`, the whole event as msgspec JSON, which
is all `_source` keeps and all search decodes: what comes back is exactly what was written (microsecond
timestamps with their UTC offset, the types inside `fields`), as with the Tantivy store.

`fields` goes in twice: as the `flat_object` of `indexed_field_values` (keyed queries such as
`fields.user_id: u1` from Dashboards or other tools) and as `field_pairs`, the keyword terms
`fields.<key>=<text>` (`FIELD_PAIRS_PREFIX` + `mintlog.query.values.field_pairs`). Mintlog's own queries use
`field_pairs`: OpenSearch 2.19 rewrites every query naming `fields._valueAndPath` (it prepends the field
name to the value), so `mintlog.query.opensearch` compiles `fields.*` clauses to `field_pairs`, which holds
exactly those terms.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import cast

import msgspec

from mintlog.domain.events import LogEvent
from mintlog.query.values import pair_prefix, value_text, value_texts

__all__ = [
    "FIELD_PAIRS",
    "FIELD_PAIRS_PREFIX",
    "EventEncodingError",
    "decode_event",
    "encode_document",
    "field_numbers",
    "indexed_fields",
    "utc_instant",
]

FIELD_PAIRS = "field_pairs"
"""The keyword field holding `fields.<key>=<text>` for every value text of `fields`."""
FIELD_PAIRS_PREFIX = "fields."


class EventEncodingError(ValueError):
    """An event cannot be encoded (e.g. a string holding a lone surrogate); retrying will not help."""


class FieldNumber(msgspec.Struct, frozen=True):
    """One number of `fields`: `fields.<key>` holds `value` (an element of a list counts on its own)."""

    key: str
    value: float


class _Document(msgspec.Struct, omit_defaults=True):
    id: str
    tenant_id: str
    timestamp: str
    received_at: str
    service: str
    level: str
    host: str
    source: str
    message: str
    event: str
    trace_id: str | None = None
    span_id: str | None = None
    fields: dict[str, str | list[str]] | None = None
    field_pairs: list[str] | None = None
    field_numbers: list[FieldNumber] | None = None


_document_encoder = msgspec.json.Encoder()
_event_encoder = msgspec.json.Encoder()
_event_decoder = msgspec.json.Decoder(LogEvent)


def utc_instant(moment: datetime) -> str:
    """`moment` in UTC as RFC 3339 with microseconds and `Z` (a naive datetime is taken to be UTC)."""
    utc = moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)
    # `isoformat` (C) writes the same fixed-width text as a format of each part, at a fifth of the cost.
    return utc.isoformat(timespec="microseconds") + "Z"


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond a double's range
        return None
    return number if math.isfinite(number) else None


def field_numbers(fields: Mapping[str, object]) -> list[FieldNumber]:
    """Every number (int or float, not bool, finite) of `fields`, each element of a list on its own."""
    numbers: list[FieldNumber] = []
    for key, value in fields.items():
        values = cast("list[object]", value) if isinstance(value, list) else [value]
        for item in values:
            number = _number(item)
            if number is not None:
                numbers.append(FieldNumber(key, number))
    return numbers


@functools.lru_cache(maxsize=4096)
def _pair_prefix(key: str) -> str:
    """`FIELD_PAIRS_PREFIX + pair_prefix(key)`, for the 4,096 keys used last."""
    return FIELD_PAIRS_PREFIX + pair_prefix(key)


def indexed_fields(
    fields: Mapping[str, object],
) -> tuple[dict[str, str | list[str]], list[str], list[FieldNumber]]:
    """`indexed_field_values(fields)`, the `field_pairs` terms (`FIELD_PAIRS_PREFIX` + `field_pairs(fields)`)
    and `field_numbers(fields)`, in one pass over `fields`: every event's document needs all three."""
    indexed: dict[str, str | list[str]] = {}
    pairs: list[str] = []
    numbers: list[FieldNumber] = []
    for key, value in fields.items():
        if isinstance(value, list):
            elements = cast("list[object]", value)
            texts = value_texts(elements)
            if texts:
                indexed[key] = texts
                prefix = _pair_prefix(key)
                pairs.extend(prefix + text for text in dict.fromkeys(texts))
            for element in elements:
                number = _number(element)
                if number is not None:
                    numbers.append(FieldNumber(key, number))
            continue
        text = value_text(value)
        if text is not None:
            indexed[key] = text
            pairs.append(_pair_prefix(key) + text)
        if type(value) is not str:
            number = _number(value)
            if number is not None:
                numbers.append(FieldNumber(key, number))
    return indexed, pairs, numbers


def encode_document(event: LogEvent) -> bytes:
    """The JSON document of `event`; `EventEncodingError` when the event cannot be encoded at all."""
    try:
        indexed, pairs, numbers = indexed_fields(event.fields)
        return _document_encoder.encode(
            _Document(
                id=event.id,
                tenant_id=event.tenant_id,
                timestamp=utc_instant(event.timestamp),
                received_at=utc_instant(event.received_at),
                service=event.service,
                level=event.level,
                host=event.host,
                source=event.source,
                message=event.message,
                event=_event_encoder.encode(event).decode(),
                trace_id=event.trace_id,
                span_id=event.span_id,
                fields=indexed or None,
                field_pairs=pairs or None,
                field_numbers=numbers or None,
            )
        )
    except (TypeError, ValueError, OverflowError) as exc:
        raise EventEncodingError(f"event {event.id!r} of tenant {event.tenant_id!r} cannot be encoded: {exc}") from exc


def decode_event(stored: str | bytes) -> LogEvent:
    """The event kept in a document's `event` field."""
    return _event_decoder.decode(stored)
