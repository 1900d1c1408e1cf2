"""Which UTC days a search can touch: both stores partition by tenant and day and prune with this."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from mintlog.ports.logstore import SearchQuery
from mintlog.query import time_window

__all__ = ["day_range"]

_ONE_MICROSECOND = timedelta(microseconds=1)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def day_range(query: SearchQuery) -> tuple[date | None, date | None]:
    """The first and last UTC day an event matching `query` can fall on (`None`: unbounded).

    An empty range (first after last) when nothing can match. Raises `QuerySyntaxError` when a time bound
    of the node cannot be resolved against `query.now`.
    """
    window = time_window(query.node, query.now)
    if window is None:
        return date.max, date.min
    starts = [_utc(moment) for moment in (query.start, window.start) if moment is not None]
    ends = [_utc(window.end)] if window.end is not None else []  # the window's end is inclusive
    if query.end is not None:
        ends.append(_utc(query.end) - _ONE_MICROSECOND)  # `end` is exclusive
    first = max(starts) if starts else None
    last = min(ends) if ends else None
    if first is not None and last is not None and first > last:
        return date.max, date.min
    return (first.date() if first is not None else None, last.date() if last is not None else None)
