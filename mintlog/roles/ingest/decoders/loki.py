"""Loki's push body (`POST /loki/api/v1/push`), source `loki`: JSON, or snappy-compressed protobuf.

Formats (chosen by `Content-Type`, as Loki does):

- `application/json`: `{"streams": [{"stream": {"label": "value", ...}, "values": [["<ns>", "<line>"],
  ["<ns>", "<line>", {"name": "value", ...}], ...]}]}`, the timestamp a string of Unix nanoseconds, the
  optional third member the entry's structured metadata.
- `application/x-protobuf` (also `application/protobuf`, or no `Content-Type`, which Loki reads as
  protobuf): a raw (unframed) snappy block holding a `logproto.PushRequest`
  (`mintlog.roles.ingest.decoders.loki_proto`): streams with `labels` as a Prometheus label string
  (`{job="api", level="error"}`), entries with a timestamp, a line and structured metadata.

Every entry becomes one event, in request order (streams in order, then their entries):

- `message`: the line (the pipeline finds a level or a time written in it, as for native events);
- `timestamp`: the entry's time, to the microsecond (an entry without one gets its receive time);
- `fields`: every stream label, then the entry's structured metadata (which wins on a name clash), under
  their own names; `trace_id` and `span_id` in structured metadata (or labels) become the event's
  `trace_id`/`span_id` instead of fields;
- `service`: the first non-empty of `service_name`, `service`, `job`, `app` (labels and metadata together);
  `host`: of `host`, `hostname`, `instance`, `node`; `level`: of `level`, `detected_level`, `severity`,
  `lvl` (the pipeline reads any level name, `mintlog.parsing.levels`). The name that gave an attribute is
  not repeated in `fields`; the others of its list are (`job` stays a field when `service_name` is the service).

A body that cannot be read at all is refused whole with 400 and nothing is stored, as Loki does:
`empty_body`, `malformed_json` (not JSON or not UTF-8), `wrong_shape` (JSON that is not a push: a value that
is not `[timestamp, line]` or `[timestamp, line, {metadata}]`, a label or metadata value that is not a
string), `bad_timestamp` (not a string of decimal nanoseconds within 64 bits), `bad_snappy`,
`malformed_protobuf` (truncated, or a string that is not UTF-8), `missing_labels` (a stream without labels:
Loki's "at least one label pair is required per stream"), `bad_labels` (a label string Loki would not
parse); 413 `decompressed_body_too_large` when a snappy block says it holds more than the body limit.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import cramjam
import msgspec
from google.protobuf.message import DecodeError

from mintlog.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from mintlog.roles.ingest.decoders.loki_proto import PushRequest

__all__ = [
    "HOST_LABELS",
    "LEVEL_LABELS",
    "SERVICE_LABELS",
    "LokiDecoder",
    "LokiJsonStream",
    "LokiPushJson",
    "parse_labels",
]

SERVICE_LABELS = ("service_name", "service", "job", "app")
"""The labels that name the event's service, first non-empty wins."""
HOST_LABELS = ("host", "hostname", "instance", "node")
"""The labels that name the event's host, first non-empty wins."""
LEVEL_LABELS = ("level", "detected_level", "severity", "lvl")
"""The labels that name the event's level, first non-empty wins."""
_ID_NAMES = ("trace_id", "span_id")
_ATTRIBUTES = (
    ("service", SERVICE_LABELS),
    ("host", HOST_LABELS),
    ("level", LEVEL_LABELS),
    *((name, (name,)) for name in _ID_NAMES),
)
_STREAM_ATTRIBUTE_NAMES = frozenset((*SERVICE_LABELS, *HOST_LABELS, *LEVEL_LABELS))

_JSON_TYPES = ("application/json", "text/json")
_PROTOBUF_TYPES = ("application/x-protobuf", "application/protobuf")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Below this many nanoseconds an all-digit timestamp would be read as µs, ms or s by the pipeline
# (`mintlog.parsing.timestamps.from_epoch`): such entries get an RFC 3339 timestamp instead.
_NANOSECONDS_FROM = 10**17
_INT64_MAX = 2**63 - 1

_LABEL_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
_LABEL_PAIR = re.compile(rf'\s*({_LABEL_NAME})\s*=\s*(?:"((?:[^"\\]|\\.)*)"|`([^`]*)`)\s*(,|}})', re.DOTALL)
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)", re.DOTALL)
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


class LokiJsonStream(msgspec.Struct):
    """One stream of a JSON push: its labels and its entries."""

    stream: dict[str, str] = {}
    values: list[list[str | dict[str, str]]] = []
    """`["<Unix nanoseconds>", "<line>"]` or `["<Unix nanoseconds>", "<line>", {structured metadata}]`."""


class LokiPushJson(msgspec.Struct):
    """Loki's JSON push body (the protobuf body holds the same as a `logproto.PushRequest`)."""

    streams: list[LokiJsonStream] = []


_json_decoder = msgspec.json.Decoder(LokiPushJson)


def _unescape(match: re.Match[str]) -> str:
    escape = match.group(1)
    if escape[0] in "xuU":
        return chr(int(escape[1:], 16))
    if escape[0].isdigit():
        return chr(int(escape, 8))
    return _SIMPLE_ESCAPES.get(escape, escape)


@functools.lru_cache(maxsize=4096)
def parse_labels(text: str) -> tuple[tuple[str, str], ...]:
    """The pairs of a Prometheus label string (`{job="api", env="prod"}`), in order, with Go string escapes in
    double-quoted values resolved (backquoted values are raw). Raises `BadRequest`: `missing_labels` for `{}`
    or a blank string, `bad_labels` for anything else that is not a set of `name="value"` pairs with
    distinct names. Cached: a shipper sends the same few label strings over and over."""
    body = text.strip()
    if body in ("", "{}") or (body.startswith("{") and body.endswith("}") and not body[1:-1].strip()):
        raise BadRequest("error at least one label pair is required per stream", code="missing_labels")
    if not body.startswith("{"):
        raise _bad_labels(text, "it does not start with {")
    pairs: list[tuple[str, str]] = []
    position = 1
    while True:
        match = _LABEL_PAIR.match(body, position)
        if match is None:
            raise _bad_labels(text, f'expected name="value" at character {position + 1}')
        name, quoted, raw, end = match.groups()
        value = raw if quoted is None else _ESCAPE.sub(_unescape, quoted)
        if any(name == seen for seen, _ in pairs):
            raise _bad_labels(text, f"duplicate label name {name!r}")
        pairs.append((name, value))
        position = match.end()
        if end == "}":
            break
    if body[position:].strip():
        raise _bad_labels(text, f"unexpected text after }} at character {position + 1}")
    return tuple(pairs)


def _bad_labels(text: str, why: str) -> BadRequest:
    return BadRequest(f"error parsing labels {text[:200]!r}: {why}", code="bad_labels")


def _event_base(values: Mapping[str, str]) -> dict[str, Any]:
    """The event members that labels (and structured metadata) give: each attribute from the first of its names
    with a non-empty value (that name is then not repeated in `fields`), and every other pair as a field."""
    base: dict[str, Any] = {}
    fields = dict(values)
    for attribute, names in _ATTRIBUTES:
        for name in names:
            if values.get(name):
                base[attribute] = fields.pop(name)
                break
    base["fields"] = fields
    return base


def _entry_event(base: dict[str, Any], labels: Mapping[str, str], metadata: dict[str, str]) -> dict[str, Any]:
    """The event members of an entry with structured `metadata`, in a stream whose `labels` gave `base`."""
    if not _STREAM_ATTRIBUTE_NAMES.isdisjoint(metadata):
        return _event_base({**labels, **metadata})
    # The common case, cheaper: metadata holds fields and perhaps trace and span ids.
    fields = {**base["fields"], **metadata}
    event = {**base, "fields": fields}
    for name in _ID_NAMES:
        if fields.get(name):
            event[name] = fields.pop(name)
    return event


def _timestamp(nanoseconds: int) -> int | str:
    """The event `timestamp` of a time in Unix nanoseconds: the number itself when the pipeline reads it as
    nanoseconds, else its RFC 3339 form (to the microsecond)."""
    if nanoseconds >= _NANOSECONDS_FROM:
        return nanoseconds
    return (_EPOCH + timedelta(microseconds=nanoseconds // 1000)).isoformat()


def _json_timestamp(value: object) -> int | str:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        nanoseconds = int(value)
        if nanoseconds <= _INT64_MAX:
            return _timestamp(nanoseconds)
    raise BadRequest(f"entry timestamp {str(value)[:40]!r} is not a string of Unix nanoseconds", code="bad_timestamp")


class LokiDecoder:
    """Loki's push body, JSON or snappy protobuf (see the module). Stateless but for `max_decompressed_bytes`."""

    source = "loki"

    def __init__(self, *, max_decompressed_bytes: int) -> None:
        self.max_decompressed_bytes = max_decompressed_bytes
        """The most a snappy block may hold once decompressed (the ingest body limit)."""

    def check_content_type(self, content_type: str | None) -> None:
        """JSON (`application/json`, `text/json`, `*/*+json`) or protobuf (`application/x-protobuf`,
        `application/protobuf`, or none); anything else is 415."""
        media_type = _media_type(content_type)
        if media_type is None or media_type in _PROTOBUF_TYPES or _is_json(media_type):
            return
        raise UnsupportedMediaType(
            f"Content-Type {media_type!r} is not accepted; send application/json or application/x-protobuf",
            code="unsupported_content_type",
        )

    def decode(self, body: bytes, headers: Mapping[str, str]) -> list[Any]:
        """The events of every stream's entries, in request order (see the module)."""
        if not body.strip():
            raise BadRequest("body is empty; send a Loki push request", code="empty_body")
        media_type = _media_type(headers.get("content-type"))
        if media_type is not None and _is_json(media_type):
            return _json_events(body)
        return _protobuf_events(self._unsnappy(body))

    def _unsnappy(self, body: bytes) -> memoryview:
        try:
            declared = cramjam.snappy.decompress_raw_len(body)
        except cramjam.DecompressionError as exc:
            raise BadRequest(f"body is not a snappy block: {exc}", code="bad_snappy") from None
        if declared > self.max_decompressed_bytes:
            raise PayloadTooLarge(
                f"snappy body holds {declared} bytes; the limit is {self.max_decompressed_bytes}",
                code="decompressed_body_too_large",
            )
        try:
            return memoryview(cramjam.snappy.decompress_raw(body))
        except cramjam.DecompressionError as exc:
            raise BadRequest(f"body is not valid snappy data: {exc}", code="bad_snappy") from None


def _media_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None


def _is_json(media_type: str) -> bool:
    return media_type in _JSON_TYPES or media_type.endswith("+json")


def _json_events(body: bytes) -> list[Any]:
    try:
        push = _json_decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"body is not a Loki push: {exc}", code="wrong_shape") from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}", code="malformed_json") from None
    except UnicodeDecodeError as exc:
        raise BadRequest(f"body is not valid UTF-8: {exc.reason} at byte {exc.start}", code="malformed_json") from None
    events: list[Any] = []
    for stream_index, stream in enumerate(push.streams):
        if not stream.values:
            continue
        if not stream.stream:
            raise BadRequest("error at least one label pair is required per stream", code="missing_labels")
        base = _event_base(stream.stream)
        for entry_index, value in enumerate(stream.values):
            if not 2 <= len(value) <= 3 or not isinstance(line := value[1], str):
                raise BadRequest(
                    f"$.streams[{stream_index}].values[{entry_index}] is not [timestamp, line] or "
                    "[timestamp, line, {structured metadata}]",
                    code="wrong_shape",
                )
            timestamp = _json_timestamp(value[0])
            if len(value) == 3 and (metadata := value[2]):
                if not isinstance(metadata, dict):
                    raise BadRequest(
                        f"$.streams[{stream_index}].values[{entry_index}][2] is not an object of strings",
                        code="wrong_shape",
                    )
                events.append({**_entry_event(base, stream.stream, metadata), "message": line, "timestamp": timestamp})
            else:
                events.append({**base, "message": line, "timestamp": timestamp})
    return events


def _protobuf_events(body: memoryview) -> list[Any]:
    try:
        push = PushRequest.FromString(body)
    except DecodeError as exc:
        raise BadRequest(f"body is not a Loki push protobuf: {exc}", code="malformed_protobuf") from None
    events: list[Any] = []
    for stream in push.streams:
        if not stream.entries:
            continue
        labels = dict(parse_labels(stream.labels))
        base = _event_base(labels)
        for entry in stream.entries:
            metadata = entry.structuredMetadata
            event = _entry_event(base, labels, {pair.name: pair.value for pair in metadata}) if metadata else dict(base)
            event["message"] = entry.line
            if entry.HasField("timestamp"):
                stamp = entry.timestamp
                event["timestamp"] = _timestamp(stamp.seconds * 1_000_000_000 + stamp.nanos)
            events.append(event)
    return events
