"""Heartbeat ping routes of the ingest role (:8080): `GET|POST|HEAD /ping/{token}` and `/ping/{token}/start`,
`/ping/{token}/fail`, `/ping/{token}/{exit status 0-255}`. No API key: the secret token is the credential.

Guarantees:
- a path that is not one of these, or a token that names no heartbeat monitor of an active tenant, is a 404
  problem (`ping_token_not_found`), the same for a malformed and an unknown token;
- at most `MINTLOG_UPTIME__PING_REQUESTS_PER_MINUTE` pings per token and minute (bursts of as many), counted
  before the token is looked up: more is a 429 `ping_rate_limited` with `Retry-After`;
- a body (any type, optional) of up to `MAX_PING_BODY_BYTES` (10 KiB) is kept, as UTF-8 text, in the ping's log
  event; a larger one is a 413;
- `200 OK` only once the ping is durable on the bus (`UPTIME_PINGS`, JetStream's ack); when it cannot be, a 503
  with `Retry-After`. A paused monitor's pings are answered 200 too (they change nothing).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response, route
from litestar.params import FromPath

from mintlog.domain.heartbeats import (
    MAX_PING_BODY_BYTES,
    HeartbeatPing,
    is_ping_token,
    new_ping_id,
    parse_ping_suffix,
)
from mintlog.domain.streams import encode_ping, pings_subject
from mintlog.domain.uptime_checks import HeartbeatCheck
from mintlog.errors import NotFound, TooManyRequests
from mintlog.http.openapi import documented
from mintlog.ports.bus import EventBus
from mintlog.ports.ratelimit import RateLimiter
from mintlog.ports.uptime import MonitorStore
from mintlog.roles.ingest.body import read_limited_body

__all__ = ["PingIntake", "ping_routes"]

_MAX_HEADER_CHARS = 300


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _unknown() -> NotFound:
    return NotFound("no heartbeat monitor has this ping URL", code="ping_token_not_found")


class PingIntake:
    """What a ping request does, without HTTP: check the route and the token, count it, read its body, look its
    monitor up and publish it (see the module docstring)."""

    def __init__(
        self,
        *,
        monitors: MonitorStore,
        bus: EventBus,
        limiter: RateLimiter,
        requests_per_minute: int,
        rate_limited: bool = True,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._monitors = monitors
        self._bus = bus
        self._limiter = limiter
        self._per_minute = requests_per_minute
        self._rate_limited = rate_limited
        self._clock = clock

    async def accept(
        self,
        token: str,
        suffix: str | None,
        *,
        body: AsyncIterator[bytes],
        content_length: str | None = None,
        content_encoding: str | None = None,
        method: str = "GET",
        user_agent: str | None = None,
        remote_addr: str | None = None,
    ) -> HeartbeatPing:
        """Publish the ping and return it once durable; raises the 404, 413, 429 or 503 it is answered with."""
        parsed = parse_ping_suffix(suffix)
        if parsed is None or not is_ping_token(token):
            raise _unknown()
        await self._count(token)
        received_at = self._clock()
        data = await read_limited_body(
            body, content_encoding=content_encoding, content_length=content_length, max_bytes=MAX_PING_BODY_BYTES
        )
        monitor = await self._monitors.find_by_ping_token(token)
        if monitor is None or not isinstance(monitor.spec.check, HeartbeatCheck):
            raise _unknown()
        kind, exit_status = parsed
        ping = HeartbeatPing(
            id=new_ping_id(),
            tenant_id=monitor.tenant_id,
            monitor_id=monitor.id,
            kind=kind,
            exit_status=exit_status,
            received_at=received_at,
            body=data.decode("utf-8", errors="replace"),
            method=method,
            user_agent=None if user_agent is None else user_agent[:_MAX_HEADER_CHARS],
            remote_addr=remote_addr,
        )
        await self._bus.publish(pings_subject(monitor.tenant_id), encode_ping(ping), msg_id=ping.id)
        return ping

    async def _count(self, token: str) -> None:
        if not self._rate_limited:
            return
        bucket = f"ping:{hashlib.sha256(token.encode()).hexdigest()[:32]}"
        decision = await self._limiter.acquire(
            bucket, rate_per_second=self._per_minute / 60.0, burst=float(self._per_minute)
        )
        if decision.allowed:
            return
        retry_after = max(1, math.ceil(decision.retry_after_seconds))
        raise TooManyRequests(
            f"this ping URL is limited to {self._per_minute} pings per minute; retry in {retry_after} s",
            code="ping_rate_limited",
            extra={"retry_after_seconds": retry_after},
        )


def ping_routes(intake: PingIntake) -> list[Any]:
    """The route handlers of the ping routes (no API key: the token is the credential)."""

    async def answer(request: Request[Any, Any, Any], token: str, suffix: str | None) -> Response[bytes]:
        await intake.accept(
            token,
            suffix,
            body=request.stream(),
            content_length=request.headers.get("content-length"),
            content_encoding=request.headers.get("content-encoding"),
            method=request.method,
            user_agent=request.headers.get("user-agent"),
            remote_addr=None if request.client is None else request.client.host,
        )
        content = b"" if request.method == "HEAD" else b"OK\n"
        return Response(content, status_code=200, media_type="text/plain")

    documentation = documented(body_required=False, media_type="text/plain", errors=(404, 413, 429, 503))
    description = (
        "No API key: the token in the monitor's ping_url is the credential. An optional body (up to 10 KiB) is "
        "kept in the ping's log event. Answers 200 once the ping is durable; 404 for an unknown token."
    )

    @route(
        "/ping/{token:str}",
        http_method=["GET", "POST"],
        status_code=200,
        summary="Ping a heartbeat monitor: the job succeeded.",
        description=description,
        opt=documentation,
    )
    async def ping(request: Request[Any, Any, Any], token: FromPath[str]) -> Response[bytes]:
        return await answer(request, token, None)

    @route(
        "/ping/{token:str}/{suffix:str}",
        http_method=["GET", "POST"],
        status_code=200,
        summary="Ping a heartbeat monitor: /start, /fail, or the job's exit status /0 to /255.",
        description=description,
        opt=documentation,
    )
    async def ping_kind(
        request: Request[Any, Any, Any], token: FromPath[str], suffix: FromPath[str]
    ) -> Response[bytes]:
        return await answer(request, token, suffix)

    # HEAD answers carry no body, not even a problem's: the same routes, left out of the OpenAPI document.
    @route("/ping/{token:str}", http_method=["HEAD"], status_code=200, include_in_schema=False)
    async def ping_head(request: Request[Any, Any, Any], token: FromPath[str]) -> Response[bytes]:
        return await answer(request, token, None)

    @route("/ping/{token:str}/{suffix:str}", http_method=["HEAD"], status_code=200, include_in_schema=False)
    async def ping_kind_head(
        request: Request[Any, Any, Any], token: FromPath[str], suffix: FromPath[str]
    ) -> Response[bytes]:
        return await answer(request, token, suffix)

    return [ping, ping_kind, ping_head, ping_kind_head]
