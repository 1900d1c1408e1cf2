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
    60 fatal). No level → info. An unknown level → info, and the value as sent is kept in
    `fields["level_original"]` (unless the event already has that field).

Timestamp (always an aware UTC datetime, microsecond precision)
    Strings: ISO 8601 / RFC 3339 through `datetime.fromisoformat` (`Z` or any offset, `T` or a space
    between date and time, fractional seconds with any number of digits truncated to microseconds, basic
    forms such as `20261126T100000Z`), lowercase `t`/`z`, a trailing ` UTC`/` GMT` (Go's
    `2026-11-26 10:00:00.123 +0000 UTC`), `YYYY/MM/DD HH:MM:SS[.fff]`, RFC 2822 dates
    (`Thu, 26 Nov 2026 10:00:00 GMT`) and Apache/NCSA log dates (`26/Nov/2026:10:00:00 +0000`). No offset
    means UTC. Numbers, and strings that hold only a number (all-digit strings included, so `"20261126"` is
    an epoch and not a date), are Unix epochs whose unit follows from the magnitude: below 1e11 seconds,
    below 1e14 milliseconds, below 1e17 microseconds, else nanoseconds (floats allowed, nanoseconds
    truncated). No timestamp → `received_at`. An unparsable or out-of-range timestamp → `received_at`, and
    the value as sent is kept in `fields["timestamp_original"]` (unless the event already has that field).

Message
    A trailing newline (`\\n` or `\\r\\n`, as written by Docker's json-file driver) is removed.
    A message that is a JSON object (`{...}`) or logfmt (`key=value key2="quoted \\"value\\""`, at least two
    pairs, every word a pair, values kept as strings) is lifted: its keys are read like a top-level event
    whose `message` becomes the event's message (if it has none, the original text stays); its level,
    timestamp, service, host, trace_id and span_id are used only where the event has none; everything else
    is flattened into `fields` without overwriting the event's own fields. Lifting is all or nothing: if the
    lifted object would be refused at ingest (limits, types) or would push the event past
    `max_fields_per_event`, the message is kept as text and nothing is lifted.

Fields
    Nested objects are flattened to dotted keys (`{"http": {"status": 500}}` → `{"http.status": 500}`),
    empty objects vanish, arrays of scalars stay lists, and arrays that hold objects or arrays become one
    JSON string. On a name clash `fields` wins over extra top-level keys, which win over lifted keys; the two
    `*_original` fields may come on top of `max_fields_per_event`.

Defaults
    A missing or blank `service` is `default_service` and a missing or blank `host` is `default_host`; both
    are trimmed. `trace_id` and `span_id` stay `None` when absent.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import msgspec

from mintlog.domain.events import LEVELS, Level, LogEvent, RawBatch, event_id
from mintlog.domain.validation import (
    HOST_KEYS,
    KEY_GROUPS,
    LEVEL_KEYS,
    MESSAGE_KEYS,
    SERVICE_KEYS,
    TIMESTAMP_KEYS,
    check_event,
)
from mintlog.settings import IngestSettings

__all__ = ["normalize_batch", "normalize_event", "normalize_level", "parse_timestamp"]

_DEFAULT_LIMITS = IngestSettings()

_LEVEL_SYNONYMS: dict[Level, tuple[str, ...]] = {
    "trace": ("trace", "trc", "t", "finest", "finer"),
    "debug": ("debug", "dbg", "d", "verbose", "vrb", "v", "fine"),
    "info": ("info", "inf", "i", "information", "informational", "notice", "default"),
    "warn": ("warn", "warning", "wrn", "w"),
    "error": ("error", "err", "eror", "e", "severe", "dpanic"),
    "fatal": ("fatal", "ftl", "f", "critical", "crit", "alert", "emerg", "emergency", "panic"),
}
# Lowercase, UPPERCASE and Capitalized spellings up front, so most levels cost one dict lookup.
_LEVEL_NAMES: dict[str, Level] = {
    spelling: level
    for level, names in _LEVEL_SYNONYMS.items()
    for name in names
    for spelling in (name, name.upper(), name.capitalize())
}
_SYSLOG_AND_PINO_LEVELS: dict[int, Level] = {
    0: "fatal",
    1: "fatal",
    2: "fatal",
    3: "error",
    4: "warn",
    5: "info",
    6: "info",
    7: "debug",
    10: "trace",
    20: "debug",
    30: "info",
    40: "warn",
    50: "error",
    60: "fatal",
}
# OpenTelemetry SeverityNumber: four numbers per level, in the order of LEVELS, from 1.
_OTEL_LEVELS: dict[int, Level] = {1 + 4 * rank + step: level for rank, level in enumerate(LEVELS) for step in range(4)}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECONDS_FROM = 10**11
_MICROSECONDS_FROM = 10**14
_NANOSECONDS_FROM = 10**17

_UTC_SUFFIXES = frozenset((" UTC", " GMT"))

_LOGFMT_PAIR = re.compile(r'([^\s="]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)(?:\s+|\Z)')
_LOGFMT_ESCAPE = re.compile(r"\\(.)")
_LOGFMT_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}

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


def normalize_batch(
    batch: RawBatch, *, default_service: str, default_host: str, limits: IngestSettings = _DEFAULT_LIMITS
) -> list[LogEvent]:
    """Normalize every event of a raw batch, in order.

    The `i`-th event of `batch.events` gets the id `event_id(batch.batch_id, batch.first_index + i)`: ingest
    publishes accepted events only, and splits an oversize batch into messages that carry their offset, so
    this position is unique in the batch and the same on every redelivery.
    `limits` bounds what is lifted out of messages (the ingest limits by default).
    """
    batch_id = batch.batch_id
    tenant_id = batch.tenant_id
    received_at = _as_utc(batch.received_at)
    source = batch.source
    first_index = batch.first_index
    return [
        _normalize(
            raw,
            tenant_id,
            event_id(batch_id, first_index + index),
            received_at,
            source,
            default_service,
            default_host,
            limits,
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
) -> LogEvent:
    """Turn one accepted ingest event into a `LogEvent`, following the rules of this module's docstring.

    `received_at` is the time ingest accepted the batch (a naive value is taken as UTC); it is also the
    timestamp of an event without a usable one. `limits` bounds what is lifted out of the message.
    """
    return _normalize(raw, tenant_id, event_id, _as_utc(received_at), source, default_service, default_host, limits)


def normalize_level(value: str | int, *, otel: bool = False) -> Level | None:
    """The level named by `value`, or `None` when it names none.

    Integers (and digit strings) are OpenTelemetry SeverityNumbers when `otel` is true, else syslog
    severities or pino levels.
    """
    if isinstance(value, str):
        level = _LEVEL_NAMES.get(value)
        if level is not None:
            return level
        text = value.strip().lower()
        level = _LEVEL_NAMES.get(text)
        if level is not None or not (text.isascii() and text.isdigit()):
            return level
        number = int(text)
    else:
        number = value
    return (_OTEL_LEVELS if otel else _SYSLOG_AND_PINO_LEVELS).get(number)


def parse_timestamp(value: str | float) -> datetime | None:
    """The aware UTC datetime `value` stands for, or `None` when it cannot be read as a time."""
    try:
        if not isinstance(value, str):
            return _from_epoch(value)
        parsed = _parse_text(value)
        if parsed is None:
            return None
        zone = parsed.tzinfo
        if zone is UTC:
            return parsed
        if zone is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _normalize(
    raw: dict[str, Any],
    tenant_id: str,
    id_: str,
    received_at: datetime,
    source: str,
    default_service: str,
    default_host: str,
    limits: IngestSettings,
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
            lifted = _decode_json_object(message)
        elif "=" in message:
            lifted = _parse_logfmt(message)
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

    level: Level | None = "info"
    if level_value is not None:
        level = normalize_level(level_value, otel=level_key == "severity_number")
        if level is None:
            level = "info"
            out.setdefault("level_original", level_value)

    timestamp = received_at
    if timestamp_value is not None:
        parsed = parse_timestamp(timestamp_value)
        if parsed is None:
            out.setdefault("timestamp_original", timestamp_value)
        else:
            timestamp = parsed

    return LogEvent(
        id=id_,
        tenant_id=tenant_id,
        timestamp=timestamp,
        received_at=received_at,
        service=(service.strip() if service is not None else "") or default_service,
        level=level,
        message=message,
        host=(host.strip() if host is not None else "") or default_host,
        trace_id=trace_id,
        span_id=span_id,
        fields=out,
        source=source,
    )


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


def _decode_json_object(text: str) -> dict[str, Any] | None:
    try:
        decoded: Any = msgspec.json.decode(text)
    except msgspec.DecodeError:
        return None
    return decoded if decoded.__class__ is dict else None


def _parse_logfmt(text: str) -> dict[str, Any] | None:
    """The pairs of a logfmt line, or `None` unless every word is a pair and there are at least two."""
    if "\\" in text:
        return _parse_escaped_logfmt(text)
    # Without backslashes, quotes alternate: odd parts of a split on '"' are quoted values.
    parts = text.split('"')
    if not len(parts) % 2:
        return None
    pairs: dict[str, Any] = {}
    count = 0
    quoted_key = ""
    last_part = len(parts) - 1
    for index, part in enumerate(parts):
        if index % 2:
            pairs[quoted_key] = part
            count += 1
            continue
        if index and part and not part[0].isspace():
            return None
        words = part.split()
        if index < last_part:
            if not words or part[-1].isspace():
                return None
            quoted_key, equals, rest = words.pop().partition("=")
            if not quoted_key or not equals or rest:
                return None
        for word in words:
            key, equals, value = word.partition("=")
            if not key or not equals:
                return None
            pairs[key] = value
            count += 1
    return pairs if count >= 2 else None


def _parse_escaped_logfmt(text: str) -> dict[str, Any] | None:
    """`_parse_logfmt` for lines with backslash escapes inside quoted values."""
    pairs: dict[str, Any] = {}
    position = len(text) - len(text.lstrip())
    end = len(text)
    count = 0
    while position < end:
        match = _LOGFMT_PAIR.match(text, position)
        if match is None:
            return None
        key, value = match.group(1, 2)
        if value[:1] == '"':
            value = _LOGFMT_ESCAPE.sub(_unescape, value[1:-1])
        pairs[key] = value
        position = match.end()
        count += 1
    return pairs if count >= 2 else None


def _unescape(match: re.Match[str]) -> str:
    escaped = match.group(1)
    return _LOGFMT_ESCAPES.get(escaped, escaped)


def _parse_text(text: str) -> datetime | None:
    """Read a timestamp string; raises `ValueError`/`OverflowError` for numbers out of range."""
    if text.isdigit() and text.isascii():
        return _from_epoch(int(text))
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return _parse_uncommon_text(text)


def _parse_uncommon_text(text: str) -> datetime | None:
    stripped = text.strip()
    if stripped != text:
        return _parse_text(stripped) if stripped else None
    if text[-4:] in _UTC_SUFFIXES:
        return _parse_text(text[:-4])
    if "t" in text or "z" in text:
        try:
            return datetime.fromisoformat(text.upper())
        except ValueError:
            pass
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return _from_epoch(number)
    if len(text) >= 10 and text[4] == "/" and text[7] == "/":
        try:
            return datetime.fromisoformat(text.replace("/", "-", 2))
        except ValueError:
            return None
    if len(text) >= 20 and text[2] == "/" and text[6] == "/":
        try:
            return datetime.strptime(text, "%d/%b/%Y:%H:%M:%S %z")
        except ValueError:
            return None
    if text[:1].isalpha():
        try:
            return parsedate_to_datetime(text)
        except (ValueError, TypeError, IndexError):
            return None
    return None


def _from_epoch(number: float) -> datetime:
    """The UTC time of a Unix epoch in s, ms, µs or ns (by magnitude); raises when out of range.

    Integers are converted exactly (positional `timedelta` arguments are the fast ones).
    """
    magnitude = abs(number)
    if number.__class__ is int:
        if magnitude < _MILLISECONDS_FROM:
            return _EPOCH + timedelta(0, number)
        if magnitude < _MICROSECONDS_FROM:
            return _EPOCH + timedelta(0, 0, number * 1000)
        if magnitude < _NANOSECONDS_FROM:
            return _EPOCH + timedelta(0, 0, number)
        return _EPOCH + timedelta(0, 0, int(number) // 1000)
    if magnitude < _MILLISECONDS_FROM:
        return _EPOCH + timedelta(0, number)
    if magnitude < _MICROSECONDS_FROM:
        return _EPOCH + timedelta(0, 0, number * 1000)
    if magnitude < _NANOSECONDS_FROM:
        return _EPOCH + timedelta(0, 0, number)
    return _EPOCH + timedelta(0, 0, number // 1000)


def _as_utc(moment: datetime) -> datetime:
    zone = moment.tzinfo
    if zone is UTC:
        return moment
    if zone is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
