"""Time expressions in API requests: RFC 3339 timestamps or `now`, `now-15m`, `now+1h`, `now-7d`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = ["parse_time_expression"]

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
    """An aware UTC datetime; raises ValueError with a readable reason when `text` is neither form.

    A timestamp without an offset is taken as UTC.
    """
    value = text.strip()
    match = _RELATIVE.match(value)
    if match is not None:
        sign, amount, unit = match.groups()
        if sign is None:
            return now
        try:
            delta = _UNITS[unit] * int(amount)
            return now + delta if sign == "+" else now - delta
        except OverflowError:
            raise ValueError(f"{text!r} is out of range") from None
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise ValueError(f"{text!r} is not an RFC 3339 time or a relative time such as now-15m") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
