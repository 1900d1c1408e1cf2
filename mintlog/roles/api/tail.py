"""`POST /v1/logs/tail`: a Server-Sent Events stream of the tenant's new events matching a query.

The body is search's matching part (`query`, `level`, `service`, `host`, `fields`) plus an optional `since`.
Frames (docs/api.md, "Tail"):

    event: log        id: <event id>   data: <the event as JSON, as search returns it>
    event: dropped                     data: {"count": N}   N live events skipped: the client read too slowly
    event: replay_truncated            data: {"replayed": N}   the `since` replay stopped at its limit
    event: error                       data: {"code": ..., "detail": ...}   the last frame when the tail fails
                                       or its key stops authenticating (`key_revoked`, `tenant_suspended`, …)
    : keepalive                        a comment after `heartbeat_seconds` without a frame (and at the start)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, assert_never

import msgspec
from litestar import Request, post
from litestar.background_tasks import BackgroundTask
from litestar.response import ServerSentEvent, ServerSentEventMessage

from mintlog.domain.events import LogEvent
from mintlog.domain.keys import hash_api_key
from mintlog.domain.timeexpr import parse_time_expression
from mintlog.errors import BadRequest, PayloadTooLarge
from mintlog.http.guards import Guard, principal_of
from mintlog.metrics import Metrics
from mintlog.ports.bus import EventBus
from mintlog.ports.logstore import LogStore
from mintlog.query.matcher import to_matcher
from mintlog.roles.api.search import decode_reading_body, filter_node
from mintlog.roles.api.tail_buffer import Dropped
from mintlog.roles.api.tail_hub import TailHub
from mintlog.roles.api.tail_session import (
    Keepalive,
    ReplayTruncated,
    TailEnded,
    TailFrame,
    TailSession,
    TailSpec,
)
from mintlog.settings import TailSettings

__all__ = ["TailRequest", "build_tail_spec", "decode_tail_request", "sse_message", "tail_routes"]

_MAX_TAIL_BODY = 1024 * 1024


class TailRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The tail body. Every member is optional; `{}` follows every new event of the tenant.

    The matching members mean what they mean for search. `since` (RFC 3339 or `now-15m`) first replays the
    stored events from that time on, oldest first, then continues live.
    """

    query: str | None = None
    level: str | list[str] | None = None
    service: str | list[str] | None = None
    host: str | list[str] | None = None
    fields: dict[str, str | int | float | bool] | None = None
    since: str | None = None


_decoder = msgspec.json.Decoder(TailRequest)


def decode_tail_request(body: bytes) -> TailRequest:
    """Parse the body; an empty body is `{}`. Raises `BadRequest` (`invalid_tail`, `malformed_json`)."""
    return decode_reading_body(body, _decoder, TailRequest, name="tail")


def build_tail_spec(tenant_id: str, request: TailRequest, now: datetime | None = None) -> TailSpec:
    """What the tail follows, with the query compiled once. The tenant comes from the key, never the body.

    Raises `BadRequest`: `invalid_query` (with `position`) for a malformed query, `invalid_time` for `since`.
    """
    now = now or datetime.now(UTC)
    node = filter_node(request)
    since = None
    if request.since is not None:
        try:
            since = parse_time_expression(request.since, now)
        except ValueError as exc:
            raise BadRequest(f"invalid `since`: {exc}", code="invalid_time") from None
    return TailSpec(tenant_id=tenant_id, node=node, matcher=to_matcher(node, now), now=now, since=since)


_json = msgspec.json.Encoder()


def sse_message(frame: TailFrame) -> ServerSentEventMessage:
    """The Server-Sent Events frame of one tail frame."""
    match frame:
        case LogEvent():
            return ServerSentEventMessage(event="log", id=frame.id, data=_json.encode(frame).decode())
        case Keepalive():
            return ServerSentEventMessage(comment="keepalive", data=None)
        case Dropped(count=count):
            return ServerSentEventMessage(event="dropped", data=_json.encode({"count": count}).decode())
        case ReplayTruncated(replayed=replayed):
            return ServerSentEventMessage(event="replay_truncated", data=_json.encode({"replayed": replayed}).decode())
        case TailEnded(code=code, detail=detail):
            return ServerSentEventMessage(event="error", data=_json.encode({"code": code, "detail": detail}).decode())
        case _:
            assert_never(frame)


async def _sse_stream(session: TailSession) -> AsyncIterator[ServerSentEventMessage]:
    async for frame in session.frames():
        yield sse_message(frame)


def tail_routes(
    bus: EventBus,
    store: LogStore,
    tails: TailHub,
    *,
    requires: Any,
    settings: TailSettings,
    metrics: Metrics,
) -> list[Any]:
    """The `POST /v1/logs/tail` handler, bound to the bus (live events), the store (replay) and the hub."""
    search_guard: Guard = requires("search:logs")

    @post(
        "/v1/logs/tail",
        guards=[search_guard],
        status_code=200,
        summary="Follow new log events live (Server-Sent Events).",
        description=(
            "Body (all optional): query, level, service, host, fields (as for search) and since (RFC 3339 or "
            "now-15m: replay stored events from then on, oldest first, before going live). The answer is a "
            "text/event-stream of `log` events (id = event id, data = the event), `dropped` ({count}) when "
            "the client read too slowly, `replay_truncated` and `error` (the last frame; also when the key is "
            "revoked or expires or the tenant is suspended while the tail is open), and `: keepalive` comments. "
            "429 `too_many_tails` when the tenant already has its maximum of tails open."
        ),
    )
    async def tail_logs(request: Request[Any, Any, Any]) -> ServerSentEvent:
        principal = principal_of(request)
        body = await request.body()
        if len(body) > _MAX_TAIL_BODY:
            raise PayloadTooLarge(f"tail body exceeds {_MAX_TAIL_BODY} bytes")
        spec = build_tail_spec(principal.tenant_id, decode_tail_request(body))
        # The guard authenticated this header's key; the hub re-checks it by hash while the tail is open.
        lease = tails.acquire(principal.tenant_id, hash_api_key(request.headers["x-api-key"]))
        session = TailSession(spec, bus=bus, store=store, settings=settings, metrics=metrics, lease=lease)
        # The background task runs when the response ends, also when the client went away while the stream
        # was blocked writing to it (the stream's generator is then never resumed to clean up by itself).
        return ServerSentEvent(_sse_stream(session), background=BackgroundTask(session.close))

    return [tail_logs]
