"""SLA reports of one uptime monitor over a time window. Pure code, no I/O.

Definitions (what `GET /v1/uptime/monitors/{id}/sla?from&to` returns):

- **Time-weighted uptime.** Each check result's status holds from its time until the next result; the last one
  holds until `end`. The status at `start` is that of the last result *before* `start` when the caller passes
  one (callers pass at most one such point); without it, time before the first result inside the window is
  unknown and not counted. `uptime_percent = up / (up + down) * 100`, None when no second was counted.
- **Maintenance** time (results flagged `in_maintenance`, or the "maintenance" state) counts neither as up nor
  as down and is reported as `maintenance_seconds`.
- **Confirmed states win.** When `state_changes` are given, the up/down/maintenance timeline comes from them
  alone (so with confirmation N > 1, one failed check is not an outage); "paused" and "pending" time is not
  counted at all. Without `state_changes` the raw results make the timeline.
- An **outage** is a maximal run of down time inside the window (clipped to it); `mttr_seconds` is the mean
  duration of the outages that ended inside the window (one still down at `end` is left out).
- `checks`/`failed_checks` count the results inside `[start, end)` that were not in maintenance; the response
  percentiles are nearest-rank over their latencies (None when no result had one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import msgspec

__all__ = [
    "MonitorState",
    "ResponseTimes",
    "ResultPoint",
    "SlaReport",
    "StateChange",
    "sla_report",
]

MonitorState = Literal["up", "down", "maintenance", "paused", "pending"]
_Status = Literal["up", "down", "maintenance", "uncounted"]


class ResultPoint(msgspec.Struct, frozen=True, kw_only=True):
    """One check result: `ok` is its verdict, `latency_ms` its response time when it got one."""

    at: datetime
    ok: bool
    latency_ms: float | None
    in_maintenance: bool = False


class StateChange(msgspec.Struct, frozen=True, kw_only=True):
    """A confirmed state of the monitor, holding from `at` until the next change."""

    at: datetime
    state: MonitorState


class ResponseTimes(msgspec.Struct, frozen=True, kw_only=True):
    """Nearest-rank percentiles of the response times, in milliseconds."""

    p50: float
    p95: float
    p99: float


class SlaReport(msgspec.Struct, frozen=True, kw_only=True):
    """The SLA of one monitor over `[from, to)`; see the module docstring for each definition."""

    from_: datetime = msgspec.field(name="from")
    to: datetime
    uptime_percent: float | None
    downtime_seconds: float
    outages: int
    mttr_seconds: float | None
    checks: int
    failed_checks: int
    maintenance_seconds: float
    response_ms: ResponseTimes | None


@dataclass(frozen=True, slots=True)
class _Segment:
    begin: datetime
    end: datetime
    status: _Status

    @property
    def seconds(self) -> float:
        return (self.end - self.begin).total_seconds()


def sla_report(
    points: Sequence[ResultPoint],
    *,
    start: datetime,
    end: datetime,
    state_changes: Sequence[StateChange] = (),
) -> SlaReport:
    """The SLA over `[start, end)` from check results and, when given, confirmed state changes.

    Inputs need not be sorted. Raises ValueError when any datetime is naive or `end <= start`.
    """
    start, end = _aware(start, "start"), _aware(end, "end")
    if end <= start:
        raise ValueError("end must be after start")
    results = sorted(((_aware(p.at, "at"), p) for p in points), key=lambda item: item[0])
    changes: list[tuple[datetime, _Status]]
    if state_changes:
        changes = [(_aware(c.at, "at"), _state_status(c.state)) for c in state_changes]
        changes.sort(key=lambda change: change[0])
    else:
        changes = [(at, _result_status(p)) for at, p in results]
    segments = _segments(changes, start, end)

    up = sum(s.seconds for s in segments if s.status == "up")
    down = sum(s.seconds for s in segments if s.status == "down")
    maintenance = sum(s.seconds for s in segments if s.status == "maintenance")
    outages = _outages(segments)
    ended = [seconds for seconds, end_at in outages if end_at < end]

    counted = [p for at, p in results if start <= at < end and not p.in_maintenance]
    latencies = sorted(p.latency_ms for p in counted if p.latency_ms is not None)
    return SlaReport(
        from_=start,
        to=end,
        uptime_percent=up / (up + down) * 100 if up + down > 0 else None,
        downtime_seconds=down,
        outages=len(outages),
        mttr_seconds=sum(ended) / len(ended) if ended else None,
        checks=len(counted),
        failed_checks=sum(1 for p in counted if not p.ok),
        maintenance_seconds=maintenance,
        response_ms=_percentiles(latencies),
    )


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value.isoformat()}")
    return value.astimezone(UTC)


def _result_status(point: ResultPoint) -> _Status:
    if point.in_maintenance:
        return "maintenance"
    return "up" if point.ok else "down"


def _state_status(state: MonitorState) -> _Status:
    if state in ("up", "down", "maintenance"):
        return state
    return "uncounted"


def _segments(changes: Sequence[tuple[datetime, _Status]], start: datetime, end: datetime) -> list[_Segment]:
    """The timeline inside the window: each status holds until the next change, the last until `end`."""
    before: list[_Status] = [status for at, status in changes if at < start]
    timeline: list[tuple[datetime, _Status]] = []
    if before:
        timeline.append((start, before[-1]))
    timeline.extend((at, status) for at, status in changes if start <= at < end)
    segments: list[_Segment] = []
    for index, (at, status) in enumerate(timeline):
        until = timeline[index + 1][0] if index + 1 < len(timeline) else end
        if until > at:
            segments.append(_Segment(at, until, status))
    return segments


def _outages(segments: Sequence[_Segment]) -> list[tuple[float, datetime]]:
    """(duration, end) of each maximal run of adjacent down segments."""
    runs: list[tuple[float, datetime]] = []
    previous: _Segment | None = None
    for segment in segments:
        if segment.status == "down":
            if previous is not None and previous.status == "down" and previous.end == segment.begin:
                seconds, _ = runs[-1]
                runs[-1] = (seconds + segment.seconds, segment.end)
            else:
                runs.append((segment.seconds, segment.end))
        previous = segment
    return runs


def _percentiles(latencies: Sequence[float]) -> ResponseTimes | None:
    if not latencies:
        return None

    def rank(percent: int) -> float:
        return latencies[max(1, math.ceil(percent / 100 * len(latencies))) - 1]

    return ResponseTimes(p50=rank(50), p95=rank(95), p99=rank(99))
