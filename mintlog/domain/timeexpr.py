"""Time expressions in API requests: RFC 3339 timestamps or `now`, `now-15m`, `now+1h`, `now-7d`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = ["EARLIEST_TIME", "LATEST_TIME", "parse_time_expression"]

EARLIEST_TIME = datetime(1000, 1, 1, tzinfo=UTC)
"""The earliest time a request may name."""
LATEST_TIME = datetime(9999, 1, 1, tzinfo=UTC)
"""The latest time a request may name."""

_RELATIVE = re.compile(r"^now(?:([+-])(\d{1,9})(ms|s|m|h|d|w))?$")
_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}


def parse_time_expression(text: str, now: datetime) -> datetime:
    """An aware UTC datetime from `EARLIEST_TIME` to `LATEST_TIME`; raises ValueError with a readable reason
    when `text` is neither form or falls outside that range.

    A timestamp without an offset is taken as UTC. The range leaves centuries below and a year above, so that
    a default look-back, an hour or a day taken from or added to a bound is a time too.
    """
    value = text.strip()
    match = _RELATIVE.match(value)
    try:
        if match is not None:
            sign, amount, unit = match.groups()
            delta = _UNITS[unit] * int(amount) if sign is not None else timedelta(0)
            moment = now - delta if sign == "-" else now + delta
        else:
            try:
                parsed = datetime.fromisoformat(value.replace("z", "Z"))
            except ValueError:
                raise ValueError(f"{text!r} is not an RFC 3339 time or a relative time such as now-15m") from None
            moment = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:
        moment = None
    if moment is None or not EARLIEST_TIME <= moment <= LATEST_TIME:
        raise ValueError(
            f"{text!r} is out of range: times go from {EARLIEST_TIME:%Y-%m-%d} to {LATEST_TIME:%Y-%m-%d} (UTC)"
        )
    return moment
