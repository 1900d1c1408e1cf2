"""The search request of a `SearchQuery` and the page read from its response.

- Only the tenant's indices whose period (a day, or the month of old events received in one month,
  `periods`) overlaps both `[start, end)` and the time window the query node implies are searched
  (`day_range`, `periods.overlapping`); the request names them, with whole months and years of the tenant
  written as wildcards so the request line stays short over long ranges (`index_expression`). The query
  also filters on `tenant_id`, so a wildcard can never let another tenant's events in.
- Hits are sorted by `timestamp` (`date_nanos`, exact microseconds) then `id`, both in the query's order;
  `SearchQuery.after` becomes `search_after`, which the total ignores.
- `track_total_hits` is `total_cap + 1`: a total above the cap is reported as the cap and a lower bound.
- The compiled query is adapted to the index (`adapt_query`): `date_nanos` refuses range bounds before
  1970 or after 2262-04-11 that the query language allows, so they are clamped to that span, which keeps
  their meaning because no stored event lies outside it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from mintlog.adapters.logstore.opensearch_documents import decode_event, utc_instant
from mintlog.adapters.logstore.opensearch_layout import index_of
from mintlog.adapters.logstore.periods import Period
from mintlog.domain.events import LogEvent
from mintlog.errors import StoreUnavailable
from mintlog.ports.logstore import SearchQuery

__all__ = [
    "FILTER_PATH",
    "FIRST_INSTANT",
    "LAST_INSTANT",
    "ReadPage",
    "adapt_query",
    "index_expression",
    "read_page",
    "search_body",
]

FIRST_INSTANT = "1970-01-01T00:00:00.000000Z"
"""The earliest `date_nanos` (inclusive), in the fixed-width form `utc_instant` writes."""
LAST_INSTANT = "2262-04-11T23:47:16.854775Z"
"""The latest `date_nanos` at microsecond precision (inclusive)."""

_LONG_MAX = 2**63 - 1
_LONG_MIN = -(2**63)
_INT_MAX = 2**31 - 1
_DATE_FORMAT = "strict_date_optional_time_nanos"
FILTER_PATH = "took,hits.total,hits.hits._source.event"
"""The parts of a search response `read_page` reads."""


def index_expression(base: str, selected: list[Period], existing: Iterable[Period]) -> str:
    """The comma-separated indices of the `selected` periods of the tenant whose index base is `base`.

    A year all of whose existing indices (of event times in that year) are selected becomes
    `{base}-YYYY.*`, a month all of whose existing day indices are selected `{base}-YYYY.MM.*` (which does
    not match the month's `YYYY.MM@...` indices); the rest are listed. Encoded tenants hold no `.`, so these
    wildcards match only this tenant's indices.
    """
    chosen = set(selected)
    existing_by_year: dict[int, set[Period]] = {}
    for period in existing:
        existing_by_year.setdefault(period.start.year, set()).add(period)
    parts: list[str] = []
    for year in sorted({period.start.year for period in chosen}):
        of_year = existing_by_year.get(year, set()) | {period for period in chosen if period.start.year == year}
        if of_year <= chosen:
            parts.append(f"{base}-{year:04d}.*")
            continue
        for month in sorted({period.start.month for period in chosen if period.start.year == year}):
            of_month = {period for period in of_year if period.start.month == month}
            days_of_month = {period for period in of_month if not period.monthly}
            listed = sorted(of_month & chosen, key=lambda period: period.sort_key)
            if days_of_month and days_of_month <= chosen:
                parts.append(f"{base}-{year:04d}.{month:02d}.*")
                listed = [period for period in listed if period.monthly]
            parts.extend(index_of(base, period) for period in listed)
    return ",".join(parts)


def _clamped_bounds(bounds: dict[str, Any]) -> dict[str, Any]:
    clamped = dict(bounds)
    for key in ("gt", "gte"):
        value = clamped.get(key)
        if isinstance(value, str) and value < FIRST_INSTANT:
            del clamped[key]
            clamped["gte"] = FIRST_INSTANT
        elif isinstance(value, str) and value > LAST_INSTANT:
            del clamped[key]
            clamped["gt"] = LAST_INSTANT
    for key in ("lt", "lte"):
        value = clamped.get(key)
        if isinstance(value, str) and value > LAST_INSTANT:
            del clamped[key]
            clamped["lte"] = LAST_INSTANT
        elif isinstance(value, str) and value < FIRST_INSTANT:
            del clamped[key]
            clamped["lt"] = FIRST_INSTANT
    return clamped


def adapt_query(dsl: Any) -> Any:
    """`dsl` (from `mintlog.query.opensearch`) as the index needs it, matching the same events.

    Every `range` on `timestamp` is clamped to what `date_nanos` accepts. Bounds are compared as the
    fixed-width RFC 3339 texts the compiler writes, which sort like the instants they name.
    """
    if isinstance(dsl, list):
        return [adapt_query(item) for item in dsl]  # pyright: ignore[reportUnknownVariableType]
    if not isinstance(dsl, dict):
        return dsl
    result: dict[str, Any] = {}
    for key, value in dsl.items():  # pyright: ignore[reportUnknownVariableType]
        if key == "range" and isinstance(value, dict) and isinstance(value.get("timestamp"), dict):  # pyright: ignore[reportUnknownMemberType]
            ranges: dict[str, Any] = dict(value)  # pyright: ignore[reportUnknownArgumentType]
            ranges["timestamp"] = _clamped_bounds(ranges["timestamp"])
            result[key] = ranges
        else:
            result[str(key)] = adapt_query(value)  # pyright: ignore[reportUnknownArgumentType]
    return result


def _request_range(query: SearchQuery) -> dict[str, Any] | None:
    bounds: dict[str, Any] = {}
    if query.start is not None:
        bounds["gte"] = utc_instant(query.start)
    if query.end is not None:
        bounds["lt"] = utc_instant(query.end)
    if not bounds:
        return None
    bounds["format"] = _DATE_FORMAT
    return {"range": {"timestamp": _clamped_bounds(bounds)}}


def _cursor_nanos(timestamp_us: int) -> int:
    return min(max(timestamp_us * 1000, _LONG_MIN), _LONG_MAX)


def search_body(query: SearchQuery, node_dsl: dict[str, Any]) -> dict[str, Any]:
    """The body of the search for `query`, whose node compiled to `node_dsl`."""
    filters: list[dict[str, Any]] = [{"term": {"tenant_id": query.tenant_id}}]
    time_range = _request_range(query)
    if time_range is not None:
        filters.append(time_range)
    if "match_all" not in node_dsl:
        filters.append(adapt_query(node_dsl))
    order = query.order
    body: dict[str, Any] = {
        "query": {"bool": {"filter": filters}},
        "sort": [{"timestamp": {"order": order}}, {"id": {"order": order}}],
        "size": max(query.size, 0),
        "track_total_hits": min(max(query.total_cap, 0) + 1, _INT_MAX),
        "_source": ["event"],
    }
    if query.after is not None:
        body["search_after"] = [_cursor_nanos(query.after.timestamp_us), query.after.event_id]
    return body


class _Total(msgspec.Struct):
    value: int
    relation: str = "eq"


class _Source(msgspec.Struct):
    event: str


class _Hit(msgspec.Struct):
    source: _Source = msgspec.field(name="_source")


class _Hits(msgspec.Struct):
    total: _Total
    hits: list[_Hit] = []


class _SearchResponse(msgspec.Struct):
    hits: _Hits
    took: int = 0


class ReadPage(msgspec.Struct, frozen=True):
    """The events of a search response and its total, capped as the port wants it."""

    events: list[LogEvent]
    total: int
    total_is_lower_bound: bool


def read_page(response: object, total_cap: int) -> ReadPage:
    """The page in a search response (requested with `search_body` and `FILTER_PATH`)."""
    try:
        parsed = msgspec.convert(response, _SearchResponse)
        events = [decode_event(hit.source.event) for hit in parsed.hits.hits]
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise StoreUnavailable(f"opensearch store got an unexpected search response: {exc}") from exc
    cap = max(total_cap, 0)
    total = parsed.hits.total
    if total.value > cap or (total.value == cap and total.relation != "eq"):
        return ReadPage(events=events, total=cap, total_is_lower_bound=True)
    return ReadPage(events=events, total=total.value, total_is_lower_bound=False)
