"""`GET /v1/logs/fields` and `GET /v1/logs/{event_id}/context` (scope `search:logs`); see `explore.py`."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get
from litestar.params import FromPath, QueryParameter

from mintlog.domain.timeexpr import parse_time_expression
from mintlog.errors import BadRequest
from mintlog.http.guards import Guard, principal_of
from mintlog.ports.logstore import LogStore, SearchQuery
from mintlog.query import parse
from mintlog.roles.api.explore import CONTEXT_SAME_FIELDS, context_of, summarize_fields
from mintlog.roles.api.pagination import refuse_unknown_parameters
from mintlog.settings import SearchSettings

__all__ = ["MAX_CONTEXT_EVENTS", "MAX_TOP_VALUES", "explore_routes"]

MAX_CONTEXT_EVENTS = 500
"""Most events `before` or `after` one context request may ask for."""
MAX_TOP_VALUES = 100
"""Most top values per field one fields request may ask for."""

_FIELDS_PARAMETERS = frozenset({"query", "from", "to", "top"})
_CONTEXT_PARAMETERS = frozenset({"before", "after", "same"})
_encoder = msgspec.json.Encoder()


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


def _time(name: str, value: str | None, now: datetime) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time_expression(value, now)
    except ValueError as exc:
        raise BadRequest(f"`{name}`: {exc}", code="invalid_time") from None


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


def _json(payload: dict[str, Any]) -> Response[bytes]:
    return Response(_encoder.encode(payload), status_code=200, media_type="application/json")


def explore_routes(store: LogStore, *, requires: Any, settings: SearchSettings) -> list[Any]:
    """The route handlers of field discovery and event context, bound to the log store."""
    search_guard: Guard = requires("search:logs")

    @get(
        "/v1/logs/fields",
        guards=[search_guard],
        summary="Fields of recent events, with their types and top values.",
        description=(
            "Query: query (the query language), from/to (RFC 3339 or now-15m), top (values per field, 0-100, "
            "default 5). Looks at the newest MINTLOG_SEARCH__FIELDS_SAMPLE_SIZE matching events."
        ),
    )
    async def log_fields(
        request: Request[Any, Any, Any],
        query_text: Annotated[str | None, QueryParameter(name="query", required=False)] = None,
        from_: Annotated[str | None, QueryParameter(name="from", required=False)] = None,
        to: Annotated[str | None, QueryParameter(name="to", required=False)] = None,
        top: Annotated[str | None, QueryParameter(name="top", required=False)] = None,
    ) -> Response[bytes]:
        refuse_unknown_parameters(request.query_params, _FIELDS_PARAMETERS)
        principal = principal_of(request)
        now = datetime.now(UTC)
        start, end = _time("from", from_, now), _time("to", to, now)
        if start is not None and end is not None and start >= end:
            raise BadRequest("`from` must be earlier than `to`", code="invalid_time")
        top_values = _count("top", top, 5, MAX_TOP_VALUES)
        search = SearchQuery(
            tenant_id=principal.tenant_id,
            node=parse(query_text or ""),
            now=now,
            start=start,
            end=end,
            size=settings.fields_sample_size,
            total_cap=settings.total_cap,
        )
        page = await store.search(search)
        return _json(
            {
                "fields": [dataclasses.asdict(summary) for summary in summarize_fields(page.events, top_values)],
                "sampled": len(page.events),
                "total": page.total,
                "total_relation": "gte" if page.total_is_lower_bound else "eq",
            }
        )

    @get(
        "/v1/logs/{event_id:str}/context",
        guards=[search_guard],
        summary="The events just before and after one event, from the same service and host.",
        description=(
            "Query: before and after (events on each side, 0-500, default 20), same (comma-separated fields the "
            "context shares with the event: service, host, source, trace_id; default service,host; empty: all "
            "events of the tenant). Both lists are oldest first."
        ),
    )
    async def event_context(
        request: Request[Any, Any, Any],
        event_id: FromPath[str],
        before: Annotated[str | None, QueryParameter(name="before", required=False)] = None,
        after: Annotated[str | None, QueryParameter(name="after", required=False)] = None,
        same: Annotated[str | None, QueryParameter(name="same", required=False)] = None,
    ) -> Response[bytes]:
        refuse_unknown_parameters(request.query_params, _CONTEXT_PARAMETERS)
        principal = principal_of(request)
        context = await context_of(
            store,
            principal.tenant_id,
            event_id,
            before=_count("before", before, 20, MAX_CONTEXT_EVENTS),
            after=_count("after", after, 20, MAX_CONTEXT_EVENTS),
            same=_same(same),
            now=datetime.now(UTC),
        )
        return _json({"event": context.event, "before": context.before, "after": context.after})

    return [log_fields, event_context]
