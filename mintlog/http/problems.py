"""RFC 9457 problem+json responses, and the one mapping from errors to them."""

from __future__ import annotations

import logging
import sys
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.types import ExceptionHandlersMap

from mintlog.errors import DependencyUnavailable, ProblemError
from mintlog.logs import request_id_var

__all__ = ["PROBLEM_MEDIA_TYPE", "exception_handlers", "problem_response"]

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
_encoder = msgspec.json.Encoder()

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    408: "Request timeout",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable entity",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    title: str | None = None,
    extra: dict[str, object] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[bytes]:
    """A problem+json response with `type`, `title`, `status`, `detail`, `code` and `request_id`."""
    body: dict[str, object] = {
        "type": f"https://mintlog.dev/problems/{code.replace('_', '-')}",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": request_id_var.get(),
    }
    if extra:
        body.update(extra)
    return Response(content=_encoder.encode(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _problem_error(_request: Request[Any, Any, Any], exc: ProblemError) -> Response[bytes]:
    headers: dict[str, str] | None = None
    if exc.status == 401:
        headers = {"WWW-Authenticate": 'ApiKey header="X-API-Key"'}
    elif exc.status == 408:
        # The rest of the body may still be on its way: the connection cannot carry another request.
        headers = {"Connection": "close"}
    elif isinstance(retry_after := exc.extra.get("retry_after_seconds"), int):
        # A 429 or 503 names its wait in the body (`retry_after_seconds`) and in the standard header.
        headers = {"Retry-After": str(retry_after)}
    return problem_response(exc.status, exc.code, exc.detail, title=exc.title, extra=exc.extra, headers=headers)


def _unavailable(_request: Request[Any, Any, Any], exc: DependencyUnavailable) -> Response[bytes]:
    logger.warning("dependency unavailable: %s", exc)
    return problem_response(
        503,
        "service_unavailable",
        f"{exc} — retry later",
        headers={"Retry-After": str(exc.retry_after_seconds)},
    )


def _http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    status = exc.status_code
    code = {
        400: "bad_request",
        404: "not_found",
        405: "method_not_allowed",
        413: "payload_too_large",
        415: "unsupported_media_type",
    }.get(status, "http_error")
    detail = exc.detail or _TITLES.get(status, "error")
    allowed = (exc.headers or {}).get("allow")  # as Litestar's router names it
    if status == 405 and allowed:
        detail = f"{request.method} is not allowed on {request.url.path}; it answers {allowed}"
    extra: dict[str, object] | None = None
    if exc.extra:
        extra = {"errors": exc.extra}
    return problem_response(status, code, detail, extra=extra, headers=exc.headers)


def _too_deep(request: Request[Any, Any, Any], exc: RecursionError) -> Response[bytes]:
    # The JSON decoder recurses once per nested array or object and stops at the interpreter's recursion
    # limit; nothing else on a request's path recurses without a bound. Logged in case that ever changes.
    logger.warning("request too deeply nested on %s %s: %s", request.method, request.url.path, exc)
    return problem_response(
        400,
        "too_deep",
        "the body nests arrays and objects too deeply to be read (the limit is below "
        f"{sys.getrecursionlimit()} levels); send flatter JSON",
    )


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(500, "internal_error", "an unexpected error occurred; it has been logged")


exception_handlers: ExceptionHandlersMap = {  # pyright: ignore[reportUnknownVariableType]
    ProblemError: _problem_error,
    DependencyUnavailable: _unavailable,
    HTTPException: _http_exception,
    RecursionError: _too_deep,
    Exception: _unexpected,
}
