"""Answering every refusal of an ingest protocol's route in the protocol's own shape, written once.

A protocol's route (OTLP, Loki, ...) must never answer `application/problem+json`: its clients read only their
own error shape. `protocol_error_handlers` gives the route the Litestar exception handlers (its
`exception_handlers`) that turn each error Mintlog raises — on the route's guard (401, 403, 429), while
reading the body (408, 413, 415), decoding or accepting it (400, 422, 429, 503), or unexpectedly (500) — into
the protocol's answer, through one function the protocol writes: `answer(request, status, message, headers)`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException

from mintlog.errors import DependencyUnavailable, ProblemError
from mintlog.roles.ingest.service import IngestError

__all__ = ["ErrorAnswer", "describe_rejections", "protocol_error_handlers"]

logger = logging.getLogger(__name__)

_SHOWN_REJECTIONS = 10

ErrorAnswer = Callable[[Request[Any, Any, Any], int, str, dict[str, str]], Response[bytes]]
"""`(request, status, message, headers) -> response`: one error in the protocol's shape."""


def describe_rejections(errors: list[IngestError], item: str) -> str:
    """The first 10 refused items as `<item> <index>: <reason>`, joined by `; `, then how many more."""
    shown = "; ".join(f"{item} {error.index}: {error.reason}" for error in errors[:_SHOWN_REJECTIONS])
    more = len(errors) - _SHOWN_REJECTIONS
    return shown + (f"; and {more} more" if more > 0 else "")


def protocol_error_handlers(answer: ErrorAnswer, *, item: str, challenge: str) -> dict[int | type[Exception], Any]:
    """Exception handlers for a protocol's route, each answering through `answer`.

    A `ProblemError` keeps its status, except 422 (every item refused, a reused `Idempotency-Key`), which is
    400: the status protocols know for data that cannot be processed. Its refused items are named after the
    detail (`item` is what the protocol calls one, e.g. `log record`). A 401 carries `WWW-Authenticate:
    <challenge>`, a 408 `Connection: close`, a 429, a 503 `backlog_exceeded` and a 503 (`DependencyUnavailable`)
    `Retry-After`.
    `HTTPException`s keep their status, a body nested too deeply is 400, anything else 500 (logged).
    """

    def problem(request: Request[Any, Any, Any], exc: ProblemError) -> Response[bytes]:
        headers: dict[str, str] = {}
        if exc.status == 401:
            headers["WWW-Authenticate"] = challenge
        elif exc.status == 408:
            headers["Connection"] = "close"
        elif isinstance(retry_after := exc.extra.get("retry_after_seconds"), int):
            headers["Retry-After"] = str(retry_after)
        message = exc.detail
        errors = exc.extra.get("errors")
        if isinstance(errors, list) and errors:
            message = f"{message}: {describe_rejections(msgspec.convert(errors, list[IngestError]), item)}"
        return answer(request, 400 if exc.status == 422 else exc.status, message, headers)

    def unavailable(request: Request[Any, Any, Any], exc: DependencyUnavailable) -> Response[bytes]:
        logger.warning("dependency unavailable: %s", exc)
        return answer(request, 503, f"{exc}; retry later", {"Retry-After": str(exc.retry_after_seconds)})

    def http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
        return answer(request, exc.status_code, exc.detail or "error", dict(exc.headers or {}))

    def too_deep(request: Request[Any, Any, Any], _exc: RecursionError) -> Response[bytes]:
        return answer(request, 400, "the body nests values too deeply to be read", {})

    def unexpected(request: Request[Any, Any, Any], _exc: Exception) -> Response[bytes]:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return answer(request, 500, "an unexpected error occurred; it has been logged", {})

    return {
        ProblemError: problem,
        DependencyUnavailable: unavailable,
        HTTPException: http_exception,
        RecursionError: too_deep,
        Exception: unexpected,
    }
