"""The Tantivy document layout of a `LogEvent`: schema, encoding, decoding and the message analyzer.

One document per event, laid out for bytes on disk: every index structure below is read by a query, an
aggregation or the cursor, and only the `event` field is stored:

- `id`: raw text, indexed (idempotency lookups), fast (the id tie-breaker when sorting, read back without
  loading documents);
- `ts_us`: i64, fast only: the event time in microseconds since the epoch. Ranges (`[start, end)`, the
  cursor, `timestamp:` clauses) and the order run on this column; an inverted index of it would hold one
  term per distinct microsecond (about 17 bytes per event) and is not needed;
- `service`, `level`, `host`, `trace_id`, `span_id`, `source`: raw text, i.e. exact match, and fast, for
  terms aggregations;
- `message`: full text with positions (phrase queries), analyzed by `message_analyzer` (registered on every
  opened index as `mintlog_text`): Tantivy's default analysis (split on non-alphanumerics, lowercase) but
  keeping words of up to 255 bytes instead of 39, so hashes (SHA-1 is 40 characters) and long identifiers
  stay searchable;
- `field_decimals` (`DECIMALS_FIELD`): JSON, fast only, holding the *numbers* of `fields` (ints and finite
  floats, alone or in lists; dotted keys expanded) that are whole numbers of thousandths, as integer
  thousandths (`12.5` is `12500`, `200` is `200000`), when at most 2^53 in magnitude (`thousandths`):
  most numbers in logs (counts, codes, durations with up to 3 decimals). Tantivy packs such integers in
  the bits of their range over their greatest common divisor: a duration with 2 decimals takes ~1.7 bytes
  a value instead of the ~7 of a float column. Strings and booleans are not numbers, so they are left out;
- `fields`: JSON, fast only, holding the other numbers of `fields` as they are (e.g. `0.0001`, `2**60`).
  Numeric aggregations (`stats`, `percentiles`) on `fields.<key>` read both columns of the key and divide
  the thousandths back (`tantivy_aggregate`); both hold exact values, so sums, minimums and maximums are
  those of the numbers as written. A partition created before `field_decimals` existed
  (`build_legacy_schema`) keeps every number in `fields`, and is read and written that way;
- `field_pairs` (`mintlog.query.values.FIELD_PAIRS`): raw text, indexed and fast: one `key=text` term per
  value of `fields` (`mintlog.query.values.field_pairs`); every query-language clause on `fields.*`
  (equality, wildcard, numeric range, `_exists_`) is answered from it (see `mintlog.query.tantivy`), and
  terms aggregations on `fields.<key>` bucket its `key=...` terms, so keys are the value texts;
- `event`: bytes, stored only: the event as compact MessagePack (`_StoredEvent`), without what the
  partition or the document already says: the tenant (one per partition) and, for the usual UTC
  timestamp, the time itself (`ts_us`). A float inside `fields` is kept as its shortest decimal text (a
  MessagePack extension, `_FLOAT_TEXT`): `20.09` is 5 digits that compress well instead of 8 bytes of
  binary fraction that do not (about 1 byte less per event on disk with one such number). Search returns
  exactly what was written (microseconds, UTC offsets, naive timestamps, the types inside `fields`);
  events stored before the extension hold plain floats and read the same.

No field keeps field norms (one byte per document and field): results are ordered by time, never scored.
The tenant id is not indexed either: a partition holds one tenant. The document store compresses
`DOCSTORE_BLOCK_BYTES` blocks of neighbouring events together (bigger blocks find more repeats) with zstd
at level `ZSTD_LEVEL` when the installed Tantivy has zstd (`docstore_compression`; `make install` builds
one), else with LZ4 (about 0.44 of raw NDJSON on disk in all instead of 0.35). Both are set in
`meta.json` when a partition is created (`configure_new_index`); a partition keeps the compression it was
created with, and a Tantivy with zstd reads both.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import msgspec
import tantivy

from mintlog.domain.events import FieldValue, Level, LogEvent
from mintlog.ports.logstore import epoch_micros
from mintlog.query.values import FIELD_PAIRS, pairs_and_numbers

__all__ = [
    "DECIMALS_FIELD",
    "DECIMAL_SCALE",
    "DOCSTORE_BLOCK_BYTES",
    "MESSAGE_TOKENIZER",
    "ZSTD_LEVEL",
    "EventEncodingError",
    "build_legacy_schema",
    "build_schema",
    "configure_new_index",
    "decode_event",
    "docstore_compression",
    "encode_document",
    "epoch_micros",
    "message_analyzer",
    "thousandths",
    "to_utc",
]

MESSAGE_TOKENIZER = "mintlog_text"
# Longer words are dropped from `message` (OpenSearch's standard analyzer splits at 255 characters).
_MAX_WORD_BYTES = 256
DOCSTORE_BLOCK_BYTES = 256 * 1024
"""Document store block size: 16 KiB (Tantivy's default) stores ~20 % more; a block decompresses in ~0.3 ms
(zstd; ~0.1 ms with LZ4)."""
ZSTD_LEVEL = 9
"""zstd level of the document store: 40 % fewer stored bytes than LZ4 at about 100 MB/s of compression per
core on this project's benchmark machine (level 3: 14 % more bytes than level 9 at 460 MB/s; level 15: 2 %
fewer than level 9 at 30 MB/s). Tantivy compresses on its own thread, beside indexing."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ZERO = timedelta(0)


class EventEncodingError(ValueError):
    """An event cannot be encoded (e.g. a string holding a lone surrogate); retrying will not help."""


def _text_field(name: str, *, fast: bool = True, record: str = "basic", tokenizer: str = "raw") -> dict[str, Any]:
    indexing = {"record": record, "fieldnorms": False, "tokenizer": tokenizer}
    return {"name": name, "type": "text", "options": {"indexing": indexing, "stored": False, "fast": fast}}


DECIMALS_FIELD = "field_decimals"
"""The JSON field of the numbers of `fields` that are whole numbers of thousandths (see the module docstring)."""
DECIMAL_SCALE = 1000
"""`field_decimals` holds each number times this."""
_MAX_EXACT = 2**53  # every integer up to this magnitude is exactly a float: aggregations add floats

# The schema in Tantivy's own serialized form (as in `meta.json`): tantivy-py's `SchemaBuilder` cannot turn
# field norms off or build a JSON field that is fast but not indexed.
_LAYOUT: dict[str, Any] = {
    "inner": [
        _text_field("id"),
        {
            "name": "ts_us",
            "type": "i64",
            "options": {"indexed": False, "fieldnorms": False, "fast": True, "stored": False},
        },
        *(_text_field(name) for name in ("service", "level", "host", "trace_id", "span_id", "source")),
        _text_field("message", fast=False, record="position", tokenizer=MESSAGE_TOKENIZER),
        {
            "name": "fields",
            "type": "json_object",
            "options": {"stored": False, "indexing": None, "fast": True, "expand_dots_enabled": True},
        },
        {
            "name": "event",
            "type": "bytes",
            "options": {"indexed": False, "fieldnorms": False, "fast": False, "stored": True},
        },
        _text_field(FIELD_PAIRS),
        # Last, so every other field keeps its id in the schemas of partitions created before it.
        {
            "name": DECIMALS_FIELD,
            "type": "json_object",
            "options": {"stored": False, "indexing": None, "fast": True, "expand_dots_enabled": True},
        },
    ]
}


_EMPTY_SCHEMA = tantivy.SchemaBuilder().build()


def _schema_of(layout: dict[str, Any]) -> tantivy.Schema:
    # Schemas pickle as (constructor, (serialized form,)): that constructor builds one from a layout.
    reduced = cast("tuple[Callable[[dict[str, Any]], tantivy.Schema], tuple[Any, ...]]", _EMPTY_SCHEMA.__reduce__())
    return reduced[0](layout)


def build_schema() -> tantivy.Schema:
    """The schema of every new partition (see the module docstring)."""
    return _schema_of(_LAYOUT)


def build_legacy_schema() -> tantivy.Schema:
    """The schema of partitions created before `field_decimals` (2026-12-07): every number in `fields`."""
    return _schema_of({"inner": [field for field in _LAYOUT["inner"] if field["name"] != DECIMALS_FIELD]})


@functools.cache
def docstore_compression() -> str:
    """The document store compression of new partitions: zstd at `ZSTD_LEVEL` when the installed Tantivy
    reads it (built with its `zstd-compression` feature), else `lz4`. Probed once per process (~5 ms)."""
    zstd = f"zstd(compression_level={ZSTD_LEVEL})"
    with tempfile.TemporaryDirectory(prefix="mintlog-zstd-probe-") as directory:
        tantivy.Index(_EMPTY_SCHEMA, path=directory, reuse=False)
        meta_path = Path(directory) / "meta.json"
        meta = json.loads(meta_path.read_bytes())
        meta.setdefault("index_settings", {})["docstore_compression"] = zstd
        meta_path.write_text(json.dumps(meta))
        try:
            tantivy.Index.open(directory)
        except ValueError:  # "unsupported variant `zstd`, please enable Tantivy's `zstd-compression` feature"
            return "lz4"
    return zstd


def configure_new_index(path: Path) -> None:
    """Set the document store block size and compression in the `meta.json` of an index just created at `path`.

    Tantivy reads its index settings only when an index is opened, so the caller reopens it afterwards.
    The file is replaced atomically: a crash leaves either Tantivy's defaults or the new settings, both
    readable. Does nothing to an index that already has segments.
    """
    meta_path = path / "meta.json"
    meta = json.loads(meta_path.read_bytes())
    if meta.get("segments"):
        return
    settings = meta.setdefault("index_settings", {})
    wanted = {"docstore_blocksize": DOCSTORE_BLOCK_BYTES, "docstore_compression": docstore_compression()}
    if all(settings.get(name) == value for name, value in wanted.items()):
        return
    settings.update(wanted)
    staged = path / "meta.json.mintlog-tmp"
    with open(staged, "wb") as file:
        file.write(json.dumps(meta).encode())
        file.flush()
        os.fsync(file.fileno())
    os.replace(staged, meta_path)


_FieldNumbers = int | float | list[int | float]


class _IndexDocument(msgspec.Struct, omit_defaults=True):
    """The JSON handed to `IndexWriter.add_json`; `event` is base64 in JSON and bytes in the index."""

    id: str
    ts_us: int
    service: str
    level: str
    host: str
    source: str
    message: str
    event: bytes
    trace_id: str | None = None
    span_id: str | None = None
    fields: dict[str, _FieldNumbers] | None = None
    field_pairs: list[str] | None = None
    field_decimals: dict[str, _FieldNumbers] | None = None


class _StoredEvent(msgspec.Struct, array_like=True, omit_defaults=True, gc=False):
    """The stored form of a `LogEvent` (MessagePack array; trailing defaults are left out).

    What neighbouring events of one service and request share comes first, so LZ4 finds it as one run.
    `received_at` is microseconds after the event time when it is a UTC time, else its ISO 8601 text.
    `timestamp` is None when the event time is a UTC time (it is then the document's `ts_us`), else its
    ISO 8601 text, which keeps a naive time naive and an offset as written.
    """

    service: str
    host: str
    fields: dict[str, Any]  # `FieldValue`s; `Any` lets the decoder hand `_FLOAT_TEXT` extensions to its hook
    level: Level
    message: str
    id: str
    received_at: int | str
    trace_id: str | None = None
    span_id: str | None = None
    source: str = "http"
    timestamp: str | None = None


_FLOAT_TEXT = 1
"""MessagePack extension code of a stored float of `fields`: its `repr` in ASCII (round-trips exactly)."""


def _float_text(number: float) -> msgspec.msgpack.Ext:
    return msgspec.msgpack.Ext(_FLOAT_TEXT, repr(number).encode())


def _stored_fields(fields: dict[str, FieldValue], numbers: dict[str, Any]) -> dict[str, Any]:
    """`fields` with every finite float, alone or in a list, as a `_FLOAT_TEXT` extension; `fields` itself if
    there is none. `numbers` is the numbers of `fields` (`pairs_and_numbers`): it names the keys to change."""
    stored: dict[str, Any] | None = None
    for key, number in numbers.items():
        kind = type(cast("object", number))
        if kind is int:
            continue
        if stored is None:
            stored = dict(fields)
        if kind is float:
            stored[key] = _float_text(number)
        else:  # a list with numbers in it
            stored[key] = [
                _float_text(element) if type(element) is float else element
                for element in cast("list[str | int | float | bool | None]", fields[key])
            ]
    return fields if stored is None else stored


def _decode_extension(code: int, data: memoryview) -> float:
    if code != _FLOAT_TEXT:
        raise ValueError(f"unknown MessagePack extension {code} in a stored event")
    return float(bytes(data))


_document_encoder = msgspec.json.Encoder()
_stored_encoder = msgspec.msgpack.Encoder()
_stored_decoder = msgspec.msgpack.Decoder(_StoredEvent, ext_hook=_decode_extension)


def to_utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is UTC:  # what the decoders give for a `Z` time: no conversion needed
        return moment
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _is_utc(moment: datetime) -> bool:
    return moment.tzinfo is UTC or (moment.tzinfo is not None and moment.utcoffset() == _ZERO)


def _from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _stored_event(event: LogEvent, ts_us: int, numbers: dict[str, Any]) -> bytes:
    received_at = event.received_at
    return _stored_encoder.encode(
        _StoredEvent(
            id=event.id,
            received_at=epoch_micros(received_at) - ts_us if _is_utc(received_at) else received_at.isoformat(),
            service=event.service,
            level=event.level,
            message=event.message,
            host=event.host,
            fields=_stored_fields(event.fields, numbers),
            trace_id=event.trace_id,
            span_id=event.span_id,
            source=event.source,
            timestamp=None if _is_utc(event.timestamp) else event.timestamp.isoformat(),
        )
    )


def thousandths(number: int | float) -> int | None:
    """`number` as a whole number of thousandths when that is exact and at most 2^53 in magnitude, else None.

    Exact means that dividing the result by `DECIMAL_SCALE` gives `number` back (`0.1` is `100`; `0.0001`
    and `1e-300` are None), so a minimum or maximum read back from `field_decimals` is the number written.
    """
    if type(number) is int:
        scaled = number * DECIMAL_SCALE
    else:
        scaled_float = number * DECIMAL_SCALE
        if not -_MAX_EXACT <= scaled_float <= _MAX_EXACT:
            return None
        scaled = round(scaled_float)
        if scaled / DECIMAL_SCALE != number:
            return None
    return scaled if -_MAX_EXACT <= scaled <= _MAX_EXACT else None


def _split_numbers(numbers: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The numbers of `fields` as `(field_decimals, fields)`: thousandths where exact, the others as they are."""
    decimals: dict[str, Any] = {}
    others: dict[str, Any] = {}
    for key, value in numbers.items():
        if type(cast("object", value)) is not list:
            as_thousandths = thousandths(value)
            if as_thousandths is None:
                others[key] = value
            else:
                decimals[key] = as_thousandths
            continue
        scaled_list: list[int] = []
        kept: list[int | float] = []
        for number in cast("list[int | float]", value):
            as_thousandths = thousandths(number)
            if as_thousandths is None:
                kept.append(number)
            else:
                scaled_list.append(as_thousandths)
        if scaled_list:
            decimals[key] = scaled_list
        if kept:
            others[key] = kept
    return decimals, others


def encode_document(event: LogEvent, timestamp_utc: datetime, *, decimals: bool = True) -> str:
    """The JSON document of `event` for `IndexWriter.add_json`.

    `decimals` is False for a partition of the legacy layout (`build_legacy_schema`): every number then
    goes to `fields`. Raises `EventEncodingError` when the event cannot be encoded at all.
    """
    try:
        ts_us = epoch_micros(timestamp_utc)
        pairs, numbers = pairs_and_numbers(event.fields)
        stored = _stored_event(event, ts_us, numbers)
        scaled: dict[str, Any] = {}
        if decimals and numbers:
            scaled, numbers = _split_numbers(numbers)
        return _document_encoder.encode(
            _IndexDocument(
                id=event.id,
                ts_us=ts_us,
                service=event.service,
                level=event.level,
                host=event.host,
                source=event.source,
                message=event.message,
                event=stored,
                trace_id=event.trace_id,
                span_id=event.span_id,
                fields=numbers or None,
                field_pairs=pairs or None,
                field_decimals=scaled or None,
            )
        ).decode()
    except (TypeError, ValueError, OverflowError) as exc:
        raise EventEncodingError(f"event {event.id!r} of tenant {event.tenant_id!r} cannot be encoded: {exc}") from exc


def decode_event(stored: bytes, *, tenant_id: str, ts_us: int) -> LogEvent:
    """The event kept in a document's `event` field, given its partition's tenant and its `ts_us`."""
    kept = _stored_decoder.decode(stored)
    timestamp = _from_micros(ts_us) if kept.timestamp is None else datetime.fromisoformat(kept.timestamp)
    received_at = (
        _from_micros(ts_us + kept.received_at)
        if isinstance(kept.received_at, int)
        else datetime.fromisoformat(kept.received_at)
    )
    return LogEvent(
        id=kept.id,
        tenant_id=tenant_id,
        timestamp=timestamp,
        received_at=received_at,
        service=kept.service,
        level=kept.level,
        message=kept.message,
        host=kept.host,
        trace_id=kept.trace_id,
        span_id=kept.span_id,
        fields=kept.fields,
        source=kept.source,
    )


def message_analyzer() -> tantivy.TextAnalyzer:
    """The analyzer of `message`, at index and at query time: split on non-alphanumerics, lowercase."""
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(_MAX_WORD_BYTES))
        .filter(tantivy.Filter.lowercase())
        .build()
    )
