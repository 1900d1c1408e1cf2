"""Ingest-side validation of log events, before anything is published to the bus.

Every event of a batch is checked on its own: a bad event is answered with its index and a reason, the
good ones go on (DESIGN.md §3, "bad input is answered, never dropped silently"). Validation never changes an
event; `mintlog.domain.normalize` turns an accepted event into a `LogEvent` later, in the pipeline.

Rules (the limits come from `IngestSettings`):

- An event is a JSON object.
- Known top-level keys, each with its aliases in priority order (`KEY_GROUPS`):

  ==============  ==================================================================  ====================
  attribute       keys, first wins                                                    type
  ==============  ==================================================================  ====================
  message         `message`, `msg`, `log`                                             string
  level           `level`, `severity`, `lvl`, `severity_number`, `severity_text`      string or integer
  timestamp       `timestamp`, `ts`, `time`, `@timestamp`                             string or number
  service         `service`, `service_name`                                           string
  host            `host`, `hostname`                                                  string
  trace_id        `trace_id`                                                          string
  span_id         `span_id`                                                           string
  fields          `fields`                                                            object
  ==============  ==================================================================  ====================

  A key whose value is `null` or `""` counts as absent. The canonical key (first column) with a value of
  another type rejects the event ("`level` must be a string or an integer"); an alias with a value of
  another type is not an alias but an ordinary extra key (so an ECS-style `"log": {"level": ...}` object
  is kept as fields, not refused). When several keys of one group are present, the first in priority
  order is the attribute and the others are extra keys.
- Every other top-level key (including `source`: the event's source always comes from the endpoint) is an
  extra key and is later moved into `fields`; extra keys obey the same limits as `fields`.
- `message`: at most `max_message_bytes` UTF-8 bytes. `level`, `timestamp` strings, `service`, `host`,
  `trace_id`, `span_id`: at most `MAX_ATTRIBUTE_CHARS` characters. Integers fit in 64 bits (MessagePack),
  at any depth: also inside objects and arrays that sit in arrays.
- `fields` (and extra keys): at most `max_fields_per_event` values, counting every scalar leaf after
  flattening and every element of an array of scalars, while an array that contains objects or arrays
  counts once (it is stored as one JSON string of at most `max_value_bytes` bytes); nesting of objects and
  arrays at most `max_field_depth` deep, where `fields.a` is depth 1 and `fields.a.b` depth 2; flattened
  dotted names non-empty and at most `max_key_length` characters; string values at most `max_value_bytes`
  UTF-8 bytes; values are JSON values only.
- No string anywhere (keys included) may hold a lone UTF-16 surrogate (JSON `"\\ud800"` decodes to a Python
  str that cannot be encoded as UTF-8 and would break MessagePack later).
- An event with no non-blank message and no field values is rejected: it carries nothing to search.
- For a tenant whose retention counts from event time, a valid event whose explicit timestamp is older than
  that retention already is rejected (`too_old`, see `mintlog.domain.retention.TimeWindow`).

Each rejection names the first problem found, in the order the event's keys were written.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import msgspec

from mintlog.settings import IngestSettings

__all__ = [
    "FIELDS_KEY",
    "HOST_KEYS",
    "KEY_GROUPS",
    "LEVEL_KEYS",
    "MAX_ATTRIBUTE_CHARS",
    "MESSAGE_KEYS",
    "SERVICE_KEYS",
    "SPAN_ID_KEYS",
    "TIMESTAMP_KEYS",
    "TOO_OLD",
    "TRACE_ID_KEYS",
    "EventTimeCheck",
    "Rejection",
    "ValidatedEvents",
    "check_event",
    "fits_in_64_bits",
    "validate_events",
]

MESSAGE_KEYS = ("message", "msg", "log")
LEVEL_KEYS = ("level", "severity", "lvl", "severity_number", "severity_text")
TIMESTAMP_KEYS = ("timestamp", "ts", "time", "@timestamp")
SERVICE_KEYS = ("service", "service_name")
HOST_KEYS = ("host", "hostname")
TRACE_ID_KEYS = ("trace_id",)
SPAN_ID_KEYS = ("span_id",)
FIELDS_KEY = "fields"

TOO_OLD = "older than this tenant's retention"
"""The words of a `too_old` refusal (`mintlog.domain.retention.TimeWindow`) that `reason_code` recognizes."""

# Longest `service`, `host`, `trace_id`, `span_id`, level string and timestamp string, in characters.
MAX_ATTRIBUTE_CHARS = 256

_INT_MIN = -(2**63)
_UINT_MAX = 2**64 - 1
_SHOWN_NAME_CHARS = 64


class EventTimeCheck(Protocol):
    """A tenant's check of event times at ingest (`mintlog.domain.retention.TimeWindow`)."""

    def refusal(self, event: dict[str, Any]) -> str | None:
        """Why the valid `event` is refused for its time, or None."""
        ...


class Rejection(msgspec.Struct, frozen=True):
    """One refused event of a batch: its index in the request and why it was refused."""

    index: int
    reason: str


class ValidatedEvents(NamedTuple):
    """The outcome of `validate_events`.

    `events[k]` is the `indexes[k]`-th event of the request (the lists are parallel and in request order);
    `rejections` holds every other index, in order, with its reason.
    """

    events: list[dict[str, Any]]
    indexes: list[int]
    rejections: list[Rejection]


class _Rejected(Exception):
    """Raised inside the checks; caught once per event and turned into a `Rejection`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# Group codes are bits so that repeated groups are found with one `&`; `_ALIAS` marks a non-canonical key.
_MESSAGE, _LEVEL, _TIMESTAMP, _SERVICE, _HOST, _TRACE_ID, _SPAN_ID, _FIELDS = (1 << bit for bit in range(8))
_ALIAS = 1 << 8
_GROUP_MASK = _ALIAS - 1

KEY_GROUPS: dict[str, tuple[str, ...]] = {
    "message": MESSAGE_KEYS,
    "level": LEVEL_KEYS,
    "timestamp": TIMESTAMP_KEYS,
    "service": SERVICE_KEYS,
    "host": HOST_KEYS,
    "trace_id": TRACE_ID_KEYS,
    "span_id": SPAN_ID_KEYS,
    "fields": (FIELDS_KEY,),
}
"""Each event attribute and the top-level keys that may carry it, in priority order."""

_GROUP_CODES = {
    "message": _MESSAGE,
    "level": _LEVEL,
    "timestamp": _TIMESTAMP,
    "service": _SERVICE,
    "host": _HOST,
    "trace_id": _TRACE_ID,
    "span_id": _SPAN_ID,
    "fields": _FIELDS,
}
_KEY_CODES: dict[str, int] = {
    key: code | (_ALIAS if rank else 0)
    for attribute, code in _GROUP_CODES.items()
    for rank, key in enumerate(KEY_GROUPS[attribute])
}
_GROUP_TYPES: dict[int, tuple[type, ...]] = {
    _MESSAGE: (str,),
    _LEVEL: (str, int),
    _TIMESTAMP: (str, int, float),
    _SERVICE: (str,),
    _HOST: (str,),
    _TRACE_ID: (str,),
    _SPAN_ID: (str,),
    _FIELDS: (dict,),
}
_ATTRIBUTE_NAMES = {code: attribute for attribute, code in _GROUP_CODES.items()}
_TYPE_ERRORS = {
    _MESSAGE: "`message` must be a string",
    _LEVEL: "`level` must be a string or an integer",
    _TIMESTAMP: "`timestamp` must be a string or a number",
    _SERVICE: "`service` must be a string",
    _HOST: "`host` must be a string",
    _TRACE_ID: "`trace_id` must be a string",
    _SPAN_ID: "`span_id` must be a string",
    _FIELDS: "`fields` must be an object",
}


def validate_events(
    events: list[object], limits: IngestSettings, window: EventTimeCheck | None = None
) -> ValidatedEvents:
    """Split decoded ingest events into accepted ones and rejections, keeping request order.

    Accepted events are returned unchanged (the same objects) with their request indexes in a parallel
    list, which costs one list append per event and lets the caller build `RawBatch.events` without
    unpacking pairs. With a `window` (the tenant's retention counts from event time), a valid event whose
    timestamp is older than the window is refused as well (`window.refusal`, code `too_old`). Never raises
    for any decoded JSON input.
    """
    accepted: list[dict[str, Any]] = []
    indexes: list[int] = []
    rejections: list[Rejection] = []
    event: Any
    for index, event in enumerate(events):
        try:
            _check_event(event, limits, True)
        except _Rejected as rejected:
            rejections.append(Rejection(index, rejected.reason))
            continue
        if window is not None:
            too_old = window.refusal(event)
            if too_old is not None:
                rejections.append(Rejection(index, too_old))
                continue
        accepted.append(event)
        indexes.append(index)
    return ValidatedEvents(accepted, indexes, rejections)


def check_event(event: object, limits: IngestSettings, *, require_content: bool = True) -> tuple[str | None, int]:
    """Check one event; return `(reason, 0)` when it is refused, else `(None, number of field values)`.

    With `require_content=False` an event without message and fields passes (used for objects lifted out
    of a message, which only have to respect the limits).
    """
    try:
        return None, _check_event(event, limits, require_content)
    except _Rejected as rejected:
        return rejected.reason, 0


def fits_in_64_bits(number: int) -> bool:
    """Whether ingest accepts the integer `number` (-2**63 .. 2**64 - 1, what MessagePack carries): no stored
    event holds any other."""
    return _INT_MIN <= number <= _UINT_MAX


def _check_event(event: Any, limits: IngestSettings, require_content: bool) -> int:
    """Return the number of field values of a valid event; raise `_Rejected` otherwise."""
    if event.__class__ is not dict:
        raise _Rejected("event is not a JSON object")
    members: dict[Any, Any] = event
    field_values = 0
    has_message = False
    groups_seen = 0
    repeated_group = False
    max_name_chars = limits.max_key_length
    max_value_bytes = limits.max_value_bytes
    for key, value in members.items():
        code = _KEY_CODES.get(key)
        if code is None:
            # An extra key becomes a field: short ASCII names with scalar values are checked inline.
            if key.__class__ is str and 0 < len(key) <= max_name_chars and key.isascii():
                value_type: type[Any] = value.__class__
                if value_type is str:
                    if len(value) <= max_value_bytes and value.isascii():
                        field_values += 1
                        continue
                elif value_type is int:
                    if _INT_MIN <= value <= _UINT_MAX:
                        field_values += 1
                        continue
                elif value_type is float or value_type is bool or value is None:
                    field_values += 1
                    continue
            field_values += _check_member("", key, value, 1, limits)
            continue
        if value is None or value == "":
            continue
        group = code & _GROUP_MASK
        value_type = value.__class__
        if value_type not in _GROUP_TYPES[group]:
            if code & _ALIAS:
                field_values += _check_member("", key, value, 1, limits)
                continue
            raise _Rejected(_TYPE_ERRORS[group])
        if groups_seen & group:
            repeated_group = True
        groups_seen |= group
        if group == _MESSAGE:
            if len(value) > limits.max_message_bytes or not value.isascii():
                _check_string_bytes(value, limits.max_message_bytes, "`message`")
            if not has_message and not value.isspace():
                has_message = True
        elif group == _FIELDS:
            field_values += _check_object(value, "", 1, limits)
        elif value_type is str:
            if len(value) > MAX_ATTRIBUTE_CHARS:
                raise _Rejected(f"`{_ATTRIBUTE_NAMES[group]}` is longer than {MAX_ATTRIBUTE_CHARS} characters")
            if not value.isascii():
                _check_surrogates(value, f"`{_ATTRIBUTE_NAMES[group]}`")
        elif value_type is int and not _INT_MIN <= value <= _UINT_MAX:
            raise _Rejected(f"`{_ATTRIBUTE_NAMES[group]}` is an integer outside the 64-bit range")
    if repeated_group:
        field_values += _check_shadowed_keys(members, limits)
    if field_values > limits.max_fields_per_event:
        raise _Rejected(f"`fields` has {field_values} values, limit {limits.max_fields_per_event}")
    if require_content and not has_message and not field_values:
        raise _Rejected("event has no `message` and no `fields`")
    return field_values


def _check_shadowed_keys(event: dict[Any, Any], limits: IngestSettings) -> int:
    """Check, as extra keys, the keys shadowed by a higher-priority key of the same group."""
    field_values = 0
    for attribute, keys in KEY_GROUPS.items():
        types = _GROUP_TYPES[_GROUP_CODES[attribute]]
        winner_found = False
        for key in keys:
            value = event.get(key)
            if value is None or value == "" or type(value) not in types:
                continue
            if winner_found:
                field_values += _check_member("", key, value, 1, limits)
            winner_found = True
    return field_values


def _check_object(obj: dict[Any, Any], prefix: str, depth: int, limits: IngestSettings) -> int:
    """Check the members of an object inside `fields` whose members sit at `depth`; count its values.

    Short ASCII names with scalar values, by far the most common members, are checked inline.
    """
    field_values = 0
    max_name_chars = limits.max_key_length - len(prefix)
    max_value_bytes = limits.max_value_bytes
    for key, value in obj.items():
        if type(key) is str and 0 < len(key) <= max_name_chars and key.isascii():
            value_type: type[Any] = value.__class__
            if value_type is str:
                if len(value) <= max_value_bytes and value.isascii():
                    field_values += 1
                    continue
            elif value_type is int:
                if _INT_MIN <= value <= _UINT_MAX:
                    field_values += 1
                    continue
            elif value_type is float or value_type is bool or value is None:
                field_values += 1
                continue
        field_values += _check_member(prefix, key, value, depth, limits)
    return field_values


def _check_member(prefix: str, key: Any, value: Any, depth: int, limits: IngestSettings) -> int:
    """Check one member named `prefix + key` at `depth`; return how many field values it holds."""
    if type(key) is not str:
        raise _Rejected(f"field names must be strings, got {type(key).__name__} under `{_shown(prefix)}`")
    name: str = prefix + key
    if not key:
        raise _Rejected(f"empty field name under `{_shown(prefix)}`" if prefix else "empty field name")
    if len(name) > limits.max_key_length:
        raise _Rejected(f"field name longer than {limits.max_key_length} characters: `{_shown(name)}`")
    if not key.isascii():
        _check_surrogates(key, f"field name `{_shown(name)}`")
    value_type: type[Any] = value.__class__
    if value_type is str:
        if len(value) > limits.max_value_bytes or not value.isascii():
            _check_string_bytes(value, limits.max_value_bytes, f"field `{_shown(name)}`")
        return 1
    if value_type is int:
        if not _INT_MIN <= value <= _UINT_MAX:
            raise _Rejected(f"field `{_shown(name)}` is an integer outside the 64-bit range")
        return 1
    if value_type is float or value_type is bool or value is None:
        return 1
    if value_type is dict or value_type is list:
        if depth >= limits.max_field_depth:
            raise _Rejected(f"`fields` nests deeper than {limits.max_field_depth}")
        if value_type is dict:
            return _check_object(value, name + ".", depth + 1, limits)
        return _check_array(name, value, depth + 1, limits)
    raise _Rejected(f"field `{_shown(name)}` has an unsupported type ({value_type.__name__})")


def _check_array(name: str, items: list[Any], depth: int, limits: IngestSettings) -> int:
    """Check an array whose elements sit at `depth`; count its values (1 if it holds containers)."""
    field_values = 0
    holds_containers = False
    for item in items:
        item_type: type[Any] = item.__class__
        if item_type is str:
            if len(item) > limits.max_value_bytes or not item.isascii():
                _check_string_bytes(item, limits.max_value_bytes, f"field `{_shown(name)}`")
            field_values += 1
        elif item_type is int:
            if not _INT_MIN <= item <= _UINT_MAX:
                raise _Rejected(f"field `{_shown(name)}` holds an integer outside the 64-bit range")
            field_values += 1
        elif item_type is float or item_type is bool or item is None:
            field_values += 1
        elif item_type is dict or item_type is list:
            holds_containers = True
        else:
            raise _Rejected(f"field `{_shown(name)}` holds an unsupported type ({item_type.__name__})")
    if not holds_containers:
        return field_values
    _check_nested(items, limits.max_field_depth - depth + 1, name, limits)
    try:
        encoded = msgspec.json.encode(items)
    except UnicodeEncodeError:
        raise _Rejected(f"field `{_shown(name)}`: string is not valid UTF-8 (lone surrogate)") from None
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError):
        raise _Rejected(f"field `{_shown(name)}` holds a value that is not JSON") from None
    if len(encoded) > limits.max_value_bytes:
        raise _Rejected(
            f"field `{_shown(name)}` exceeds {limits.max_value_bytes} bytes"
            " (an array that holds objects or arrays is stored as one JSON string)"
        )
    return 1


def _check_nested(container: Any, levels_left: int, name: str, limits: IngestSettings) -> None:
    """Reject the array `name` when `container` (one of its containers, or itself) holds more than `levels_left`
    levels of objects and arrays, itself included, or an integer outside the 64-bit range at any depth (the
    array is stored as one JSON string, but the raw event crosses the bus as MessagePack first)."""
    if levels_left <= 0:
        raise _Rejected(f"`fields` nests deeper than {limits.max_field_depth}")
    members: Any = container.values() if container.__class__ is dict else container
    for member in members:
        member_type: type[Any] = member.__class__
        if member_type is int:
            if not _INT_MIN <= member <= _UINT_MAX:
                raise _Rejected(f"field `{_shown(name)}` holds an integer outside the 64-bit range")
        elif member_type is dict or member_type is list:
            _check_nested(member, levels_left - 1, name, limits)


def _check_string_bytes(text: str, limit: int, where: str) -> None:
    """Reject `text` if it holds a lone surrogate or is longer than `limit` UTF-8 bytes."""
    if text.isascii():
        size = len(text)
    else:
        try:
            size = len(text.encode())
        except UnicodeEncodeError:
            raise _Rejected(f"{where}: string is not valid UTF-8 (lone surrogate)") from None
    if size > limit:
        raise _Rejected(f"{where} exceeds {limit} bytes")


def _check_surrogates(text: str, where: str) -> None:
    try:
        text.encode()
    except UnicodeEncodeError:
        raise _Rejected(f"{where}: string is not valid UTF-8 (lone surrogate)") from None


def _shown(name: str) -> str:
    """A field name short enough to quote in a reason."""
    return name if len(name) <= _SHOWN_NAME_CHARS else name[:_SHOWN_NAME_CHARS] + "…"


_REASON_CODES: tuple[tuple[str, str], ...] = (
    (TOO_OLD, "too_old"),
    ("not a JSON object", "not_an_object"),
    ("lone surrogate", "invalid_utf8"),
    ("64-bit range", "integer_out_of_range"),
    ("nests deeper", "too_deep"),
    ("no `message` and no `fields`", "empty_event"),
    ("values, limit", "too_many_fields"),
    ("longer than", "too_long"),
    ("exceeds", "too_long"),
    ("must be", "wrong_type"),
    ("unsupported type", "wrong_type"),
    ("field name", "bad_field_name"),
)


def reason_code(reason: str) -> str:
    """A short, stable code for a rejection reason, for metric labels (reasons themselves carry numbers)."""
    for fragment, code in _REASON_CODES:
        if fragment in reason:
            return code
    return "invalid"
