"""HTTP routes of the API role (:8081) for reading logs: search, field discovery and event context."""

from __future__ import annotations

import time
from typing import Any

from litestar import Request, Response, post

from mintlog.errors import PayloadTooLarge
from mintlog.http.guards import Guard, principal_of
from mintlog.metrics import Metrics
from mintlog.ports.logstore import LogStore
from mintlog.roles.api.explore_routes import explore_routes
from mintlog.roles.api.search import SearchRequest, build_search_query, decode_search_request, search_page
from mintlog.settings import SearchSettings

__all__ = ["api_routes"]

_MAX_SEARCH_BODY = 1024 * 1024


def api_routes(store: LogStore, *, requires: Any, settings: SearchSettings, metrics: Metrics) -> list[Any]:
    """The route handlers of the query API, bound to the log store."""
    search_guard: Guard = requires("search:logs")

    @post(
        "/v1/logs/search",
        guards=[search_guard],
        status_code=200,
        summary="Search log events.",
        description=(
            "Body (all optional): query (the query language, docs/query-language.md), level, service, host "
            "(a value or a list), fields (exact matches), from/to (RFC 3339 or now-15m), size, sort, cursor "
            "(the next_cursor of the previous page). The body is read as JSON whatever its Content-Type."
        ),
    )
    async def search_logs(request: Request[Any, Any, Any]) -> Response[bytes]:
        principal = principal_of(request)
        body = await request.body()
        if len(body) > _MAX_SEARCH_BODY:
            raise PayloadTooLarge(f"search body exceeds {_MAX_SEARCH_BODY} bytes")
        search: SearchRequest = decode_search_request(body)
        query = build_search_query(principal.tenant_id, search, settings)
        started = time.perf_counter()
        answer = await search_page(store, query)
        metrics.search_seconds.observe(time.perf_counter() - started)
        return Response(answer, status_code=200, media_type="application/json")

    return [search_logs, *explore_routes(store, requires=requires, settings=settings)]
