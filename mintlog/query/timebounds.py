"""Resolve the time bounds of a query against a caller-supplied `now`, and the time window a query implies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from mintlog.domain.timeexpr import parse_time_expression
from mintlog.query.ast import And, MatchNone, Node, Not, Or, TimeBound, TimeRange
from mintlog.query.errors import QuerySyntaxError

__all__ = ["TimeWindow", "resolve_time", "time_window"]


def resolve_time(bound: TimeBound, now: datetime) -> datetime:
    """The aware UTC instant of `bound` (`now` naive means UTC); `QuerySyntaxError` if it is out of range."""
    reference = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    try:
        return parse_time_expression(bound.expression, reference)
    except ValueError as exc:
        raise QuerySyntaxError(str(exc), bound.position) from None


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Every event a query can match has `start <= timestamp <= end` (`None`: unbounded on that side)."""

    start: datetime | None = None
    end: datetime | None = None


_UNBOUNDED = TimeWindow()


def time_window(node: Node, now: datetime) -> TimeWindow | None:
    """A window holding the timestamp of every event `node` can match, or `None` if it matches none.

    Conservative (exclusive bounds are widened to inclusive, OR takes the hull, NOT is unbounded), so it
    is safe for choosing the partitions or indices to search, never for filtering.
    """
    if isinstance(node, MatchNone):
        return None
    if isinstance(node, TimeRange):
        start = resolve_time(node.lower, now) if node.lower is not None else None
        end = resolve_time(node.upper, now) if node.upper is not None else None
        if start is not None and end is not None and start > end:
            return None
        return TimeWindow(start, end)
    if isinstance(node, And):
        window = _UNBOUNDED
        for clause in node.clauses:
            inner = time_window(clause, now)
            if inner is None:
                return None
            window = _intersection(window, inner)
            if window is None:
                return None
        return window
    if isinstance(node, Or):
        windows = [window for clause in node.clauses if (window := time_window(clause, now)) is not None]
        if not windows:
            return None
        starts = [window.start for window in windows]
        ends = [window.end for window in windows]
        return TimeWindow(
            None if None in starts else min(start for start in starts if start is not None),
            None if None in ends else max(end for end in ends if end is not None),
        )
    if isinstance(node, Not):
        return _UNBOUNDED
    return _UNBOUNDED


def _intersection(left: TimeWindow, right: TimeWindow) -> TimeWindow | None:
    starts = [moment for moment in (left.start, right.start) if moment is not None]
    ends = [moment for moment in (left.end, right.end) if moment is not None]
    start = max(starts) if starts else None
    end = min(ends) if ends else None
    if start is not None and end is not None and start > end:
        return None
    return TimeWindow(start, end)
