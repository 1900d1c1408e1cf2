"""`GET /v1/logs/fields` and `GET /v1/logs/{event_id}/context` (scope `search:logs`); see `explore.py`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get
from litestar.params import FromPath, QueryParameter

from mintlog.errors import BadRequest
from mintlog.http.guards import principal_of, requires
from mintlog.ports.logstore import SearchQuery
from mintlog.query import parse
from mintlog.roles.api.common.dependencies import Injected
from mintlog.roles.api.common.pagination import refuse_undeclared_parameters
from mintlog.roles.api.common.resource import operation
from mintlog.roles.api.common.wire import FromParameter, ToParameter, time_parameter
from mintlog.roles.api.logs.explore import CONTEXT_SAME_FIELDS, EventContext, FieldSummary, context_of, summarize_fields
from mintlog.roles.api.logs.reading import LogReading

__all__ = ["MAX_CONTEXT_EVENTS", "MAX_TOP_VALUES", "Explore", "FieldsAnswer"]

MAX_CONTEXT_EVENTS = 500
"""Most events `before` or `after` one context request may ask for."""
MAX_TOP_VALUES = 100
"""Most top values per field one fields request may ask for."""

_encoder = msgspec.json.Encoder()


class FieldsAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """The fields of the sampled events (attributes first, then `fields.*` by name), how many events were
    sampled, and how many matched in all (`total_relation` `gte`: at least that many)."""

    fields: list[FieldSummary]
    sampled: int
    total: int
    total_relation: Literal["eq", "gte"]


def _count(name: str, value: str | None, default: int, maximum: int, minimum: int = 0) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = -1
    if not minimum <= number <= maximum:
        raise BadRequest(
            f"`{name}` must be an integer from {minimum} to {maximum}, got {value!r}", code="invalid_parameter"
        )
    return number


def _same(value: str | None) -> tuple[str, ...]:
    if value is None:
        return ("service", "host")
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    unknown = [name for name in names if name not in CONTEXT_SAME_FIELDS]
    if unknown:
        raise BadRequest(
            f"`same` takes a comma-separated list of {', '.join(CONTEXT_SAME_FIELDS)}; got {unknown[0]!r}",
            code="invalid_parameter",
        )
    return names


def _json(answer: object) -> Response[bytes]:
    return Response(_encoder.encode(answer), status_code=200, media_type="application/json")


class Explore(Controller):
    """Field discovery and event context over the log store."""

    path = "/v1/logs"

    @get(
        "/fields",
        guards=[requires("search:logs")],
        summary="Fields of recent events, with their types and top values.",
        description=(
            "Query: query (the query language), from/to (RFC 3339 or now-15m), top (values per field, 0-100, "
            "default 5). Looks at the newest MINTLOG_SEARCH__FIELDS_SAMPLE_SIZE matching events."
        ),
        opt=operation(answer=FieldsAnswer),
    )
    async def log_fields(
        self,
        request: Request[Any, Any, Any],
        reading: Injected[LogReading],
        query_text: Annotated[str | None, QueryParameter(name="query", required=False)] = None,
        from_: FromParameter = None,
        to: ToParameter = None,
        top: Annotated[str | None, QueryParameter(name="top", required=False)] = None,
    ) -> Response[bytes]:
        refuse_undeclared_parameters(request)
        principal = principal_of(request)
        now = datetime.now(UTC)
        start, end = time_parameter("from", from_, now), time_parameter("to", to, now)
        if start is not None and end is not None and start >= end:
            raise BadRequest("`from` must be earlier than `to`", code="invalid_time")
        top_values = _count("top", top, 5, MAX_TOP_VALUES)
        search = SearchQuery(
            tenant_id=principal.tenant_id,
            node=parse(query_text or ""),
            now=now,
            start=start,
            end=end,
            size=reading.search.fields_sample_size,
            total_cap=reading.search.total_cap,
        )
        page = await reading.store.search(search)
        return _json(
            FieldsAnswer(
                fields=summarize_fields(page.events, top_values),
                sampled=len(page.events),
                total=page.total,
                total_relation="gte" if page.total_is_lower_bound else "eq",
            )
        )

    @get(
        "/{event_id:str}/context",
        guards=[requires("search:logs")],
        summary="The events just before and after one event, from the same service and host.",
        description=(
            "Query: before and after (events on each side, 0-500, default 20), same (comma-separated fields the "
            "context shares with the event: service, host, source, trace_id; default service,host; empty: all "
            "events of the tenant). Both lists are oldest first."
        ),
        opt=operation(answer=EventContext),
    )
    async def event_context(
        self,
        request: Request[Any, Any, Any],
        reading: Injected[LogReading],
        event_id: FromPath[str],
        before: Annotated[str | None, QueryParameter(name="before", required=False)] = None,
        after: Annotated[str | None, QueryParameter(name="after", required=False)] = None,
        same: Annotated[str | None, QueryParameter(name="same", required=False)] = None,
    ) -> Response[bytes]:
        refuse_undeclared_parameters(request)
        principal = principal_of(request)
        context = await context_of(
            reading.store,
            principal.tenant_id,
            event_id,
            before=_count("before", before, 20, MAX_CONTEXT_EVENTS),
            after=_count("after", after, 20, MAX_CONTEXT_EVENTS),
            same=_same(same),
            now=datetime.now(UTC),
        )
        return _json(context)
