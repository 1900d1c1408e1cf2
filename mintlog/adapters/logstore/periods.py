"""How both log stores split a tenant's events into partitions: by UTC day, or by UTC month for old events.

An event goes by its `timestamp` and its `received_at` (both fixed when the pipeline normalizes it, so a
redelivered event always lands in the same partition, where the store's create-only check finds it):

- on time: its UTC day is at most `LATE_DAYS` before the UTC day it was received (or after it) → the **day
  partition** of its day, named `YYYY-MM-DD`;
- old (imported history, a shipper's long backlog): earlier than that → the **month partition** of its UTC
  month *and* the UTC month it was received in, named `YYYY-MM@YYYY-MM` (`2019-03@2026-11`: events of
  March 2019 received in November 2026).

So live traffic keeps one partition per day, while 1,000 days of imported history make about 33 partitions
instead of 1,000 small ones (which cost 250-500x the search time and twice the bytes per event, see
docs/benchmarks.md). A month partition overlaps the day partitions of its month and the other month
partitions of that month; searches merge overlapping partitions exactly.

A partition bounds both times of its events, which is what retention needs (`expired`): its event days lie
in `[start, last]` and its receive days are at most `received_last`. It is dropped whole, and only once every
event in it is past retention by the tenant's basis; so no event is ever deleted early, and an event stays
at most one partition span (a day plus `LATE_DAYS`, or a month) longer than its retention.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

__all__ = [
    "LATE_DAYS",
    "Period",
    "expired",
    "first_of_month",
    "overlapping",
    "parse_period",
    "period_of",
    "visit_groups",
]

LATE_DAYS = 2
"""An event whose UTC day is more than this many days before its receive day goes to a month partition."""

_DAY_NAME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_MONTH_NAME = re.compile(r"([0-9]{4})-([0-9]{2})@([0-9]{4})-([0-9]{2})")


def first_of_month(day: date) -> date:
    """The first day of `day`'s month."""
    return day.replace(day=1)


def _last_of_month(first: date) -> date:
    return first.replace(day=calendar.monthrange(first.year, first.month)[1])


def _plus_days(day: date, days: int) -> date:
    """`day + days`, or the last representable day."""
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return date.max


@dataclass(frozen=True, slots=True)
class Period:
    """One partition's share of a tenant's events (see the module docstring).

    `start` is the first UTC day of its event times (a month's first day for a month partition);
    `received` is, for a month partition, the first day of the month its events were received in, and
    None for a day partition.
    """

    start: date
    received: date | None = None

    @property
    def monthly(self) -> bool:
        """Whether this is a month partition of old events."""
        return self.received is not None

    @property
    def last(self) -> date:
        """The last UTC day of its event times."""
        return _last_of_month(self.start) if self.received is not None else self.start

    @property
    def received_last(self) -> date:
        """The last UTC day its events can have been received on."""
        if self.received is not None:
            return _last_of_month(self.received)
        return _plus_days(self.start, LATE_DAYS)

    @property
    def name(self) -> str:
        """`YYYY-MM-DD` for a day partition, `YYYY-MM@YYYY-MM` (event month @ receive month) for a month one."""
        if self.received is None:
            return self.start.isoformat()
        return f"{self.start.year:04d}-{self.start.month:02d}@{self.received.year:04d}-{self.received.month:02d}"

    @property
    def sort_key(self) -> tuple[date, date]:
        """Oldest event times first; for the same month, the day partitions before the month ones."""
        return (self.start, self.received or date.min)

    def holds_day(self, day: date) -> bool:
        """Whether events of the UTC day `day` can be in this partition."""
        return self.start <= day <= self.last


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def period_of(timestamp: datetime, received_at: datetime) -> Period:
    """The partition of an event with these times (a naive datetime is taken to be UTC)."""
    day = _utc(timestamp).date()
    received_day = _utc(received_at).date()
    if (received_day - day).days <= LATE_DAYS:
        return Period(day)
    return Period(first_of_month(day), first_of_month(received_day))


def parse_period(name: str) -> Period | None:
    """The period named `name` (as `Period.name` writes it); None for any other name."""
    try:
        day = _DAY_NAME.fullmatch(name)
        if day is not None:
            return Period(date(int(day.group(1)), int(day.group(2)), int(day.group(3))))
        month = _MONTH_NAME.fullmatch(name)
        if month is not None:
            return Period(
                date(int(month.group(1)), int(month.group(2)), 1), date(int(month.group(3)), int(month.group(4)), 1)
            )
    except ValueError:
        return None
    return None


def overlapping(periods: Iterable[Period], first_day: date | None, last_day: date | None) -> list[Period]:
    """The periods holding some UTC day of `[first_day, last_day]` (`None`: unbounded), oldest first."""
    return sorted(
        (
            period
            for period in periods
            if (first_day is None or period.last >= first_day) and (last_day is None or period.start <= last_day)
        ),
        key=lambda period: period.sort_key,
    )


def visit_groups(periods: Iterable[Period], descending: bool) -> list[list[Period]]:
    """`periods` in the order a search visits them: groups of overlapping periods, newest group first when
    `descending`. Groups never overlap each other, so merging inside each group and concatenating the
    groups gives an exact `(timestamp, id)` order."""
    ordered = sorted(periods, key=lambda period: period.sort_key)
    groups: list[list[Period]] = []
    group_last = date.min
    for period in ordered:
        if groups and period.start <= group_last:
            groups[-1].append(period)
            group_last = max(group_last, period.last)
        else:
            groups.append([period])
            group_last = period.last
    return list(reversed(groups)) if descending else groups


def expired(period: Period, oldest_kept: date, basis: Literal["event_time", "received_at"]) -> bool:
    """Whether every event of `period` is past retention when `oldest_kept` is the first UTC day still kept.

    Basis `event_time`: the partition's event times all lie before `oldest_kept`; `received_at`: its events
    were all received before `oldest_kept`.
    """
    newest = period.last if basis == "event_time" else period.received_last
    return newest < oldest_kept
