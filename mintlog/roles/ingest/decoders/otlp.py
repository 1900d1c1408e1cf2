"""OTLP/HTTP logs: `POST /v1/logs` with an `ExportLogsServiceRequest`, as protobuf or OTLP/JSON, source `otlp`.

The body is parsed by the `opentelemetry-proto` classes: `application/x-protobuf` directly, `application/json`
(the OTLP/JSON encoding: lowerCamelCase or original field names, 64-bit integers as strings or numbers, enums
as integers or names, `traceId`/`spanId` as hex, unknown fields ignored) through protobuf's JSON mapping once
the hex ids are turned into the base64 that mapping expects. A body that cannot be parsed at all is refused
whole (400): truncated or malformed protobuf, a protobuf string that is not UTF-8 (proto3 requires it), JSON
that is not valid JSON or UTF-8, a JSON value of the wrong type, a trace or span id that is not hex.

Each log record becomes one event, in request order (resource, then scope, then record: the index a
rejection names counts records that way):

- `service` is the resource attribute `service.name`; `host` is `host.name`, else `k8s.pod.name`, else
  `host.id` (missing: the pipeline's defaults). The other resource attributes (`k8s.pod.name` and `host.id`
  included) go to fields as `resource.<name>`;
- the scope's name and version go to fields as `scope.name` and `scope.version`, its attributes as
  `scope.<name>`;
- the record's attributes go to fields under their own names (they win over a `resource.*`/`scope.*` name);
  `event_name`, when set, to `fields["event_name"]`;
- level: `severity_number` when set (1-4 trace, 5-8 debug, 9-12 info, 13-16 warn, 17-20 error, 21-24
  fatal), else `severity_text` read as a level name (`mintlog.parsing.levels`); with both, the text is kept
  in `fields["severity_text"]`. Normalized in the pipeline;
- timestamp: `time_unix_nano`, else `observed_time_unix_nano` (neither: the receive time). Stored to the
  microsecond; when the time has nanoseconds below that, the whole value is kept in
  `fields["time_unix_nano"]`;
- `trace_id` and `span_id`: lowercase hex, absent when empty or all zero;
- body: a string is the message; any other value is the message as compact JSON text (bytes as base64), so
  a map body is lifted into fields by the pipeline like any JSON message (`mintlog.domain.normalize`).

AnyValues become JSON values: arrays lists, key-value lists objects, bytes base64 strings, doubles that are
not finite the strings `NaN`, `Infinity`, `-Infinity`; an attribute with no value is left out.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from typing import Any, Literal, cast

import msgspec
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from mintlog.errors import BadRequest, UnsupportedMediaType

__all__ = [
    "JSON_MEDIA_TYPE",
    "OTLP",
    "PROTOBUF_MEDIA_TYPE",
    "OtlpDecoder",
    "OtlpEncoding",
    "otlp_encoding",
    "parse_request",
]

PROTOBUF_MEDIA_TYPE = "application/x-protobuf"
JSON_MEDIA_TYPE = "application/json"
OtlpEncoding = Literal["protobuf", "json"]

_SERVICE_ATTRIBUTE = "service.name"
_HOST_ATTRIBUTES = ("host.name", "k8s.pod.name", "host.id")
_RESOURCE_PREFIX = "resource."
_SCOPE_PREFIX = "scope."
_NANOS_PER_MICRO = 1000
_json_decoder = msgspec.json.Decoder()
_json_encoder = msgspec.json.Encoder()


def otlp_encoding(content_type: str | None) -> OtlpEncoding | None:
    """The OTLP encoding a `Content-Type` names: `protobuf`, `json`, or None for any other type (or none)."""
    if not content_type:
        return None
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == PROTOBUF_MEDIA_TYPE:
        return "protobuf"
    if media_type == JSON_MEDIA_TYPE:
        return "json"
    return None


def parse_request(body: bytes, encoding: OtlpEncoding) -> ExportLogsServiceRequest:
    """The `ExportLogsServiceRequest` of a whole, decompressed body; 400 with a `code` when it is not one
    (`malformed_protobuf`, `malformed_json`, `wrong_shape`, `bad_id`, `too_deep`)."""
    try:
        if encoding == "protobuf":
            try:
                return ExportLogsServiceRequest.FromString(body)
            except DecodeError as exc:
                raise BadRequest(
                    f"body is not a protobuf ExportLogsServiceRequest ({exc}): truncated, malformed, or a string "
                    "field that is not UTF-8",
                    code="malformed_protobuf",
                ) from None
        return _parse_json(body)
    except RecursionError:
        raise BadRequest("the body nests values too deeply to be read", code="too_deep") from None


def _parse_json(body: bytes) -> ExportLogsServiceRequest:
    try:
        document = _json_decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"body is not valid JSON (UTF-8): {exc}", code="malformed_json") from None
    if not isinstance(document, dict):
        raise BadRequest("body must be a JSON object (an OTLP/JSON ExportLogsServiceRequest)", code="wrong_shape")
    document = cast("dict[str, Any]", document)
    _hex_ids_to_base64(document)
    request = ExportLogsServiceRequest()
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise BadRequest(f"body is not an OTLP/JSON ExportLogsServiceRequest: {exc}", code="wrong_shape") from None
    return request


def _members(value: object, *names: str) -> list[Any]:
    """The list under the first of `names` (lowerCamelCase, then the proto name) that `value` has, if it is a
    list in an object; [] otherwise (the JSON mapping reports wrong types itself)."""
    if isinstance(value, dict):
        for name in names:
            found = value.get(name)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
            if isinstance(found, list):
                return found  # pyright: ignore[reportUnknownVariableType]
    return []


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    """OTLP/JSON sends `traceId`/`spanId` as hex, protobuf's JSON mapping reads bytes as base64: convert each
    in place. 400 `bad_id` for an id that is not a string of hex digits."""
    for resource_logs in _members(document, "resourceLogs", "resource_logs"):
        for scope_logs in _members(resource_logs, "scopeLogs", "scope_logs"):
            for record in _members(scope_logs, "logRecords", "log_records"):
                if not isinstance(record, dict):
                    continue
                for name in ("traceId", "trace_id", "spanId", "span_id"):
                    value = record.get(name)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
                    if value is None:
                        continue
                    try:
                        if not isinstance(value, str):
                            raise ValueError("not a string")
                        raw = bytes.fromhex(value)
                    except ValueError:
                        raise BadRequest(
                            f"{name} {value!r} is not a hex string (OTLP/JSON ids are hex, not base64)", code="bad_id"
                        ) from None
                    record[name] = base64.b64encode(raw).decode()


def _any_value(value: AnyValue) -> Any:
    """An AnyValue as a JSON value (see the module docstring); None when it holds nothing."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "double_value":
        number = value.double_value
        if math.isfinite(number):
            return number
        return "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values, "")
    if kind == "array_value":
        return [_any_value(item) for item in value.array_value.values]
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None


def _attributes(attributes: Any, prefix: str) -> dict[str, Any]:
    """Key-value pairs as a dict, each key behind `prefix`; pairs with no value are left out."""
    found: dict[str, Any] = {}
    pair: KeyValue
    for pair in attributes:
        value = pair.value
        if value.WhichOneof("value") == "string_value":  # most attributes: no second dispatch
            found[prefix + pair.key] = value.string_value
            continue
        converted = _any_value(value)
        if converted is not None:
            found[prefix + pair.key] = converted
    return found


def _take_text(attributes: dict[str, Any], name: str) -> str | None:
    """Remove and return the attribute `name` when it is a string; leave any other value where it is."""
    value = attributes.get(name)
    if not isinstance(value, str):
        return None
    del attributes[name]
    return value


def _hex_id(raw: bytes) -> str | None:
    """An id as lowercase hex; None when empty or all zero (OTLP's "no id")."""
    return raw.hex() if raw.strip(b"\x00") else None


def events_of(request: ExportLogsServiceRequest) -> list[dict[str, Any]]:
    """One event per log record of `request`, in request order (see the module docstring)."""
    events: list[dict[str, Any]] = []
    for resource_logs in request.resource_logs:
        resource = _attributes(resource_logs.resource.attributes, "")
        service = _take_text(resource, _SERVICE_ATTRIBUTE)
        host = _take_text(resource, _HOST_ATTRIBUTES[0])
        if host is None:
            host = next((value for name in _HOST_ATTRIBUTES[1:] if isinstance(value := resource.get(name), str)), None)
        resource_fields = {_RESOURCE_PREFIX + name: value for name, value in resource.items()}
        for scope_logs in resource_logs.scope_logs:
            scope = scope_logs.scope
            scope_fields = dict(resource_fields)
            if scope.name:
                scope_fields["scope.name"] = scope.name
            if scope.version:
                scope_fields["scope.version"] = scope.version
            scope_fields.update(_attributes(scope.attributes, _SCOPE_PREFIX))
            for record in scope_logs.log_records:
                fields = dict(scope_fields)
                fields.update(_attributes(record.attributes, ""))
                event: dict[str, Any] = {"fields": fields}
                if service is not None:
                    event["service"] = service
                if host is not None:
                    event["host"] = host
                if record.HasField("body"):
                    body = _any_value(record.body)
                    if body is not None:
                        event["message"] = body if isinstance(body, str) else _json_encoder.encode(body).decode()
                if record.severity_number:
                    event["severity_number"] = record.severity_number
                if record.severity_text:
                    event["severity_text"] = record.severity_text
                nanos = record.time_unix_nano or record.observed_time_unix_nano
                if nanos:
                    event["timestamp"] = nanos
                    if nanos % _NANOS_PER_MICRO:
                        fields["time_unix_nano"] = nanos
                trace_id = _hex_id(record.trace_id)
                if trace_id is not None:
                    event["trace_id"] = trace_id
                span_id = _hex_id(record.span_id)
                if span_id is not None:
                    event["span_id"] = span_id
                if record.event_name:
                    fields["event_name"] = record.event_name
                events.append(event)
    return events


def _unsupported(content_type: str | None) -> UnsupportedMediaType:
    return UnsupportedMediaType(
        f"Content-Type {content_type!r} is not accepted; send {PROTOBUF_MEDIA_TYPE} or {JSON_MEDIA_TYPE}",
        code="unsupported_content_type",
    )


class OtlpDecoder:
    """`ExportLogsServiceRequest` bodies, protobuf or OTLP/JSON by `Content-Type` (see the module docstring)."""

    source = "otlp"

    def check_content_type(self, content_type: str | None) -> None:
        """Accept `application/x-protobuf` and `application/json` (parameters ignored); anything else, or no
        type, is 415 `unsupported_content_type` (OTLP/HTTP clients always send one of the two)."""
        if otlp_encoding(content_type) is None:
            raise _unsupported(content_type)

    def decode(self, body: bytes, headers: Mapping[str, str]) -> list[Any]:
        """One event per log record, in request order; 400 for a body that is not a request at all."""
        content_type = headers.get("content-type")
        encoding = otlp_encoding(content_type)
        if encoding is None:
            raise _unsupported(content_type)
        return events_of(parse_request(body, encoding))


OTLP = OtlpDecoder()
"""The one OTLP decoder (stateless)."""
