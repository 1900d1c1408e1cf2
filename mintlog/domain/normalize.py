"""Pipeline-side normalization: one accepted ingest event becomes one canonical `LogEvent` (DESIGN.md §4).

Input events were accepted by `mintlog.domain.validation` (types, sizes, UTF-8 and field limits are not
checked again here, except for data lifted out of a message, which ingest never saw). Normalization never
raises for a dict of JSON values and never drops data: whatever is not an attribute ends up in `fields`.

Attributes and aliases
    Each attribute is read from the first key of its group, in the order of
    `mintlog.domain.validation.KEY_GROUPS`, whose value has the expected type and is not `null` or `""`:
    message `message`/`msg`/`log`; level `level`/`severity`/`lvl`/`severity_number`/`severity_text`;
    timestamp `timestamp`/`ts`/`time`/`@timestamp`; service `service`/`service_name`; host
    `host`/`hostname`; `trace_id`; `span_id`; `fields`. Every other top-level key with a value (the keys of
    a group that lost to a higher-priority key, a key whose value has another type, and `source`, which
    always comes from the endpoint) is moved into `fields` under its own name.

Level (one of trace, debug, info, warn, error, fatal)
    Names, case-insensitive and trimmed: trace/trc/t/finest/finer → trace; debug/dbg/d/verbose/vrb/v/fine →
    debug; info/inf/i/information/informational/notice/default → info; warn/warning/wrn/w → warn;
    error/err/eror/e/severe/dpanic → error; fatal/ftl/f/critical/crit/alert/emerg/emergency/panic → fatal.
    Integers, and strings of decimal digits, from `severity_number` are OpenTelemetry SeverityNumbers
    (1-4 trace, 5-8 debug, 9-12 info, 13-16 warn, 17-20 error, 21-24 fatal); from any other level key they
    are syslog severities 0-7 (0 emerg, 1 alert, 2 crit → fatal; 3 err → error; 4 warning → warn; 5 notice,
    6 info → info; 7 debug → debug) or pino/bunyan levels (10 trace, 20 debug, 30 info, 40 warn, 50 error,
    60 fatal) (`mintlog.parsing.levels`). No level → the one found in the message (see Plain text), else
    info. An unknown level → info, and the value as sent is kept in `fields["level_original"]` (unless the
    event already has that field).

Timestamp (always an aware UTC datetime, microsecond precision)
    Strings: ISO 8601 / RFC 3339 through `datetime.fromisoformat` (`Z` or any offset, `T` or a space
    between date and time, fractional seconds with any number of digits truncated to microseconds, basic
    forms such as `20261126T100000Z`), lowercase `t`/`z`, a trailing ` UTC`/` GMT` (Go's
    `2026-11-26 10:00:00.123 +0000 UTC`), `YYYY/MM/DD HH:MM:SS[.fff]`, RFC 2822 dates
    (`Thu, 26 Nov 2026 10:00:00 GMT`), Apache/NCSA log dates (`26/Nov/2026:10:00:00 +0000`), and every line
    format of `mintlog.parsing.timestamps.match_time_format` that is the whole string (syslog
    `Dec 10 06:55:46`, HDFS `081109 203615`, …). No offset means a wall time in the tenant's zone
    (`TextParsing.zone`, UTC by default). Numbers, and strings that hold only a number (all-digit strings
    included, so `"20261126"` is an epoch and not a date), are Unix epochs whose unit follows from the
    magnitude: below 1e11 seconds, below 1e14 milliseconds, below 1e17 microseconds, else nanoseconds
    (floats allowed, nanoseconds truncated). No timestamp → the one found in the message (see Plain text),
    else `received_at`. An unparsable or out-of-range timestamp → `received_at`, and the value as sent is
    kept in `fields["timestamp_original"]` (unless the event already has that field). A time (explicit or
    found in the message) more than `IngestSettings.max_future_seconds` after `received_at` → `received_at`
    too, and `fields["timestamp_original"]` keeps the value as sent (a time found in the message: its RFC 3339
    form), so a producer with a clock in the future never pins its events on top of newest-first searches.

Message
    A trailing newline (`\\n` or `\\r\\n`, as written by Docker's json-file driver) is removed.
    A message that is a JSON object (`{...}`, `mintlog.parsing.structured`) or logfmt
    (`key=value key2="quoted \\"value\\""`, at least two pairs, every word a pair; unquoted plain decimal
    numbers become ints or floats, see `mintlog.parsing.logfmt`) is lifted: its keys are read like a top-level
    event whose `message` becomes the event's message (if it has none, the original text stays); its level,
    timestamp, service, host, trace_id and span_id are used only where the event has none; everything else
    is flattened into `fields` without overwriting the event's own fields. Lifting is all or nothing: if the
    lifted object would be refused at ingest (limits, types) or would push the event past
    `max_fields_per_event`, the message is kept as text and nothing is lifted.

Plain text (`_from_text`)
    When the event has no level or no timestamp of its own (after lifting), the tenant's extraction rules
    (`TextParsing.rules`, `mintlog.parsing.rules`; the first that matches) and then the built-in detection
    (`mintlog.parsing.detect`, unless `TextParsing.detect` is off) look for them in the message; an explicit
    value always wins. Rules run on every message (their other groups become fields, all or none within the
    limits, never over existing fields). A level or timestamp taken this way is explained by
    `fields["detected.level_source"]` / `fields["detected.time_format"]` (`rule:<name>` for a rule), which
    never replace an existing field.

Fields
    Nested objects are flattened to dotted keys (`{"http": {"status": 500}}` → `{"http.status": 500}`),
    empty objects vanish, arrays of scalars stay lists, and arrays that hold objects or arrays become one
    JSON string. On a name clash `fields` wins over extra top-level keys, which win over lifted keys; the two
    `*_original` and the two `detected.*` fields may come on top of `max_fields_per_event`.

Defaults
    A missing or blank `service` is `default_service` and a missing or blank `host` is `default_host`; both
    are trimmed. `trace_id` and `span_id` stay `None` when absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec

from mintlog.domain.events import Level, LogEvent, RawBatch, event_id
from mintlog.domain.validation import (
    HOST_KEYS,
    KEY_GROUPS,
    LEVEL_KEYS,
    MESSAGE_KEYS,
    SERVICE_KEYS,
    TIMESTAMP_KEYS,
    check_event,
)
from mintlog.parsing.detect import detect
from mintlog.parsing.levels import normalize_level
from mintlog.parsing.logfmt import parse_logfmt
from mintlog.parsing.rules import apply_rules
from mintlog.parsing.structured import parse_json_object
from mintlog.parsing.text import DEFAULT_TEXT_PARSING, TextParsing
from mintlog.parsing.timestamps import TimeContext, as_utc, parse_timestamp
from mintlog.settings import IngestSettings

__all__ = [
    "DETECTED_LEVEL_SOURCE",
    "DETECTED_TIME_FORMAT",
    "NormalizeStats",
    "normalize_batch",
    "normalize_event",
]

DETECTED_LEVEL_SOURCE = "detected.level_source"
"""The field that says where a detected level came from (`header`, `bracket`, `rule:<name>`, …)."""
DETECTED_TIME_FORMAT = "detected.time_format"
"""The field that names the format of a detected timestamp (`rfc3164`, `iso8601`, `rule:<name>`, …)."""

_DEFAULT_LIMITS = IngestSettings()

# Attribute groups as bits, to tell `_attributes` which ones a lifted object may no longer set.
_LEVEL, _TIMESTAMP, _SERVICE, _HOST, _TRACE_ID, _SPAN_ID = (1 << bit for bit in range(6))
_KNOWN_KEYS = frozenset(key for keys in KEY_GROUPS.values() for key in keys)
_MESSAGE_ALIASES = MESSAGE_KEYS[1:]
_LEVEL_ALIASES = LEVEL_KEYS[1:]
_TIMESTAMP_ALIASES = TIMESTAMP_KEYS[1:]
_SERVICE_ALIASES = SERVICE_KEYS[1:]
_HOST_ALIASES = HOST_KEYS[1:]
_TEXT: tuple[type, ...] = (str,)
_LEVEL_TYPES: tuple[type, ...] = (str, int)
_TIMESTAMP_TYPES: tuple[type, ...] = (str, int, float)

# message, level key, level, timestamp, service, host, trace_id, span_id, fields, extra top-level keys
_Attributes = tuple[
    str | None, str | None, Any, Any, str | None, str | None, str | None, str | None, dict[str, Any] | None,
    dict[str, Any] | None,
]  # fmt: skip


@dataclass(slots=True)
class NormalizeStats:
    """Counts a caller may pass to `normalize_batch` to learn what happened beside the events."""

    rule_timeouts: int = 0
    """Extraction rules that ran out of time on a message (and counted as not matching)."""


def normalize_batch(
    batch: RawBatch,
    *,
    default_service: str,
    default_host: str,
    limits: IngestSettings = _DEFAULT_LIMITS,
    parsing: TextParsing = DEFAULT_TEXT_PARSING,
    stats: NormalizeStats | None = None,
) -> list[LogEvent]:
    """Normalize every event of a raw batch, in order.

    The `i`-th event of `batch.events` gets the id `event_id(batch.batch_id, batch.first_index + i)`: ingest
    publishes accepted events only, and splits an oversize batch into messages that carry their offset, so
    this position is unique in the batch and the same on every redelivery.
    `limits` bounds what is lifted out of messages (the ingest limits by default); `parsing` is the tenant's
    text parsing (time zone, extraction rules, detection).
    """
    batch_id = batch.batch_id
    tenant_id = batch.tenant_id
    received_at = as_utc(batch.received_at)
    context = TimeContext(received_at, parsing.zone)
    source = batch.source
    first_index = batch.first_index
    counts = stats if stats is not None else NormalizeStats()
    return [
        _normalize(
            raw,
            tenant_id,
            event_id(batch_id, first_index + index),
            context,
            source,
            default_service,
            default_host,
            limits,
            parsing,
            counts,
        )
        for index, raw in enumerate(batch.events)
    ]


def normalize_event(
    raw: dict[str, Any],
    *,
    tenant_id: str,
    event_id: str,
    received_at: datetime,
    source: str,
    default_service: str,
    default_host: str,
    limits: IngestSettings = _DEFAULT_LIMITS,
    parsing: TextParsing = DEFAULT_TEXT_PARSING,
) -> LogEvent:
    """Turn one accepted ingest event into a `LogEvent`, following the rules of this module's docstring.

    `received_at` is the time ingest accepted the batch (a naive value is taken as UTC); it is also the
    timestamp of an event without a usable one. `limits` bounds what is lifted out of the message.
    """
    context = TimeContext(as_utc(received_at), parsing.zone)
    return _normalize(
        raw, tenant_id, event_id, context, source, default_service, default_host, limits, parsing, NormalizeStats()
    )


def _normalize(
    raw: dict[str, Any],
    tenant_id: str,
    id_: str,
    context: TimeContext,
    source: str,
    default_service: str,
    default_host: str,
    limits: IngestSettings,
    parsing: TextParsing,
    stats: NormalizeStats,
) -> LogEvent:
    message, level_key, level_value, timestamp_value, service, host, trace_id, span_id, fields, extras = _attributes(
        raw, 0
    )
    out = _flat_fields(fields, extras)

    if message is None:
        message = ""
    else:
        if message[-1] == "\n":
            message = message.rstrip("\r\n")
        lifted: dict[str, Any] | None = None
        if message[:1] == "{" and message[-1:] == "}":
            lifted = parse_json_object(message)
        elif "=" in message:
            lifted = parse_logfmt(message)
        if lifted:
            taken = (
                (_LEVEL if level_value is not None else 0)
                | (_TIMESTAMP if timestamp_value is not None else 0)
                | (_SERVICE if service is not None else 0)
                | (_HOST if host is not None else 0)
                | (_TRACE_ID if trace_id is not None else 0)
                | (_SPAN_ID if span_id is not None else 0)
            )
            reason, _ = check_event(lifted, limits, require_content=False)
            if reason is None:
                (
                    lifted_message,
                    lifted_level_key,
                    lifted_level,
                    lifted_timestamp,
                    lifted_service,
                    lifted_host,
                    lifted_trace_id,
                    lifted_span_id,
                    lifted_fields,
                    lifted_extras,
                ) = _attributes(lifted, taken)
                merged = _flat_fields(lifted_fields, lifted_extras)
                merged.update(out)
                if len(merged) <= limits.max_fields_per_event:
                    out = merged
                    if lifted_message is not None:
                        message = lifted_message
                    if lifted_level is not None:
                        level_key, level_value = lifted_level_key, lifted_level
                    if lifted_timestamp is not None:
                        timestamp_value = lifted_timestamp
                    service = service or lifted_service
                    host = host or lifted_host
                    trace_id = trace_id or lifted_trace_id
                    span_id = span_id or lifted_span_id

    service = (service.strip() if service is not None else "") or default_service
    level: Level | None = None
    if level_value is not None:
        level = normalize_level(level_value, otel=level_key == "severity_number")
        if level is None:
            level = "info"
            out.setdefault("level_original", level_value)

    timestamp: datetime | None = None
    if timestamp_value is not None:
        timestamp = parse_timestamp(timestamp_value, context)
        if timestamp is None:
            timestamp = context.received_at
            out.setdefault("timestamp_original", timestamp_value)

    if message and (parsing.rules or (parsing.detect and (level is None or timestamp is None))):
        level, timestamp = _from_text(message, service, level, timestamp, out, context, limits, parsing, stats)

    if timestamp is not None and timestamp > context.received_at + timedelta(0, limits.max_future_seconds):
        # A producer with a wrong clock would otherwise sit on top of every newest-first search.
        out.setdefault("timestamp_original", timestamp.isoformat() if timestamp_value is None else timestamp_value)
        timestamp = context.received_at

    return LogEvent(
        id=id_,
        tenant_id=tenant_id,
        timestamp=context.received_at if timestamp is None else timestamp,
        received_at=context.received_at,
        service=service,
        level="info" if level is None else level,
        message=message,
        host=(host.strip() if host is not None else "") or default_host,
        trace_id=trace_id,
        span_id=span_id,
        fields=out,
        source=source,
    )


def _from_text(
    message: str,
    service: str,
    level: Level | None,
    timestamp: datetime | None,
    out: dict[str, Any],
    context: TimeContext,
    limits: IngestSettings,
    parsing: TextParsing,
    stats: NormalizeStats,
) -> tuple[Level | None, datetime | None]:
    """The tenant's extraction rules, then the built-in detection, for what the event does not say itself.

    Adds the rule's fields (all or none, within the ingest limits, never over the event's own) and the
    `detected.*` fields that say where a level or timestamp came from.
    """
    if parsing.rules:
        found, timeouts = apply_rules(parsing.rules, message, service, context, parsing.rule_timeout_seconds)
        stats.rule_timeouts += timeouts
        if found is not None:
            source = f"rule:{found.rule}"
            if found.fields and len(out) + len(found.fields) <= limits.max_fields_per_event:
                reason, _ = check_event({"fields": found.fields}, limits, require_content=False)
                if reason is None:
                    for key, value in found.fields.items():
                        out.setdefault(key, value)
            if level is None:
                if found.level is not None:
                    level = found.level
                    out.setdefault(DETECTED_LEVEL_SOURCE, source)
                elif found.level_text is not None:
                    out.setdefault("level_original", found.level_text)
            if timestamp is None:
                if found.moment is not None:
                    timestamp = found.moment
                    out.setdefault(DETECTED_TIME_FORMAT, source)
                elif found.timestamp_text is not None:
                    out.setdefault("timestamp_original", found.timestamp_text)
    if parsing.detect and (level is None or timestamp is None):
        detected = detect(message, context)
        if level is None and detected.level is not None:
            level = detected.level
            out.setdefault(DETECTED_LEVEL_SOURCE, detected.level_source)
        if timestamp is None and detected.moment is not None:
            timestamp = detected.moment
            out.setdefault(DETECTED_TIME_FORMAT, detected.time_format)
    return level, timestamp


def _attributes(obj: dict[str, Any], taken: int) -> _Attributes:
    """Split an event (or a lifted object) into its attributes and its extra top-level keys.

    Groups flagged in `taken` are not read: their keys count as extra keys.
    """
    used = 0
    message = obj.get("message")
    message_key: str | None = "message"
    if message.__class__ is not str or not message:
        message_key, message = _pick(obj, _MESSAGE_ALIASES, _TEXT)
    if message_key is not None:
        used += 1

    level_key: str | None = None
    level: Any = None
    if not taken & _LEVEL:
        level = obj.get("level")
        level_class = level.__class__
        if (level_class is str and level) or level_class is int:
            level_key = "level"
        else:
            level_key, level = _pick(obj, _LEVEL_ALIASES, _LEVEL_TYPES)
        if level_key is not None:
            used += 1

    timestamp_key: str | None = None
    timestamp: Any = None
    if not taken & _TIMESTAMP:
        timestamp = obj.get("timestamp")
        timestamp_class = timestamp.__class__
        if (timestamp_class is str and timestamp) or timestamp_class is int or timestamp_class is float:
            timestamp_key = "timestamp"
        else:
            timestamp_key, timestamp = _pick(obj, _TIMESTAMP_ALIASES, _TIMESTAMP_TYPES)
        if timestamp_key is not None:
            used += 1

    service_key: str | None = None
    service: Any = None
    if not taken & _SERVICE:
        service = obj.get("service")
        if service.__class__ is str and service:
            service_key = "service"
        else:
            service_key, service = _pick(obj, _SERVICE_ALIASES, _TEXT)
        if service_key is not None:
            used += 1

    host_key: str | None = None
    host: Any = None
    if not taken & _HOST:
        host = obj.get("host")
        if host.__class__ is str and host:
            host_key = "host"
        else:
            host_key, host = _pick(obj, _HOST_ALIASES, _TEXT)
        if host_key is not None:
            used += 1

    trace_id: Any = None
    if not taken & _TRACE_ID:
        trace_id = obj.get("trace_id")
        if trace_id.__class__ is str and trace_id:
            used += 1
        else:
            trace_id = None

    span_id: Any = None
    if not taken & _SPAN_ID:
        span_id = obj.get("span_id")
        if span_id.__class__ is str and span_id:
            used += 1
        else:
            span_id = None

    fields: Any = obj.get("fields")
    if fields.__class__ is dict:
        used += 1
    else:
        fields = None

    extras: dict[str, Any] | None = None
    if len(obj) != used:
        chosen = (
            message_key,
            level_key,
            timestamp_key,
            service_key,
            host_key,
            "trace_id" if trace_id is not None else None,
            "span_id" if span_id is not None else None,
            "fields" if fields is not None else None,
        )
        extras = {}
        for key, value in obj.items():
            if key in chosen or ((value is None or value == "") and key in _KNOWN_KEYS):
                continue
            extras[key] = value
    return message, level_key, level, timestamp, service, host, trace_id, span_id, fields, extras


def _pick(obj: dict[str, Any], keys: tuple[str, ...], types: tuple[type, ...]) -> tuple[str | None, Any]:
    """The first of `keys` whose value has one of `types` and is not empty, with that value."""
    for key in keys:
        value = obj.get(key)
        if value is not None and value.__class__ in types and value != "":
            return key, value
    return None, None


def _flat_fields(fields: dict[str, Any] | None, extras: dict[str, Any] | None) -> dict[str, Any]:
    """Flatten `fields` and the extra top-level keys into one new dict; `fields` wins on a clash."""
    out: dict[str, Any] = {}
    if fields:
        for value in fields.values():
            value_class = value.__class__
            if value_class is dict or value_class is list:
                _flatten(fields, "", out)
                break
        else:
            out = fields.copy()
    if extras:
        extra_out: dict[str, Any] = {}
        _flatten(extras, "", extra_out)
        extra_out.update(out)
        out = extra_out
    return out


def _flatten(obj: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for key, value in obj.items():
        value_class = value.__class__
        if value_class is dict:
            if value:
                _flatten(value, f"{prefix}{key}.", out)
        elif value_class is list:
            out[prefix + key] = _array_value(value)
        else:
            out[prefix + key] = value


def _array_value(items: list[Any]) -> Any:
    """An array of scalars as is; an array that holds objects or arrays as one JSON string."""
    for item in items:
        item_class = item.__class__
        if item_class is dict or item_class is list:
            return msgspec.json.encode(items).decode()
    return items
