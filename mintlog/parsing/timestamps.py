"""Timestamps: explicit values (`parse_timestamp`) and the formats real systems write at the start of a line
(`match_time_format`, used by `mintlog.parsing.detect`).

Every result is an aware UTC datetime with microsecond precision. A time written without a zone is a wall
time in the tenant's zone (`TimeContext.zone`, UTC by default): an ambiguous wall time (the hour repeated
when clocks go back) is the first of the two, and a wall time in the hour skipped when clocks go forward
takes the offset in force before the change (Python's `zoneinfo` with `fold=0`).

A format without a year (syslog `Dec 10 06:55:46`, Android `03-17 16:13:38.811`, glog, Proxifier) takes the
latest year that does not put the time more than one day after the arrival time (`TimeContext.received_at`):
a line read on January 1st that says `Dec 31 23:59:59` is from the year before. A format without a date
(`10:12:01.123`) takes the latest day that does not put it more than one hour after the arrival time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from email.utils import parsedate_to_datetime
from typing import Any, cast

__all__ = [
    "EPOCH_RANGE_START",
    "TimeContext",
    "TimeMatch",
    "as_utc",
    "from_epoch",
    "match_time_format",
    "parse_timestamp",
    "parse_with_format",
    "search_bracketed_clf",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECONDS_FROM = 10**11
_MICROSECONDS_FROM = 10**14
_NANOSECONDS_FROM = 10**17
_UTC_SUFFIXES = frozenset((" UTC", " GMT"))

EPOCH_RANGE_START = datetime(2000, 1, 1, tzinfo=UTC)
"""An epoch number found in a text line counts as a time only from this instant to a day after arrival."""

_YEAR_AHEAD = timedelta(days=1)
_DAY_AHEAD = timedelta(hours=1)
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_MONTH = r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_WEEKDAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"


@dataclass(frozen=True, slots=True)
class TimeContext:
    """What a time without a zone, a year or a date is relative to: the tenant's zone and the arrival time."""

    received_at: datetime
    """When ingest accepted the event (aware, UTC)."""
    zone: tzinfo = UTC
    """The tenant's zone for wall times without an offset."""


@dataclass(frozen=True, slots=True)
class TimeMatch:
    """A timestamp found in a line: the instant, the name of its format, and where its text ends."""

    moment: datetime
    format: str
    end: int


def as_utc(moment: datetime, zone: tzinfo = UTC) -> datetime:
    """`moment` in UTC; a naive `moment` is a wall time in `zone`."""
    current = moment.tzinfo
    if current is UTC:
        return moment
    if current is None:
        if zone is UTC:
            return moment.replace(tzinfo=UTC)
        return moment.replace(tzinfo=zone).astimezone(UTC)
    return moment.astimezone(UTC)


def parse_timestamp(value: str | float, context: TimeContext | None = None) -> datetime | None:
    """The aware UTC datetime an explicit timestamp value stands for, or `None` when it cannot be read as one.

    Numbers, and strings holding only a number, are Unix epochs whose unit follows from the magnitude
    (`from_epoch`). Strings are ISO 8601 / RFC 3339 and their common variants, RFC 2822, Apache/NCSA dates,
    and, given a `context`, every line format of `match_time_format` when it is the whole string (syslog
    `Dec 10 06:55:46`, HDFS `081109 203615`, …). A time without an offset is a wall time in `context.zone`
    (UTC without a context).
    """
    zone = UTC if context is None else context.zone
    try:
        if not isinstance(value, str):
            return from_epoch(value)
        parsed = _parse_text(value)
        if parsed is None:
            if context is None:
                return None
            text = value.strip()
            found = match_time_format(text, 0, context)
            return found.moment if found is not None and found.end == len(text) else None
        return as_utc(parsed, zone)
    except (ValueError, OverflowError, OSError):
        return None


def from_epoch(number: float) -> datetime:
    """The UTC time of a Unix epoch in s, ms, µs or ns (below 1e11 seconds, below 1e14 milliseconds, below
    1e17 microseconds, else nanoseconds); raises `ValueError`/`OverflowError` when out of range.

    Integers are converted exactly (positional `timedelta` arguments are the fast ones).
    """
    magnitude = abs(number)
    if number.__class__ is int:
        if magnitude < _MILLISECONDS_FROM:
            return _EPOCH + timedelta(0, number)
        if magnitude < _MICROSECONDS_FROM:
            return _EPOCH + timedelta(0, 0, number * 1000)
        if magnitude < _NANOSECONDS_FROM:
            return _EPOCH + timedelta(0, 0, number)
        return _EPOCH + timedelta(0, 0, int(number) // 1000)
    if magnitude < _MILLISECONDS_FROM:
        return _EPOCH + timedelta(0, number)
    if magnitude < _MICROSECONDS_FROM:
        return _EPOCH + timedelta(0, 0, number * 1000)
    if magnitude < _NANOSECONDS_FROM:
        return _EPOCH + timedelta(0, 0, number)
    return _EPOCH + timedelta(0, 0, number // 1000)


def _parse_text(text: str) -> datetime | None:
    """Read an explicit timestamp string; raises `ValueError`/`OverflowError` for numbers out of range."""
    if text.isdigit() and text.isascii():
        return from_epoch(int(text))
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return _parse_uncommon_text(text)


def _parse_uncommon_text(text: str) -> datetime | None:
    stripped = text.strip()
    if stripped != text:
        return _parse_text(stripped) if stripped else None
    if text[-4:] in _UTC_SUFFIXES:
        parsed = _parse_text(text[:-4])
        return None if parsed is None else as_utc(parsed)
    if "t" in text or "z" in text:
        try:
            return datetime.fromisoformat(text.upper())
        except ValueError:
            pass
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return from_epoch(number)
    if len(text) >= 10 and text[4] == "/" and text[7] == "/":
        try:
            return datetime.fromisoformat(text.replace("/", "-", 2))
        except ValueError:
            return None
    if len(text) >= 20 and text[2] == "/" and text[6] == "/":
        try:
            return datetime.strptime(text, "%d/%b/%Y:%H:%M:%S %z")
        except ValueError:
            return None
    if text[:1].isalpha():
        try:
            return parsedate_to_datetime(text)
        except (ValueError, TypeError, IndexError):
            return None
    return None


# --- line formats --------------------------------------------------------------------------------------------


def _fraction_micros(digits: str | None) -> int:
    """Microseconds of a fraction of a second written with any number of digits (extra digits truncated)."""
    if not digits:
        return 0
    return int(digits[:6].ljust(6, "0"))


def _wall(
    context: TimeContext, year: int, month: int, day: int, hour: int, minute: int, second: int, micros: int
) -> datetime | None:
    try:
        return as_utc(datetime(year, month, day, hour, minute, second, micros), context.zone)
    except ValueError:
        return None


def _without_year(
    context: TimeContext, month: int, day: int, hour: int, minute: int, second: int, micros: int
) -> datetime | None:
    """The latest year that puts the wall time at most a day after arrival (see the module docstring)."""
    latest = context.received_at + _YEAR_AHEAD
    arrival_year = context.received_at.astimezone(context.zone).year
    for year in range(arrival_year + 1, arrival_year - 8, -1):  # back to a leap year for February 29
        moment = _wall(context, year, month, day, hour, minute, second, micros)
        if moment is not None and moment <= latest:
            return moment
    return None


def _without_date(context: TimeContext, hour: int, minute: int, second: int, micros: int) -> datetime | None:
    """The latest day that puts the wall time at most an hour after arrival (see the module docstring)."""
    latest = context.received_at + _DAY_AHEAD
    arrival_day = context.received_at.astimezone(context.zone).date()
    for offset in (1, 0, -1):
        day = arrival_day + timedelta(days=offset)
        moment = _wall(context, day.year, day.month, day.day, hour, minute, second, micros)
        if moment is not None and moment <= latest:
            return moment
    return None


def _offset(text: str | None) -> timedelta | None:
    """The offset of `Z`, `UTC`, `GMT`, `+01`, `+0100` or `+01:00`; None when `text` is None (no zone)."""
    if text is None:
        return None
    if text[0] not in "+-":
        return timedelta(0)
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    magnitude = timedelta(hours=hours, minutes=minutes)
    return -magnitude if text[0] == "-" else magnitude


def _zoned(
    context: TimeContext,
    zone_text: str | None,
    year: int,
    month: int,
    day: int,
    hour: int,
    minute: int,
    second: int,
    micros: int,
) -> datetime | None:
    offset = _offset(zone_text)
    if offset is None:
        return _wall(context, year, month, day, hour, minute, second, micros)
    try:
        return datetime(year, month, day, hour, minute, second, micros, tzinfo=UTC) - offset
    except (ValueError, OverflowError):
        return None


_Groups = tuple[Any, ...]
_Builder = Callable[[_Groups, TimeContext], "datetime | None"]
_ZONE = r"(?:\s?(Z|z|UTC|GMT|[+-]\d\d(?::?\d\d)?)(?![\w:]))?"
_SECONDS_FRACTION = r"(?:[.,](\d{1,9}))?"


def _iso(groups: _Groups, context: TimeContext) -> datetime | None:
    year, month, day, hour, minute, second, fraction, zone = groups
    return _zoned(
        context,
        zone,
        int(year),
        int(month),
        int(day),
        int(hour),
        int(minute),
        int(second or 0),
        _fraction_micros(fraction),
    )


def _full_date(groups: _Groups, context: TimeContext) -> datetime | None:
    """Groups: year (2 or 4 digits), month, day, hour, minute, second, fraction; a wall time."""
    year, month, day, hour, minute, second, fraction = groups
    full_year = int(year) + (2000 if len(year) == 2 else 0)
    return _wall(
        context, full_year, int(month), int(day), int(hour), int(minute), int(second), _fraction_micros(fraction)
    )


def _healthapp(groups: _Groups, context: TimeContext) -> datetime | None:
    year, month, day, hour, minute, second, millis = groups
    micros = int(millis) * 1000 if millis else 0
    return _wall(context, int(year), int(month), int(day), int(hour), int(minute), int(second), micros)


def _month_day(groups: _Groups, context: TimeContext) -> datetime | None:
    """Groups: month (digits), day, hour, minute, second, fraction; the year is inferred."""
    month, day, hour, minute, second, fraction = groups
    return _without_year(context, int(month), int(day), int(hour), int(minute), int(second), _fraction_micros(fraction))


def _syslog(groups: _Groups, context: TimeContext) -> datetime | None:
    month, day, hour, minute, second, fraction = groups
    return _without_year(
        context, _MONTHS[month], int(day), int(hour), int(minute), int(second), _fraction_micros(fraction)
    )


def _time_only(groups: _Groups, context: TimeContext) -> datetime | None:
    hour, minute, second, fraction = groups
    return _without_date(context, int(hour), int(minute), int(second), _fraction_micros(fraction))


def _day_month_name_year(groups: _Groups, context: TimeContext) -> datetime | None:
    """Groups: day, month name, year, hour, minute, second, fraction, zone (CLF, Tomcat, Redis)."""
    day, month, year, hour, minute, second, fraction, zone = groups
    return _zoned(
        context,
        zone or None,
        int(year),
        _MONTHS[month],
        int(day),
        int(hour),
        int(minute),
        int(second),
        _fraction_micros(fraction),
    )


def _ctime(groups: _Groups, context: TimeContext) -> datetime | None:
    month, day, hour, minute, second, fraction, year = groups
    return _wall(
        context, int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second), _fraction_micros(fraction)
    )


def _rfc2822(groups: _Groups, context: TimeContext) -> datetime | None:
    day, month, year, hour, minute, second, zone = groups
    return _zoned(context, zone, int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second), 0)


def _epoch(groups: _Groups, context: TimeContext) -> datetime | None:
    digits, fraction = groups
    try:
        moment = from_epoch(float(f"{digits}.{fraction}")) if fraction else from_epoch(int(digits))
    except (ValueError, OverflowError):
        return None
    if moment < EPOCH_RANGE_START or moment > context.received_at + _YEAR_AHEAD:
        return None
    return moment


@dataclass(frozen=True, slots=True)
class _Format:
    name: str
    pattern: re.Pattern[str]
    build: _Builder


def _format(name: str, pattern: str, build: _Builder) -> _Format:
    return _Format(name, re.compile(pattern), build)


_ISO = _format(
    "iso8601",
    r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d)(?::(\d\d)" + _SECONDS_FRACTION + r")?" + _ZONE + r"(?![\d.])",
    _iso,
)
_DIGIT_FORMATS = (
    _ISO,
    _format(
        "yyyy/MM/dd HH:mm:ss",
        r"(\d{4})/(\d\d)/(\d\d)[ T](\d\d):(\d\d):(\d\d)" + _SECONDS_FRACTION + r"(?!\d)",
        _full_date,
    ),
    _format(
        "yyyy-MM-dd-HH.mm.ss.SSSSSS", r"(\d{4})-(\d\d)-(\d\d)-(\d\d)\.(\d\d)\.(\d\d)(?:\.(\d{1,9}))?(?!\d)", _full_date
    ),
    _format("yyyyMMdd-HH:mm:ss:SSS", r"(\d{4})(\d\d)(\d\d)-(\d\d):(\d\d):(\d\d)(?::(\d{1,3}))?(?!\d)", _healthapp),
    _format("yyMMdd HHmmss", r"(\d\d)(\d\d)(\d\d) (\d\d)(\d\d)(\d\d)(?![\d.:])()", _full_date),
    _format(
        "yy/MM/dd HH:mm:ss", r"(\d\d)/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d)" + _SECONDS_FRACTION + r"(?!\d)", _full_date
    ),
    _format("MM-dd HH:mm:ss.SSS", r"(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?!\d)", _month_day),
    _format(
        "dd-MMM-yyyy HH:mm:ss",
        rf"(\d\d)-{_MONTH}-(\d{{4}}) (\d\d):(\d\d):(\d\d)" + _SECONDS_FRACTION + r"()(?!\d)",
        _day_month_name_year,
    ),
    _format(
        "dd MMM yyyy HH:mm:ss",
        rf"(\d{{1,2}}) {_MONTH} (\d{{4}}) (\d\d):(\d\d):(\d\d)" + _SECONDS_FRACTION + r"()(?!\d)",
        _day_month_name_year,
    ),
    _format(
        "dd/MMM/yyyy:HH:mm:ss Z",
        rf"(\d\d)/{_MONTH}/(\d{{4}}):(\d\d):(\d\d):(\d\d)" + _SECONDS_FRACTION + r"(?: ([+-]\d{4}))?(?!\d)",
        _day_month_name_year,
    ),
    _format("epoch", r"(\d{10}|\d{13}|\d{16}|\d{19})(?:\.(\d{1,9}))?(?![\d.:/-])", _epoch),
    _format("HH:mm:ss", r"(\d\d):(\d\d):(\d\d)" + _SECONDS_FRACTION + r"(?![\d:])", _time_only),
)
_LETTER_FORMATS = (
    _format("rfc3164", _MONTH + r" {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?(?![\d:])", _syslog),
    _format(
        "ctime",
        _WEEKDAY + " " + _MONTH + r" {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))? (\d{4})(?!\d)",
        _ctime,
    ),
    _format(
        "rfc2822",
        _WEEKDAY + r", (\d{1,2}) " + _MONTH + r" (\d{4}) (\d\d):(\d\d):(\d\d) (GMT|UTC|[+-]\d{4})(?!\d)",
        _rfc2822,
    ),
)
_PROXIFIER = _format("MM.dd HH:mm:ss", r"(\d\d)\.(\d\d) (\d\d):(\d\d):(\d\d)()\]", _month_day)
_BY_FIRST_CHARACTER: dict[str, tuple[_Format, ...]] = {
    **dict.fromkeys("0123456789", _DIGIT_FORMATS),
    **dict.fromkeys("FJMADNOSTW", _LETTER_FORMATS),
}
_CLF = re.compile(rf"\[(\d\d)/{_MONTH}/(\d{{4}}):(\d\d):(\d\d):(\d\d)" + _SECONDS_FRACTION + r"(?: ([+-]\d{4}))?\]")
_CLF_SEARCH_CHARS = 120


def match_time_format(line: str, position: int, context: TimeContext) -> TimeMatch | None:
    """The timestamp written at `position` of `line` in one of the known line formats, or None.

    A timestamp in square brackets (`[2024-03-05 10:12:01]`, `[10/Oct/2000:13:55:36 -0700]`,
    `[Sun Dec 04 04:47:44 2005]`, Proxifier's `[10.30 16:49:06]`) ends after its `]`. Formats, by name:
    `iso8601` (`2024-03-05T10:12:01.123Z`, `2024-03-05 10:12:01,123`, a space or `T`, any fraction,
    `Z`/`UTC`/`GMT`/`±hh[:mm]` or no zone), `yyyy/MM/dd HH:mm:ss` (nginx error, Go), `yyyy-MM-dd-HH.mm.ss.SSSSSS`
    (BGL), `yyyyMMdd-HH:mm:ss:SSS` (HealthApp), `yyMMdd HHmmss` (HDFS), `yy/MM/dd HH:mm:ss` (Spark),
    `MM-dd HH:mm:ss.SSS` (Android), `dd-MMM-yyyy HH:mm:ss` (Tomcat), `dd MMM yyyy HH:mm:ss` (Redis),
    `dd/MMM/yyyy:HH:mm:ss Z` (Apache/nginx access), `epoch` (10, 13, 16 or 19 digits, seconds with an optional
    fraction), `HH:mm:ss` (a time alone), `rfc3164` (`Dec 10 06:55:46`), `ctime` (`Sun Dec 04 04:47:44 2005`),
    `rfc2822` (`Thu, 26 Nov 2026 10:00:00 GMT`) and `MM.dd HH:mm:ss` (Proxifier, bracketed only).
    """
    first = line[position : position + 1]
    if first == "[":
        inner = position + 1
        if line[inner : inner + 1].isdigit():
            found = _match_at(_PROXIFIER, line, inner, context)
            if found is not None:
                return found
        found = _first_format(line, inner, context)
        if found is None or line[found.end : found.end + 1] != "]":
            return None
        return TimeMatch(found.moment, found.format, found.end + 1)
    return _first_format(line, position, context)


def _first_format(line: str, position: int, context: TimeContext) -> TimeMatch | None:
    combined = _COMBINED.get(line[position : position + 1])
    if combined is None:
        return None
    pattern, formats, spans = combined
    match = pattern.match(line, position)
    if match is None:
        return None
    index = int(cast("str", match.lastgroup)[1:])
    start, end = spans[index]
    moment = formats[index].build(match.groups()[start:end], context)
    if moment is not None:
        return TimeMatch(moment, formats[index].name, match.end())
    for candidate in formats[index + 1 :]:  # a date that does not exist (month 13): try the formats after it
        found = _match_at(candidate, line, position, context)
        if found is not None:
            return found
    return None


def _combine(formats: Sequence[_Format]) -> tuple[re.Pattern[str], tuple[_Format, ...], tuple[tuple[int, int], ...]]:
    """One pattern trying `formats` in order; each branch is the named group `f<index>` around the format's own
    groups, whose slice of `match.groups()` is `spans[index]`."""
    spans: list[tuple[int, int]] = []
    branches: list[str] = []
    offset = 0
    for index, candidate in enumerate(formats):
        offset += 1  # the branch's own group
        spans.append((offset, offset + candidate.pattern.groups))
        offset += candidate.pattern.groups
        branches.append(f"(?P<f{index}>{candidate.pattern.pattern})")
    return re.compile("|".join(branches)), tuple(formats), tuple(spans)


_COMBINED = {first: _combine(formats) for first, formats in _BY_FIRST_CHARACTER.items()}


def _match_at(candidate: _Format, line: str, position: int, context: TimeContext) -> TimeMatch | None:
    match = candidate.pattern.match(line, position)
    if match is None:
        return None
    moment = candidate.build(match.groups(), context)
    return None if moment is None else TimeMatch(moment, candidate.name, match.end())


def search_bracketed_clf(line: str, context: TimeContext) -> TimeMatch | None:
    """An Apache/nginx access-log time (`[10/Oct/2000:13:55:36 -0700]`) within the first 120 characters,
    wherever it stands (the client address, identity and user come first)."""
    if "[" not in line[:_CLF_SEARCH_CHARS]:
        return None
    match = _CLF.search(line, 0, _CLF_SEARCH_CHARS)
    if match is None:
        return None
    moment = _day_month_name_year(match.groups(), context)
    return None if moment is None else TimeMatch(moment, "dd/MMM/yyyy:HH:mm:ss Z", match.end())


def parse_with_format(text: str, time_format: str, context: TimeContext) -> datetime | None:
    """`text` read with a strptime `time_format` (e.g. `%d.%m.%Y %H:%M:%S`); a result without an offset is a
    wall time in `context.zone`, and one without a year (strptime's 1900) takes the inferred year."""
    try:
        parsed = datetime.strptime(text, time_format)
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        return parsed.astimezone(UTC)
    if "%Y" not in time_format and "%y" not in time_format:
        return _without_year(
            context, parsed.month, parsed.day, parsed.hour, parsed.minute, parsed.second, parsed.microsecond
        )
    return as_utc(parsed, context.zone)
