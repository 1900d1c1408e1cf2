"""`POST /v1/logs/tail` and `GET /v1/logs/tail`: a Server-Sent Events stream of the tenant's new events
matching a query.

The POST body is search's matching part (`query`, `level`, `service`, `host`, `fields`) plus an optional
`since`; GET takes the same members as query parameters (`level`, `service`, `host` repeatable, `fields` a
JSON object), so a browser's `EventSource` can open it through a proxy that adds the API key header (an
`EventSource` cannot send headers, and keys in the URL are refused). Frames (docs/api.md, "Tail"):

    event: log        id: <event id>   data: <the event as JSON, as search returns it>
    event: warning                     data: {"code", "message", "position", "suggestion"}   the query is valid
                                       but likely not what was meant (after the first keepalive)
    event: dropped                     data: {"count": N}   N live events skipped: the client read too slowly
    event: replay_truncated            data: {"replayed": N}   the `since` replay stopped at its limit
    event: error                       data: {"code": ..., "detail": ...}   the last frame when the tail fails,
                                       its key stops authenticating (`key_revoked`, `tenant_suspended`, …) or
                                       the server shuts down (`server_shutting_down`)
    : keepalive                        a comment after `heartbeat_seconds` without a frame (and at the start)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, assert_never

import msgspec
from litestar import Controller, Request, get, post
from litestar.background_tasks import BackgroundTask
from litestar.params import QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from mintlog.auth import presented_key
from mintlog.domain.events import LogEvent
from mintlog.domain.keys import hash_api_key
from mintlog.domain.timeexpr import parse_time_expression
from mintlog.errors import BadRequest
from mintlog.http.guards import principal_of, requires
from mintlog.query import QueryWarning
from mintlog.query.matcher import to_matcher
from mintlog.roles.api.common.dependencies import Injected
from mintlog.roles.api.common.pagination import refuse_undeclared_parameters
from mintlog.roles.api.common.resource import operation
from mintlog.roles.api.common.wire import TimeExpression
from mintlog.roles.api.logs.reading import LogReading
from mintlog.roles.api.logs.search import decode_reading_body, filter_query, read_reading_body
from mintlog.roles.api.logs.tail_buffer import Dropped
from mintlog.roles.api.logs.tail_hub import TailHub
from mintlog.roles.api.logs.tail_session import (
    Keepalive,
    ReplayTruncated,
    TailEnded,
    TailFrame,
    TailSession,
    TailSpec,
)

__all__ = ["Tail", "TailRequest", "build_tail_spec", "decode_tail_request", "sse_message", "tail_request_of_parameters"]

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
    since: TimeExpression | None = None


_decoder = msgspec.json.Decoder(TailRequest)


def decode_tail_request(body: bytes) -> TailRequest:
    """Parse the body; an empty body is `{}`. Raises `BadRequest` (`invalid_tail`, `malformed_json`)."""
    return decode_reading_body(body, _decoder, TailRequest, name="tail")


_fields_decoder = msgspec.json.Decoder(dict[str, str | int | float | bool])


def tail_request_of_parameters(parameters: dict[str, list[str]]) -> TailRequest:
    """The `TailRequest` the query parameters of `GET /v1/logs/tail` stand for: each member of the body is a
    parameter of the same name; `level`, `service` and `host` may repeat (alternatives), `fields` is a JSON
    object. Other names are ignored here (the route refuses them first, `unknown_parameter`). Raises
    `BadRequest` `invalid_tail` for `query`, `fields` or `since` given twice, or a `fields` that is no object."""
    single: dict[str, str] = {}
    for name in ("query", "fields", "since"):
        values = parameters.get(name, [])
        if len(values) > 1:
            raise BadRequest(f"tail parameter {name!r} is given {len(values)} times", code="invalid_tail")
        if values:
            single[name] = values[0]
    fields = None
    if "fields" in single:
        try:
            fields = _fields_decoder.decode(single["fields"])
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise BadRequest(
                f"tail parameter 'fields' must be a JSON object of exact matches: {exc}", code="invalid_tail"
            ) from None
    return TailRequest(
        query=single.get("query"),
        level=parameters.get("level"),
        service=parameters.get("service"),
        host=parameters.get("host"),
        fields=fields,
        since=single.get("since"),
    )


def build_tail_spec(tenant_id: str, request: TailRequest, now: datetime | None = None) -> TailSpec:
    """What the tail follows, with the query compiled once. The tenant comes from the key, never the body.

    Raises `BadRequest`: `invalid_query` (with `position`) for a malformed query, `invalid_time` for `since`.
    """
    now = now or datetime.now(UTC)
    node, warnings = filter_query(request)
    since = None
    if request.since is not None:
        try:
            since = parse_time_expression(request.since, now)
        except ValueError as exc:
            raise BadRequest(f"invalid `since`: {exc}", code="invalid_time") from None
    return TailSpec(
        tenant_id=tenant_id,
        node=node,
        matcher=to_matcher(node, now),
        now=now,
        since=since,
        warnings=tuple(warnings),
    )


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
        case QueryWarning():
            return ServerSentEventMessage(event="warning", data=_json.encode(frame).decode())
        case _:
            assert_never(frame)


async def _sse_stream(session: TailSession) -> AsyncIterator[ServerSentEventMessage]:
    async for frame in session.frames():
        yield sse_message(frame)


_DESCRIPTION = (
    "The answer is a text/event-stream of `log` events (id = event id, data = the event), `warning` ({code, "
    "message, position, suggestion}: the query is valid but likely not what was meant; sent first), `dropped` "
    "({count}) when the client read too slowly, `replay_truncated` and `error` (the last frame: when the tail "
    "fails, when the key is revoked or expires or the tenant is suspended while the tail is open, and "
    "`server_shutting_down` when the server stops), and `: keepalive` comments. 429 `too_many_tails` when the "
    "tenant already has its maximum of tails open."
)

_Values = Annotated[list[str] | None, QueryParameter(required=False, description="Repeatable: alternatives.")]


class Tail(Controller):
    """`POST /v1/logs/tail` and `GET /v1/logs/tail` (scope `search:logs`): the live events, from the bus, after
    a replay from the store; the process's tails share `tails` (`TailHub`)."""

    path = "/v1/logs/tail"

    @post(
        guards=[requires("search:logs")],
        status_code=200,
        summary="Follow new log events live (Server-Sent Events).",
        description=(
            "Body (all optional): query, level, service, host, fields (as for search) and since (RFC 3339 or "
            "now-15m: replay stored events from then on, oldest first, before going live). " + _DESCRIPTION
        ),
        opt=operation(body=TailRequest, body_required=False, answer=str, media_type="text/event-stream"),
    )
    async def tail_logs(
        self,
        request: Request[Any, Any, Any],
        reading: Injected[LogReading],
        tails: Injected[TailHub],
    ) -> ServerSentEvent:
        body = await read_reading_body(request, max_bytes=_MAX_TAIL_BODY, name="tail")
        return _open_tail(request, decode_tail_request(body), reading, tails)

    @get(
        guards=[requires("search:logs")],
        status_code=200,
        summary="Follow new log events live (Server-Sent Events), with the parameters in the URL.",
        description=(
            "The POST's body members as query parameters, for a browser's EventSource: query, level, service, "
            "host (each repeatable), fields (a JSON object of exact matches) and since. The API key still goes "
            "in a header (keys in the URL are refused): an EventSource needs a proxy that adds it, or use "
            "fetch-based SSE. " + _DESCRIPTION
        ),
        opt=operation(answer=str, media_type="text/event-stream"),
    )
    async def tail_logs_get(
        self,
        request: Request[Any, Any, Any],
        reading: Injected[LogReading],
        tails: Injected[TailHub],
        query_text: Annotated[
            str | None, QueryParameter(name="query", required=False, description="The query language.")
        ] = None,
        level: _Values = None,
        service: _Values = None,
        host: _Values = None,
        fields: Annotated[
            str | None, QueryParameter(required=False, description='A JSON object: {"status": 500}.')
        ] = None,
        since: Annotated[
            TimeExpression | None, QueryParameter(required=False, description="Replay stored events from then on.")
        ] = None,
    ) -> ServerSentEvent:
        # The parameters are declared for the document and `refuse_undeclared_parameters`; the request is read
        # from the raw ones, so that a repeated `query` is refused rather than one of its values picked.
        del query_text, level, service, host, fields, since
        refuse_undeclared_parameters(request)
        parameters = {name: list(request.query_params.getall(name)) for name in request.query_params}
        return _open_tail(request, tail_request_of_parameters(parameters), reading, tails)


def _open_tail(
    request: Request[Any, Any, Any], tail_request: TailRequest, reading: LogReading, tails: TailHub
) -> ServerSentEvent:
    principal = principal_of(request)
    spec = build_tail_spec(principal.tenant_id, tail_request)
    # The guard authenticated the key this request presents; the hub re-checks it by hash while the tail is open.
    lease = tails.acquire(principal.tenant_id, hash_api_key(presented_key(request.headers) or ""))
    session = TailSession(
        spec, bus=reading.bus, store=reading.store, settings=reading.tail, metrics=reading.metrics, lease=lease
    )
    # The background task runs when the response ends, also when the client went away while the stream
    # was blocked writing to it (the stream's generator is then never resumed to clean up by itself).
    return ServerSentEvent(_sse_stream(session), background=BackgroundTask(session.close))
