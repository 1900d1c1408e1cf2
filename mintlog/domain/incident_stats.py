"""Incident reports: counts, MTTA and MTTR (p50/p90) per group, computed from timelines. Pure code, no I/O.

For one incident, time to acknowledge is from its `triggered` entry to its first `acknowledged` entry, time to
resolve from `triggered` to its `resolved` entry (an incident re-triggered by an acknowledgement timeout keeps
its first acknowledgement). Percentiles are nearest-rank over the incidents of a group that have the time; a
group without any has null. Groups:

| group_by | key |
|---|---|
| `service` | the incident's `service` label (`""` when none) |
| `rule` | its alert rule (uptime incidents and hand-made ones: `""`) |
| `monitor` | its uptime monitor (`monitor_id` label; `""` for others) |
| `policy` | the escalation policy that ran (`escalation_started` entry; `""` when none) |
| `person` | who acknowledged it (`person:<id>` actors of one-click links, key prefixes of API calls; `""`) |
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Literal

import msgspec

from mintlog.domain.incidents import Incident, TimelineEntry

__all__ = ["GROUP_BYS", "GroupBy", "IncidentGroupStats", "group_key", "incident_stats", "percentile"]

GroupBy = Literal["service", "rule", "monitor", "policy", "person"]
GROUP_BYS: tuple[GroupBy, ...] = ("service", "rule", "monitor", "policy", "person")


class IncidentGroupStats(msgspec.Struct, frozen=True, kw_only=True):
    """One group's numbers; times in seconds."""

    key: str
    count: int
    acknowledged: int
    resolved: int
    mtta_p50_seconds: float | None
    mtta_p90_seconds: float | None
    mttr_p50_seconds: float | None
    mttr_p90_seconds: float | None


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile of `values` (None when empty): the smallest value with at least `fraction`
    of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def _first(timeline: Iterable[TimelineEntry], event_type: str) -> TimelineEntry | None:
    return next((entry for entry in timeline if entry.event_type == event_type), None)


def group_key(incident: Incident, timeline: Sequence[TimelineEntry], group_by: GroupBy) -> str:
    """The group an incident falls in (see the module)."""
    if group_by == "service":
        return incident.labels.get("service", "")
    if group_by == "monitor":
        return incident.labels.get("monitor_id", "") if incident.labels.get("source") == "uptime" else ""
    if group_by == "rule":
        return "" if incident.labels.get("source") == "uptime" else incident.rule_id or ""
    if group_by == "policy":
        started = _first(timeline, "escalation_started")
        return "" if started is None else str(started.data.get("policy_id", ""))
    acknowledged = _first(timeline, "acknowledged")
    return "" if acknowledged is None else acknowledged.actor


def _seconds(start: TimelineEntry | None, end: TimelineEntry | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end.occurred_at - start.occurred_at).total_seconds())


def incident_stats(
    incidents: Iterable[tuple[Incident, Sequence[TimelineEntry]]], group_by: GroupBy
) -> list[IncidentGroupStats]:
    """The numbers of each group, ordered by count (most first), then key."""
    counts: dict[str, int] = {}
    ttas: dict[str, list[float]] = {}
    ttrs: dict[str, list[float]] = {}
    for incident, timeline in incidents:
        key = group_key(incident, timeline, group_by)
        counts[key] = counts.get(key, 0) + 1
        triggered = _first(timeline, "triggered")
        tta = _seconds(triggered, _first(timeline, "acknowledged"))
        ttr = _seconds(triggered, _first(timeline, "resolved"))
        if tta is not None:
            ttas.setdefault(key, []).append(tta)
        if ttr is not None:
            ttrs.setdefault(key, []).append(ttr)
    return [
        IncidentGroupStats(
            key=key,
            count=count,
            acknowledged=len(ttas.get(key, [])),
            resolved=len(ttrs.get(key, [])),
            mtta_p50_seconds=percentile(ttas.get(key, []), 0.5),
            mtta_p90_seconds=percentile(ttas.get(key, []), 0.9),
            mttr_p50_seconds=percentile(ttrs.get(key, []), 0.5),
            mttr_p90_seconds=percentile(ttrs.get(key, []), 0.9),
        )
        for key, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]
