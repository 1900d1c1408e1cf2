"""The Litestar app factory shared by the ingest (:8080) and API (:8081) servers."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal

import msgspec
from litestar import Litestar, Response, get
from litestar.di import Provide
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

from mintlog import __version__
from mintlog.errors import BadRequest, MintlogError, RequestTimeout
from mintlog.http.openapi import documented, openapi_config
from mintlog.http.problems import exception_handlers  # pyright: ignore[reportUnknownVariableType]
from mintlog.http.ratelimit import rate_limit_headers
from mintlog.logs import request_id_var
from mintlog.metrics import Metrics

__all__ = ["BodyReadGuard", "Health", "Readiness", "ReadinessCheck", "RequestContextMiddleware", "create_app"]

ReadinessCheck = Callable[[], Awaitable[None]]
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_encoder = msgspec.json.Encoder()


class Health(msgspec.Struct, frozen=True, kw_only=True):
    """`/healthz`: the process serves HTTP."""

    status: Literal["ok"]
    version: str


class Readiness(msgspec.Struct, frozen=True, kw_only=True):
    """`/readyz`: `ready` when every dependency answered; `checks` says `ok`, `timeout` or `unavailable: …` for
    each (bus, store, database, blobs, …)."""

    status: Literal["ready", "not_ready"]
    checks: dict[str, str]


class RequestContextMiddleware:
    """Gives every request an id (the caller's `X-Request-ID` when sane), echoes it on the response, puts it
    in every log line of the request, and counts the request in the metrics."""

    def __init__(self, app: ASGIApp, *, server: str, metrics: Metrics) -> None:
        self._app = app
        self._server = server
        self._requests = metrics.http_requests
        self._latency = metrics.http_request_seconds.labels(server)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        request_id = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _VALID_REQUEST_ID.match(candidate):
                    request_id = candidate
                break
        request_id = request_id or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        header = (b"x-request-id", request_id.encode())
        status = 500
        started = time.perf_counter()
        answered: float | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status = message["status"]
                answered = time.perf_counter()
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self._app(scope, receive, send_with_id)
        finally:
            # Latency runs to the response's start, so a live tail counts the time to open its stream, not
            # the minutes it stays open (which would swamp the histogram's upper buckets).
            self._latency.observe((answered or time.perf_counter()) - started)
            self._requests.labels(self._server, str(status)).inc()
            request_id_var.reset(token)


class BodyReadGuard:
    """Bounds the time a request body may take and refuses a body that ends before it is complete.

    Reading the body (the ASGI `receive` of an HTTP request, until the message without `more_body`) raises:

    - `RequestTimeout` (408 `body_timeout`) when no part of the body arrives within `idle_timeout_seconds` of
      the previous one (or of the headers), or the whole body has not arrived within `total_timeout_seconds`
      of the headers. Granian has no body timeout: without this, a request that announces more bytes than it
      sends holds its connection and its handler forever. The connection is closed after the answer;
    - `BadRequest` (400 `incomplete_body`) when the server reports a disconnect before the end of the body:
      the client closed the connection mid-body, or sent a malformed chunked body (a bad chunk size), which
      Granian reports the same way. The answer reaches the client if it still reads.

    Once the body is complete, `receive` is passed through with no deadline: a streaming response (a live
    tail) waits on it for the client's disconnect.
    """

    def __init__(self, app: ASGIApp, *, idle_timeout_seconds: float, total_timeout_seconds: float) -> None:
        self._app = app
        self._idle_timeout = idle_timeout_seconds
        self._total_timeout = total_timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        idle_timeout, total_timeout = self._idle_timeout, self._total_timeout
        body_deadline = loop.time() + total_timeout
        body_complete = False

        async def guarded_receive() -> ReceiveMessage:
            nonlocal body_complete
            if body_complete:
                return await receive()
            part_deadline = loop.time() + idle_timeout
            try:
                async with asyncio.timeout_at(min(part_deadline, body_deadline)):
                    message = await receive()
            except TimeoutError:
                if part_deadline < body_deadline:
                    detail = f"no part of the request body arrived for {idle_timeout:g} s"
                else:
                    detail = f"the request body did not arrive within {total_timeout:g} s"
                raise RequestTimeout(f"{detail}; the connection is closed") from None
            if message["type"] == "http.disconnect":
                raise BadRequest(
                    "the request body ended before it was complete (connection closed mid-body, or malformed "
                    "chunked encoding)",
                    code="incomplete_body",
                )
            if not message.get("more_body", False):
                body_complete = True
            return message

        await self._app(scope, guarded_receive, send)


def _health_handlers(metrics: Metrics, checks: dict[str, ReadinessCheck]) -> list[Any]:
    @get("/healthz", summary="Liveness: the process serves HTTP.", include_in_schema=True, sync_to_thread=False)
    def healthz() -> Health:
        return Health(status="ok", version=__version__)

    @get(
        "/readyz",
        summary="Readiness: the bus, the log store and the database answer.",
        description="503 (with the same body) while any of them does not.",
        opt=documented(answer=Readiness, answers={503: Readiness}),
    )
    async def readyz() -> Response[bytes]:
        async def run(check: ReadinessCheck) -> str:
            try:
                await asyncio.wait_for(check(), timeout=2.0)
            except TimeoutError:
                return "timeout"
            except MintlogError as exc:
                return f"unavailable: {exc}"
            return "ok"

        names = list(checks)
        results = await asyncio.gather(*(run(checks[name]) for name in names))
        report = dict(zip(names, results, strict=True))
        ready = all(result == "ok" for result in results)
        body = Readiness(status="ready" if ready else "not_ready", checks=report)
        return Response(_encoder.encode(body), status_code=200 if ready else 503, media_type="application/json")

    @get(
        "/metrics",
        summary="Prometheus metrics.",
        media_type="text/plain; version=0.0.4",
        opt=documented(answer=str),
    )
    async def metrics_endpoint() -> bytes:
        return await metrics.render_all()

    return [healthz, readyz, metrics_endpoint]


def create_app(
    *,
    server: str,
    route_handlers: Sequence[Any],
    metrics: Metrics,
    readiness_checks: dict[str, ReadinessCheck],
    dependencies: Mapping[str, Provide] | None = None,
    opt: Mapping[str, Any] | None = None,
) -> ASGIApp:
    """A Litestar app with problem+json errors, `/healthz`, `/readyz`, `/metrics`, its complete OpenAPI
    document at `/schema/openapi.json` and a page to read it offline at `/schema` (`mintlog.http.openapi`),
    wrapped so that every request, routed or not (404, 405), gets a request id and is counted. Responses to
    rate-limited requests carry the key's `RateLimit-*` headers.

    `dependencies` are what handlers may ask for by name; `opt` is merged into every route's (e.g. the
    `Admission` of `ScopeGuard`s made without one)."""
    app = Litestar(
        route_handlers=[*_health_handlers(metrics, readiness_checks), *route_handlers],
        dependencies=dict(dependencies or {}),
        opt=dict(opt or {}),
        exception_handlers=exception_handlers,
        openapi_config=openapi_config(title=f"Mintlog {server} API", version=__version__),
        request_max_body_size=None,
        before_send=[rate_limit_headers],
        debug=False,
        logging_config=None,
    )
    return RequestContextMiddleware(app, server=server, metrics=metrics)
