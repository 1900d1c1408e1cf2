"""Loki's push API on the ingest port: `POST /loki/api/v1/push`, answered the way Loki answers.

Loki clients (Promtail, Grafana Alloy's `loki.write`, winston-loki, pino-loki, ...) read only the status and
log a plain-text body: `204` with an empty body when the push is stored, otherwise a `text/plain` message
with Loki's statuses, which decide whether they retry (they retry 429 and 5xx, never another 4xx).

- `204`: every entry is durable on the bus (the 202-only-once-durable promise of `IngestService.accept`).
  A push with no entries at all is a `204` too, as in Loki.
- `400` with the rejected entries (`entry 3: ...`) when some entries were refused and the others stored:
  Loki's own answer when a push holds invalid entries (its distributor stores the valid ones and answers
  400 with the last validation error). A client does not retry a 400, so nothing stored is sent twice, and
  the refusals are in the body the client logs and in `mintlog_ingest_events_rejected_total{reason}`.
- `400` for a body that cannot be read at all or whose every entry was refused (nothing stored), `401`,
  `403`, `408`, `413`, `415`, `429` (with `Retry-After`), `503` (with `Retry-After`; may or may not have been
  stored): each with the reason as a line of text, never `application/problem+json`.

The body's formats and the mapping of labels, entries and structured metadata are in
`mintlog.roles.ingest.decoders.loki`.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, post
from litestar.exceptions import HTTPException
from litestar.params import HeaderParameter
from litestar.types import ExceptionHandlersMap

from mintlog.errors import BadRequest, DependencyUnavailable, IngestBacklogged, ProblemError
from mintlog.http.guards import Guard
from mintlog.http.openapi import documented
from mintlog.roles.ingest.decoders.loki import LokiDecoder, LokiPushJson
from mintlog.roles.ingest.routes import IngestRequests
from mintlog.roles.ingest.service import IngestError, IngestResult

__all__ = ["LOKI_PUSH_PATH", "loki_routes"]

logger = logging.getLogger(__name__)

LOKI_PUSH_PATH = "/loki/api/v1/push"
_TEXT = "text/plain"  # Litestar adds "; charset=utf-8"
_SHOWN_REJECTIONS = 10
_result_decoder = msgspec.json.Decoder(IngestResult)


def _text(status: int, message: str, headers: dict[str, str] | None = None) -> Response[bytes]:
    """A Loki-style error: the message as one line of plain text (what Go's `http.Error` writes)."""
    return Response(
        f"{message}\n".encode(),
        status_code=status,
        media_type=_TEXT,
        headers={"X-Content-Type-Options": "nosniff", **(headers or {})},
    )


def _rejections(errors: list[IngestError]) -> str:
    shown = "; ".join(f"entry {error.index}: {error.reason}" for error in errors[:_SHOWN_REJECTIONS])
    more = len(errors) - _SHOWN_REJECTIONS
    return shown + (f"; and {more} more" if more > 0 else "")


def _problem(_request: Request[Any, Any, Any], exc: ProblemError) -> Response[bytes]:
    headers: dict[str, str] = {}
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="mintlog"'
    elif exc.status == 408:
        headers["Connection"] = "close"
    elif isinstance(retry_after := exc.extra.get("retry_after_seconds"), int):
        headers["Retry-After"] = str(retry_after)
    status = exc.status
    if isinstance(exc, IngestBacklogged):
        status = 429  # what Loki answers when it cannot take more (its clients retry it, with backoff)
    elif status == 422:
        status = 400  # Loki answers every refused body with 400; 422 means nothing to its clients
    message = exc.detail
    errors = exc.extra.get("errors")
    if isinstance(errors, list) and errors:
        rejected = msgspec.convert(errors, list[IngestError])
        message = f"{message}: {_rejections(rejected)}"
    return _text(status, message, headers)


def _unavailable(_request: Request[Any, Any, Any], exc: DependencyUnavailable) -> Response[bytes]:
    logger.warning("dependency unavailable: %s", exc)
    return _text(503, f"{exc}; retry later", {"Retry-After": str(exc.retry_after_seconds)})


def _http_exception(_request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    return _text(exc.status_code, exc.detail or "error", dict(exc.headers or {}))


def _too_deep(_request: Request[Any, Any, Any], _exc: RecursionError) -> Response[bytes]:
    return _text(400, "body nests arrays and objects too deeply to be read")


def _unexpected(request: Request[Any, Any, Any], _exc: Exception) -> Response[bytes]:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return _text(500, "an unexpected error occurred; it has been logged")


_LOKI_ERRORS: ExceptionHandlersMap = {  # pyright: ignore[reportUnknownVariableType]
    ProblemError: _problem,
    DependencyUnavailable: _unavailable,
    HTTPException: _http_exception,
    RecursionError: _too_deep,
    Exception: _unexpected,
}


def loki_routes(ingest_request: IngestRequests, *, requires: Any) -> list[Any]:
    """The route handler of Loki's push API (`POST /loki/api/v1/push`), source `loki`."""
    guard: Guard = requires("ingest:logs")
    decoder = LokiDecoder(max_decompressed_bytes=ingest_request.max_body_bytes)

    @post(
        LOKI_PUSH_PATH,
        guards=[guard],
        status_code=204,
        exception_handlers=_LOKI_ERRORS,
        summary="Push log entries the way Loki takes them (Promtail, Grafana Alloy, Loki client libraries).",
        description=(
            'Loki\'s push API: `application/json` (`{"streams": [{"stream": {labels}, "values": '
            '[["<ns>", "<line>", {metadata}?]]}]}`, gzip allowed) or `application/x-protobuf` (a snappy '
            "block holding Loki's `logproto.PushRequest`). Each entry becomes an event: the line is its message, "
            "labels and structured metadata its fields; service from `service_name`/`service`/`job`/`app`, host "
            "from `host`/`hostname`/`instance`/`node`, level from `level`/`detected_level`/`severity`/`lvl`. "
            "Answers 204 once durable. Errors are plain text with Loki's statuses (never problem+json): 400 for "
            "an unreadable body, or listing the refused entries while the others were stored; 413, 415, 429 and "
            "503 with Retry-After."
        ),
        opt=documented(
            body=LokiPushJson,
            body_media_types=("application/json", "application/x-protobuf"),
            error=str,
            error_media_types=(_TEXT,),
            errors=(415,),
        ),
    )
    async def loki_push(
        request: Request[Any, Any, Any],
        idempotency_key: Annotated[str | None, HeaderParameter(name="Idempotency-Key", required=False)] = None,
    ) -> None:
        try:
            answer, _replayed = await ingest_request(request, decoder, idempotency_key)
        except ProblemError as exc:
            if exc.code == "empty_events":  # a push without entries: Loki answers 204
                return
            raise
        result = _result_decoder.decode(answer)
        if result.rejected:
            raise BadRequest(
                f"{result.rejected} of {result.accepted + result.rejected} entries were rejected and the other "
                f"{result.accepted} stored: {_rejections(result.errors)}",
                code="entries_rejected",
            )

    return [loki_push]
