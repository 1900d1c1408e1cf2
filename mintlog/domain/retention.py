"""Retention rules shared by ingest and the retention job. Pure code, no I/O.

- `retention_cutoff(now, days)`: the oldest UTC day a tenant keeps at `now` (the day of `now - days`).
- `TimeWindow`: for a tenant whose retention counts from event time (`retention_basis = "event_time"`), the
  oldest event time ingest accepts in a batch received at `received_at`: 00:00 UTC of
  `retention_cutoff(received_at, retention_days)`, the first instant the retention job would keep right
  then. An event whose explicit timestamp is older is refused (`too_old`) instead of being stored and then
  deleted by the next retention run. The timestamp is read exactly as the pipeline reads it (the same keys
  in the same priority, `mintlog.parsing.timestamps.parse_timestamp` with the tenant's zone and the batch's
  receive time), so an event passes here exactly when the pipeline would give it a time inside the window;
  an unreadable timestamp passes (the pipeline gives it `received_at`). Tenants with `retention_basis =
  "received_at"` keep every event for `retention_days` after it arrived, so nothing is too old for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from mintlog.domain.tenants import IngestTimePolicy, zone_named
from mintlog.domain.validation import TIMESTAMP_KEYS, TOO_OLD
from mintlog.parsing.timestamps import TimeContext, parse_timestamp

__all__ = ["TimeWindow", "retention_cutoff"]

# An ISO 8601 string whose date is at least this many days after the window's first day is inside the window
# whatever its offset (offsets are below 24 hours): no need to parse it.
_SURE_DAYS = 2


def retention_cutoff(now: datetime, retention_days: int) -> date:
    """The oldest UTC day kept at `now` for `retention_days`: the day of `now - retention_days`.

    Every earlier day ended at least `retention_days` before `now`, so dropping it deletes no younger event.
    Raises `ValueError` for a naive `now` or `retention_days` below 1.
    """
    if now.tzinfo is None:
        raise ValueError("retention needs a timezone-aware now")
    if retention_days < 1:
        raise ValueError(f"retention_days must be at least 1, not {retention_days}")
    return (now.astimezone(UTC) - timedelta(days=retention_days)).date()


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """The oldest event time accepted in one batch of one tenant (see the module docstring)."""

    oldest: datetime
    """00:00 UTC of the oldest day kept: an event before it is refused."""
    retention_days: int
    context: TimeContext
    sure_date: str
    """`YYYY-MM-DD`: an ISO 8601 timestamp whose date is this or later is inside the window."""

    @classmethod
    def of(cls, policy: IngestTimePolicy | None, received_at: datetime) -> TimeWindow | None:
        """The window of a batch received at `received_at` (aware); None when nothing can be too old (no
        known policy, or retention counted from `received_at`)."""
        if policy is None or policy.retention_basis != "event_time" or policy.retention_days < 1:
            return None
        received_utc = received_at.astimezone(UTC)
        first_day = retention_cutoff(received_utc, policy.retention_days)
        return cls(
            oldest=datetime.combine(first_day, time(), tzinfo=UTC),
            retention_days=policy.retention_days,
            context=TimeContext(received_utc, zone_named(policy.time_zone)),
            sure_date=(first_day + timedelta(days=_SURE_DAYS)).isoformat(),
        )

    def refusal(self, event: dict[str, Any]) -> str | None:
        """Why `event` (already valid) is refused, or None when its explicit timestamp is inside the window."""
        value = _explicit_timestamp(event)
        if value is None:
            return None
        if isinstance(value, str):
            text = value
            # The common case, a recent ISO 8601 time, is decided by comparing its date's text.
            if len(text) >= 10 and text[4] == "-" and text[7] == "-" and text[:10] >= self.sure_date:
                return None
        moment = parse_timestamp(value, self.context)
        if moment is None or moment >= self.oldest:
            return None
        return (
            f"`timestamp` is {TOO_OLD} of {self.retention_days} days (the oldest time kept now is "
            f"{self.oldest:%Y-%m-%dT%H:%M:%SZ}); to import older events, set the tenant's retention_basis to "
            "received_at"
        )


def _explicit_timestamp(event: dict[str, Any]) -> str | int | float | None:
    """The value the pipeline takes as the event's timestamp: the first timestamp key holding a non-empty
    string or a number (`mintlog.domain.normalize`)."""
    for key in TIMESTAMP_KEYS:
        value = event.get(key)
        value_class = value.__class__
        if (value_class is str and value) or value_class is int or value_class is float:
            return value
    return None
