"""OTLP/HTTP logs on the ingest port: `POST /v1/logs`, answered the way the OTLP/HTTP specification says.

Every answer is in the request's encoding (`application/x-protobuf` or `application/json`; JSON when the
request's type is neither), never `application/problem+json`:

- `200` with an `ExportLogsServiceResponse` once every accepted record is durable on the bus (the
  202-only-once-durable promise of `IngestService.accept`). When some records were refused and the others
  stored, `partial_success.rejected_log_records` counts the refused ones and `error_message` names the first
  of them by index (records counted in request order across resources and scopes) with the reason; the
  client must not retry them. A request without log records is a `200` too.
- Otherwise a `google.rpc.Status` (`code`, `message`): `400` (`INVALID_ARGUMENT`) for a body that cannot be
  read (truncated or malformed protobuf, invalid JSON or UTF-8, bad ids) or whose every record was refused
  (nothing stored); `401`, `403`, `408`, `413`, `415`; `429` and `503` with `Retry-After`, which OTLP
  exporters wait for and retry (a `503` may or may not have stored the batch; records are stored once per
  event id). An unexpected failure is a `500` with a Status too.

The mapping of resources, scopes and records to events is in `mintlog.roles.ingest.decoders.otlp`.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from google.rpc.status_pb2 import Status
from litestar import Request, Response, post
from litestar.params import HeaderParameter
from msgspec import UNSET, Meta, UnsetType
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

from mintlog.errors import ProblemError
from mintlog.http.guards import Guard
from mintlog.http.openapi import documented
from mintlog.roles.ingest.decoders.otlp import (
    JSON_MEDIA_TYPE,
    OTLP,
    PROTOBUF_MEDIA_TYPE,
    OtlpEncoding,
    otlp_encoding,
)
from mintlog.roles.ingest.protocol_errors import describe_rejections, protocol_error_handlers
from mintlog.roles.ingest.routes import IngestRequests
from mintlog.roles.ingest.service import IngestResult

__all__ = ["OTLP_LOGS_PATH", "OtlpExportLogsResponse", "OtlpStatus", "otlp_routes"]

OTLP_LOGS_PATH = "/v1/logs"
# google.rpc.Code of each HTTP status Mintlog answers on this route.
_RPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 408: 4, 413: 3, 415: 3, 429: 8, 503: 14}
_INTERNAL = 13
_result_decoder = msgspec.json.Decoder(IngestResult)
_json_encoder = msgspec.json.Encoder()


class OtlpPartialSuccess(msgspec.Struct, rename="camel", omit_defaults=True):
    """`ExportLogsPartialSuccess` in OTLP/JSON: how many records were refused, and why."""

    rejected_log_records: Annotated[
        str, Meta(pattern="^[0-9]+$", description="An int64, written as a decimal string (OTLP/JSON).")
    ] = "0"
    error_message: str = ""


class OtlpExportLogsResponse(msgspec.Struct, rename="camel", omit_defaults=True):
    """`ExportLogsServiceResponse` in OTLP/JSON: `{}` when every record was stored."""

    partial_success: OtlpPartialSuccess | UnsetType = UNSET


class OtlpStatus(msgspec.Struct):
    """`google.rpc.Status` in JSON: the body of every error of the OTLP route."""

    code: Annotated[int, Meta(description="The google.rpc.Code (3 INVALID_ARGUMENT, 14 UNAVAILABLE, ...).")]
    message: str


class OtlpRequestJson(msgspec.Struct, rename="camel"):
    """An `ExportLogsServiceRequest` in OTLP/JSON (lowerCamelCase keys, hex ids, 64-bit integers as strings);
    see the OpenTelemetry protocol specification for the whole message."""

    resource_logs: list[dict[str, Any]] = msgspec.field(default_factory=list[dict[str, Any]])


def _encoding_of(request: Request[Any, Any, Any]) -> OtlpEncoding:
    """The encoding to answer in: the request's, JSON when it is neither protobuf nor JSON."""
    return otlp_encoding(request.headers.get("content-type")) or "json"


def _media_type(encoding: OtlpEncoding) -> str:
    return PROTOBUF_MEDIA_TYPE if encoding == "protobuf" else JSON_MEDIA_TYPE


def _exported(encoding: OtlpEncoding, result: IngestResult | None) -> Response[bytes]:
    """The `200` answer: an `ExportLogsServiceResponse`, with a partial success when records were refused."""
    rejected = result.rejected if result is not None else 0
    message = ""
    if result is not None and rejected:
        message = (
            f"{rejected} of {result.accepted + rejected} log records were rejected and the other "
            f"{result.accepted} stored: {describe_rejections(result.errors, 'log record')}"
        )
    if encoding == "protobuf":
        answer = ExportLogsServiceResponse()
        if rejected:
            answer.partial_success.rejected_log_records = rejected
            answer.partial_success.error_message = message
        body = answer.SerializeToString()
    else:
        partial = OtlpPartialSuccess(str(rejected), message) if rejected else UNSET
        body = _json_encoder.encode(OtlpExportLogsResponse(partial))
    return Response(body, status_code=200, media_type=_media_type(encoding))


def _status(request: Request[Any, Any, Any], status: int, message: str, headers: dict[str, str]) -> Response[bytes]:
    """An error answer: a `google.rpc.Status` in the request's encoding."""
    encoding = _encoding_of(request)
    code = _RPC_CODES.get(status, _INTERNAL)
    if encoding == "protobuf":
        body = Status(code=code, message=message).SerializeToString()
    else:
        body = _json_encoder.encode(OtlpStatus(code=code, message=message))
    return Response(body, status_code=status, media_type=_media_type(encoding), headers=headers)


_OTLP_ERRORS = protocol_error_handlers(_status, item="log record", challenge='Bearer realm="mintlog"')


def otlp_routes(ingest_request: IngestRequests, *, requires: Any) -> list[Any]:
    """The route handler of OTLP/HTTP logs (`POST /v1/logs`), source `otlp`."""
    guard: Guard = requires("ingest:logs")

    @post(
        OTLP_LOGS_PATH,
        guards=[guard],
        status_code=200,
        exception_handlers=_OTLP_ERRORS,
        summary="Export logs over OTLP/HTTP (OpenTelemetry SDKs and the Collector's otlphttp exporter).",
        description=(
            "An OTLP `ExportLogsServiceRequest`, `application/x-protobuf` or `application/json` (OTLP/JSON: "
            "lowerCamelCase keys, hex trace and span ids), gzip allowed. Each log record becomes an event: "
            "`service.name` → service, `host.name` (else `k8s.pod.name`, `host.id`) → host, other resource "
            "attributes → fields `resource.*`, scope → `scope.*`, record attributes → fields, severity → level, "
            "time (else observed time) → timestamp, body → message. Answers 200 with an "
            "`ExportLogsServiceResponse` in the request's encoding once durable, with `partialSuccess` counting "
            "refused records. Errors are a `google.rpc.Status` in the request's encoding (never problem+json): "
            "400 for an unreadable body or when every record was refused; 413, 415; 429 and 503 with "
            "Retry-After."
        ),
        opt=documented(
            body=OtlpRequestJson,
            body_media_types=(PROTOBUF_MEDIA_TYPE, JSON_MEDIA_TYPE),
            answer=OtlpExportLogsResponse,
            answer_media_types=(PROTOBUF_MEDIA_TYPE, JSON_MEDIA_TYPE),
            error=OtlpStatus,
            error_media_types=(PROTOBUF_MEDIA_TYPE, JSON_MEDIA_TYPE),
            errors=(415,),
        ),
    )
    async def export_logs(
        request: Request[Any, Any, Any],
        idempotency_key: Annotated[str | None, HeaderParameter(name="Idempotency-Key", required=False)] = None,
    ) -> Response[bytes]:
        encoding = _encoding_of(request)
        try:
            answer, _replayed = await ingest_request(request, OTLP, idempotency_key)
        except ProblemError as exc:
            if exc.code == "empty_events":  # an export without log records is valid OTLP
                return _exported(encoding, None)
            raise
        return _exported(encoding, _result_decoder.decode(answer))

    return [export_logs]
