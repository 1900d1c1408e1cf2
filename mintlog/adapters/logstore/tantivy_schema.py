"""The Tantivy document layout of a `LogEvent`: schema, encoding, decoding and the message analyzer.

One document per event. Every searchable attribute is its own field, and the whole event is kept as msgspec
JSON in the stored-only `event` field, so search returns exactly what was written (microsecond timestamps,
UTC offsets and the types inside `fields`) without rebuilding it from indexed values.

- `id`: raw text, stored, fast (idempotency lookups, the id tie-breaker when sorting);
- `tenant_id`, `service`, `level`, `host`, `trace_id`, `span_id`, `source`: raw text, i.e. exact match;
  all but `tenant_id` are also fast fields, for terms aggregations;
- `timestamp`: date, indexed, stored, fast (Tantivy keeps date terms and fast values at second precision);
- `ts_us`: i64, indexed, fast: the event time in microseconds since the epoch, for exact ranges and order;
- `received_at`: date, indexed;
- `message`: full text with positions, analyzed by `message_analyzer` (registered on every opened index as
  `mintlog_text`): Tantivy's default analysis (split on non-alphanumerics, lowercase) but keeping words of
  up to 255 bytes instead of 39, so hashes (SHA-1 is 40 characters) and long identifiers stay searchable;
- `fields`: JSON, raw tokenizer, dotted keys expanded, fast: `fields.user_id` = `u1` matches exactly, and
  numbers and booleans are indexed as typed terms; numeric aggregations (`stats`, `percentiles`) on
  `fields.<key>` read its number columns (booleans and strings have their own columns and are ignored);
- `field_pairs` (`mintlog.query.values.FIELD_PAIRS`): raw text, indexed, not stored: one `key=text` term per
  value of `fields` (`mintlog.query.values.field_pairs`); every query-language clause on `fields.*`
  (equality, wildcard, numeric range, `_exists_`) is answered from it (see `mintlog.query.tantivy`); also
  fast: terms aggregations on `fields.<key>` bucket its `key=...` terms, so keys are the value texts;
- `event`: bytes, stored only: the whole event as msgspec JSON.

Dates outside Tantivy's range (1677-09-21 .. 2262-04-11) are left out of the `timestamp` and `received_at`
fields; `ts_us` and the stored event still carry them exactly.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import tantivy

from mintlog.domain.events import FieldValue, LogEvent
from mintlog.ports.logstore import epoch_micros
from mintlog.query.values import FIELD_PAIRS, field_pairs

__all__ = [
    "MESSAGE_TOKENIZER",
    "EventEncodingError",
    "build_schema",
    "decode_event",
    "encode_document",
    "epoch_micros",
    "message_analyzer",
    "to_utc",
]

# The range of Tantivy's date type (nanoseconds in an i64).
_MIN_TANTIVY_DATE = datetime(1677, 9, 22, tzinfo=UTC)
_MAX_TANTIVY_DATE = datetime(2262, 4, 10, tzinfo=UTC)

MESSAGE_TOKENIZER = "mintlog_text"
# Longer words are dropped from `message` (OpenSearch's standard analyzer splits at 255 characters).
_MAX_WORD_BYTES = 256


class EventEncodingError(ValueError):
    """An event cannot be encoded (e.g. a string holding a lone surrogate); retrying will not help."""


def build_schema() -> tantivy.Schema:
    """The schema of every partition (see the module docstring)."""
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, fast=True, tokenizer_name="raw", index_option="basic")
    builder.add_text_field("tenant_id", tokenizer_name="raw", index_option="basic")
    builder.add_date_field("timestamp", stored=True, indexed=True, fast=True)
    builder.add_integer_field("ts_us", indexed=True, fast=True)
    builder.add_date_field("received_at", indexed=True)
    for name in ("service", "level", "host", "trace_id", "span_id", "source"):
        builder.add_text_field(name, fast=True, tokenizer_name="raw", index_option="basic")
    builder.add_text_field("message", tokenizer_name=MESSAGE_TOKENIZER, index_option="position")
    builder.add_json_field("fields", fast=True, tokenizer_name="raw", index_option="basic", expand_dots_enabled=True)
    builder.add_bytes_field("event", stored=True)
    builder.add_text_field(FIELD_PAIRS, fast=True, tokenizer_name="raw", index_option="basic")
    return builder.build()


class _IndexDocument(msgspec.Struct, omit_defaults=True):
    """The JSON handed to `IndexWriter.add_json`; `event` is base64 in JSON and bytes in the index."""

    id: str
    tenant_id: str
    ts_us: int
    service: str
    level: str
    host: str
    source: str
    message: str
    event: bytes
    timestamp: datetime | None = None
    received_at: datetime | None = None
    trace_id: str | None = None
    span_id: str | None = None
    fields: dict[str, FieldValue] | None = None
    field_pairs: list[str] | None = None


_document_encoder = msgspec.json.Encoder()
_event_encoder = msgspec.json.Encoder()
_event_decoder = msgspec.json.Decoder(LogEvent)


def to_utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _tantivy_date(moment_utc: datetime) -> datetime | None:
    return moment_utc if _MIN_TANTIVY_DATE <= moment_utc <= _MAX_TANTIVY_DATE else None


def encode_document(event: LogEvent, timestamp_utc: datetime) -> str:
    """The JSON document of `event` for `IndexWriter.add_json`.

    Raises `EventEncodingError` when the event cannot be encoded at all.
    """
    try:
        return _document_encoder.encode(
            _IndexDocument(
                id=event.id,
                tenant_id=event.tenant_id,
                ts_us=epoch_micros(timestamp_utc),
                service=event.service,
                level=event.level,
                host=event.host,
                source=event.source,
                message=event.message,
                event=_event_encoder.encode(event),
                timestamp=_tantivy_date(timestamp_utc),
                received_at=_tantivy_date(to_utc(event.received_at)),
                trace_id=event.trace_id,
                span_id=event.span_id,
                fields=event.fields or None,
                field_pairs=field_pairs(event.fields) or None,
            )
        ).decode()
    except (TypeError, ValueError, OverflowError) as exc:
        raise EventEncodingError(f"event {event.id!r} of tenant {event.tenant_id!r} cannot be encoded: {exc}") from exc


def decode_event(stored: bytes) -> LogEvent:
    """The event kept in a document's `event` field."""
    return _event_decoder.decode(stored)


def message_analyzer() -> tantivy.TextAnalyzer:
    """The analyzer of `message`, at index and at query time: split on non-alphanumerics, lowercase."""
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(_MAX_WORD_BYTES))
        .filter(tantivy.Filter.lowercase())
        .build()
    )
