"""`POST /v1/logs/search`: the request body, its checks, the answer, and the route (`Search`)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypeVar

import msgspec
from litestar import Controller, Request, Response, post
from msgspec import UNSET, UnsetType

from mintlog.domain.events import LEVELS, LogEvent
from mintlog.domain.timeexpr import parse_time_expression
from mintlog.errors import BadRequest, PayloadTooLarge
from mintlog.http.guards import principal_of, requires
from mintlog.ports.logstore import LogStore, SearchAfter, SearchPage, SearchQuery
from mintlog.query import Node, QueryWarning, all_of, any_of, parse_with_warnings
from mintlog.query.ast import MatchNone
from mintlog.query.filters import equals
from mintlog.query.hints import level_meant, unknown_level_reason
from mintlog.roles.api.common.cursor import decode_cursor, encode_cursor
from mintlog.roles.api.common.dependencies import Injected
from mintlog.roles.api.common.resource import operation
from mintlog.roles.api.common.wire import TimeExpression
from mintlog.roles.api.logs.reading import LogReading
from mintlog.settings import SearchSettings

__all__ = [
    "MAX_SEARCH_BODY",
    "EventFilter",
    "Search",
    "SearchRequest",
    "SearchResponse",
    "build_search_query",
    "decode_reading_body",
    "decode_search_request",
    "filter_node",
    "filter_query",
    "read_reading_body",
    "search_page",
    "time_range",
]


class SearchRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The search body. Every member is optional; `{}` returns the newest events.

    `query` is written in the query language (docs/query-language.md); the structured filters are AND-ed
    with it (several values of one filter are alternatives).
    """

    query: str | None = None
    level: str | list[str] | None = None
    service: str | list[str] | None = None
    host: str | list[str] | None = None
    fields: dict[str, str | int | float | bool] | None = None
    from_: TimeExpression | None = msgspec.field(default=None, name="from")
    to: TimeExpression | None = None
    size: int | None = None
    sort: Literal["desc", "asc"] = "desc"
    cursor: str | None = None


class SearchResponse(msgspec.Struct, kw_only=True):
    """The search answer: events newest first by default, how many matched in all (`total_relation` `gte`:
    at least that many), `next_cursor` when another page follows, and `warnings` when the query is valid but
    likely not what was meant (docs/query-language.md, "Hints")."""

    events: list[LogEvent]
    total: int
    total_relation: Literal["eq", "gte"]
    took_ms: float
    next_cursor: str | None = None
    warnings: list[QueryWarning] | UnsetType = UNSET


MAX_SEARCH_BODY = 1024 * 1024


_decoder = msgspec.json.Decoder(SearchRequest)


def decode_search_request(body: bytes) -> SearchRequest:
    """Parse the body; an empty body is `{}`. Raises `BadRequest` naming what is wrong."""
    return decode_reading_body(body, _decoder, SearchRequest, name="search")


_Body = TypeVar("_Body", bound=msgspec.Struct)


async def read_reading_body(request: Request[Any, Any, Any], *, max_bytes: int, name: str) -> bytes:
    """The body of a log-reading request; a 413 `payload_too_large` when it exceeds `max_bytes`."""
    body = await request.body()
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"{name} body exceeds {max_bytes} bytes")
    return body


def decode_reading_body(
    body: bytes, decoder: msgspec.json.Decoder[_Body], empty: Callable[[], _Body], *, name: str
) -> _Body:
    """Parse the JSON body of a log-reading endpoint; an empty body is `empty()`.

    Raises `BadRequest`: code `invalid_{name}` for the wrong shape, `malformed_json` for text that is not JSON.
    """
    if not body.strip():
        return empty()
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"{name} body is invalid: {exc}", code=f"invalid_{name}") from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"{name} body is not valid JSON: {exc}", code="malformed_json") from None
    except UnicodeDecodeError as exc:
        raise BadRequest(f"{name} body is not valid UTF-8: {exc.reason}", code="malformed_json") from None


def _values(value: str | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


class EventFilter(Protocol):
    """The members every log-reading body shares (search, tail, aggregate): what to match."""

    @property
    def query(self) -> str | None: ...
    @property
    def level(self) -> str | list[str] | None: ...
    @property
    def service(self) -> str | list[str] | None: ...
    @property
    def host(self) -> str | list[str] | None: ...
    @property
    def fields(self) -> dict[str, str | int | float | bool] | None: ...


def filter_node(request: EventFilter) -> Node:
    """The parsed `query` AND-ed with the structured filters. Raises `QuerySyntaxError` (a 400)."""
    return filter_query(request)[0]


def filter_query(request: EventFilter) -> tuple[Node, list[QueryWarning]]:
    """`filter_node` and the warnings of the query (docs/query-language.md, "Hints").

    Raises `QuerySyntaxError` (a 400 `invalid_query`), or `BadRequest` `invalid_level` for a `level` value
    that is none of the six levels (it could never match), with the level it probably meant as `suggestion`.
    """
    parsed = parse_with_warnings(request.query or "")
    clauses = [parsed.node]
    levels = _values(request.level)
    for level in levels:
        _check_level(level)
    if levels:
        clauses.append(any_of([equals("level", level) for level in levels]))
    for field, values in (("service", _values(request.service)), ("host", _values(request.host))):
        if values:
            clauses.append(any_of([equals(field, value) for value in values]))
    for key, value in (request.fields or {}).items():
        # An empty key names no value the index can hold, so it matches nothing (as it always did).
        clauses.append(equals(f"fields.{key}", value) if key else MatchNone())
    return all_of(clauses), list(parsed.warnings)


def _check_level(level: str) -> None:
    if level.lower() in LEVELS:
        return
    meant = level_meant(level)
    raise BadRequest(
        unknown_level_reason(level, meant),
        code="invalid_level",
        extra={} if meant is None else {"suggestion": meant},
    )


def time_range(from_: str | None, to: str | None, now: datetime) -> tuple[datetime | None, datetime | None]:
    """The `from` and `to` of a log-reading body (RFC 3339 or `now-15m`), resolved against `now`.

    Raises `BadRequest` (`invalid_time`) for an unreadable bound or `from` not earlier than `to`.
    """
    start = end = None
    try:
        if from_ is not None:
            start = parse_time_expression(from_, now)
        if to is not None:
            end = parse_time_expression(to, now)
    except ValueError as exc:
        raise BadRequest(f"invalid time range: {exc}", code="invalid_time") from None
    if start is not None and end is not None and start >= end:
        raise BadRequest("`from` must be earlier than `to`", code="invalid_time")
    return start, end


def build_search_query(
    tenant_id: str, request: SearchRequest, settings: SearchSettings, now: datetime | None = None
) -> SearchQuery:
    """The store query for a request, with limits checked. The tenant comes from the key, never the body.

    Raises `BadRequest`; a malformed `query` is `QuerySyntaxError` (code `invalid_query`, with `position`).
    """
    return _search_query(tenant_id, request, settings, now)[0]


def _search_query(
    tenant_id: str, request: SearchRequest, settings: SearchSettings, now: datetime | None = None
) -> tuple[SearchQuery, list[QueryWarning]]:
    now = now or datetime.now(UTC)
    size = settings.default_size if request.size is None else request.size
    if not 1 <= size <= settings.max_size:
        raise BadRequest(f"size must be between 1 and {settings.max_size}, got {size}", code="invalid_size")
    start, end = time_range(request.from_, request.to, now)
    after = decode_cursor(request.cursor, request.sort) if request.cursor is not None else None
    node, warnings = filter_query(request)
    query = SearchQuery(
        tenant_id=tenant_id,
        node=node,
        now=now,
        start=start,
        end=end,
        size=size,
        order=request.sort,
        after=after,
        total_cap=settings.total_cap,
    )
    return query, warnings


_response_encoder = msgspec.json.Encoder()


async def search_page(store: LogStore, query: SearchQuery, warnings: list[QueryWarning] | None = None) -> bytes:
    """Run `query` and encode the answer; `next_cursor` is present exactly when another page follows, and
    `warnings` when there are any.

    The store is asked for one event more than the page: its presence tells that another page follows.
    """
    page = await store.search(dataclasses.replace(query, size=query.size + 1))
    return _encode_response(page, query, warnings or [])


def _encode_response(page: SearchPage, query: SearchQuery, warnings: list[QueryWarning]) -> bytes:
    size = query.size
    events = page.events[:size]
    response = SearchResponse(
        events=events,
        total=page.total,
        total_relation="gte" if page.total_is_lower_bound else "eq",
        took_ms=round(page.took_ms, 3),
        next_cursor=encode_cursor(SearchAfter.of(events[-1]), query.order) if len(page.events) > size else None,
        warnings=warnings or UNSET,
    )
    return _response_encoder.encode(response)


class Search(Controller):
    """`POST /v1/logs/search` (scope `search:logs`)."""

    path = "/v1/logs/search"

    @post(
        guards=[requires("search:logs")],
        status_code=200,
        summary="Search log events.",
        description=(
            "Body (all optional): query (the query language, docs/query-language.md), level, service, host "
            "(a value or a list), fields (exact matches), from/to (RFC 3339 or now-15m), size, sort, cursor "
            "(the next_cursor of the previous page). The body is read as JSON whatever its Content-Type."
        ),
        opt=operation(body=SearchRequest, body_required=False, answer=SearchResponse),
    )
    async def search_logs(
        self,
        request: Request[Any, Any, Any],
        reading: Injected[LogReading],
    ) -> Response[bytes]:
        principal = principal_of(request)
        body = await read_reading_body(request, max_bytes=MAX_SEARCH_BODY, name="search")
        search: SearchRequest = decode_search_request(body)
        query, warnings = _search_query(principal.tenant_id, search, reading.search)
        started = time.perf_counter()
        answer = await search_page(reading.store, query, warnings)
        reading.metrics.search_seconds.observe(time.perf_counter() - started)
        return Response(answer, status_code=200, media_type="application/json")
