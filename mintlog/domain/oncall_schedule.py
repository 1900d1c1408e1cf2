"""On-call schedules: layers of rotations, restrictions and overrides, and the final shifts they render.

A schedule has a time zone and ordered layers; the **later** a layer is in the list, the higher it is, and a
higher layer wins wherever it has someone on call. Each layer is a rotation: its participants take turns in
order (a person may appear several times), turn `k` starting at the `k`-th hand-off after `rotation_start`.
Overrides (person X covers `[start, end)`) sit above every layer; where overrides overlap, the one created
last wins.

Guarantees:
- **Wall-clock hand-offs.** `daily` and `weekly` turns hand off at the local time of `rotation_start` in the
  schedule's zone on every day/week, on both sides of a DST change (a daily turn is then 23 or 25 hours long);
  a hand-off time that does not exist that day (a spring-forward gap) is read with the offset before the gap,
  as RFC 5545 does (02:30 in a 02:00-03:00 gap is 03:30); an ambiguous one (fall-back) is its first
  occurrence. `hourly` and `custom` turns are exact durations
  (3,600 s and `turn_seconds`).
- **Nobody before the start.** A layer has nobody on call before its `rotation_start`.
- **Restrictions** (`{"start": "HH:MM", "end": "HH:MM", "days": [...]}`, local times of the schedule's zone)
  limit a layer to those hours of those days: a turn still hands off at its hand-off times, its person is on
  call only inside the restrictions. `end` before `start` wraps past midnight (22:00-06:00 starts on each day
  listed and ends the next morning); `end` equal to `start` is refused; `24:00` is the end of the day.
- **Bounded work.** `render_shifts` computes only the turns and restriction ranges that meet the window (the
  turn at an instant is found by arithmetic, never by walking the history), so its cost grows with the window
  and the overrides in it, not with the schedule's age.
- **Merged output.** Final shifts are ordered, never overlap, and adjacent shifts of the same person are one.
"""

from __future__ import annotations

import functools
import heapq
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from dateutil import tz
from msgspec import Meta

from mintlog.errors import UnprocessableEntity

__all__ = [
    "DAYS",
    "MAX_LAYERS",
    "MAX_PARTICIPANTS",
    "MAX_RESTRICTIONS",
    "Layer",
    "OverrideSpan",
    "Restriction",
    "ScheduleSpec",
    "Shift",
    "TurnLength",
    "known_zone",
    "on_call_at",
    "render_layer",
    "render_shifts",
    "validate_schedule",
]

TurnLength = Literal["hourly", "daily", "weekly", "custom"]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_LAYERS = 20
MAX_PARTICIPANTS = 100
MAX_RESTRICTIONS = 20
_MIN_CUSTOM_TURN_SECONDS = 60
_MAX_CUSTOM_TURN_SECONDS = 366 * 86400

_TimeOfDay = Annotated[
    str, Meta(pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$", description="HH:MM, 24:00 ends the day")
]
_PersonId = Annotated[str, Meta(min_length=1, max_length=40)]
_Name = Annotated[str, Meta(max_length=200)]


class Restriction(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Hours of the listed days (local times of the schedule's zone) when a layer's person is on call."""

    start: _TimeOfDay
    end: _TimeOfDay
    days: Annotated[list[Day], Meta(min_length=1, max_length=7)] = msgspec.field(default_factory=lambda: list(DAYS))


class Layer(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One rotation: `participants` take turns of `turn` length from `rotation_start` (local, schedule zone)."""

    participants: Annotated[list[_PersonId], Meta(max_length=MAX_PARTICIPANTS)]
    turn: TurnLength
    rotation_start: datetime
    turn_seconds: int | None = None
    restrictions: Annotated[list[Restriction], Meta(max_length=MAX_RESTRICTIONS)] = msgspec.field(
        default_factory=lambda: []
    )
    name: _Name = ""


class ScheduleSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a user sets on a schedule (the body of a create): layers from lowest to highest."""

    name: Annotated[str, Meta(min_length=1, max_length=200)]
    time_zone: Annotated[str, Meta(min_length=1, max_length=64)]
    layers: Annotated[list[Layer], Meta(max_length=MAX_LAYERS)]
    description: Annotated[str, Meta(max_length=2000)] = ""


class Shift(msgspec.Struct, frozen=True, kw_only=True):
    """`person_id` is on call in `[start, end)` (UTC)."""

    person_id: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class OverrideSpan:
    """An override as rendering needs it: who covers `[start, end)`, and its creation order (later wins)."""

    person_id: str
    start: datetime
    end: datetime
    created_at: datetime
    override_id: str = ""


def _invalid(field: str, detail: str) -> UnprocessableEntity:
    return UnprocessableEntity(f"invalid body: {detail}", code="validation_failed", extra={"field": field})


def known_zone(name: str, field: str = "time_zone") -> ZoneInfo:
    """The IANA zone `name`; a 422 naming `field` when there is no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _invalid(field, f"`{field}` is not a known IANA time zone: {name!r}") from None


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def validate_schedule(spec: ScheduleSpec, known_people: Iterable[str]) -> None:
    """Raise a 422 naming the first bad member: an unknown zone, a layer without participants, a participant
    who is not one of `known_people`, a custom turn without a sane `turn_seconds` (or a non-custom one with
    one), an aware `rotation_start`, or a restriction whose end equals its start."""
    known_zone(spec.time_zone)
    people = set(known_people)
    if not spec.layers:
        raise _invalid("layers", "a schedule needs at least one layer")
    for index, layer in enumerate(spec.layers):
        where = f"layers[{index}]"
        if not layer.participants:
            raise _invalid(f"{where}.participants", "a rotation needs at least one participant")
        for position, person_id in enumerate(layer.participants):
            if person_id not in people:
                raise _invalid(f"{where}.participants[{position}]", f"no person {person_id!r} in this tenant")
        if layer.turn == "custom":
            if layer.turn_seconds is None:
                raise _invalid(f"{where}.turn_seconds", "a custom turn needs `turn_seconds`")
            if not _MIN_CUSTOM_TURN_SECONDS <= layer.turn_seconds <= _MAX_CUSTOM_TURN_SECONDS:
                raise _invalid(
                    f"{where}.turn_seconds",
                    f"`turn_seconds` must be {_MIN_CUSTOM_TURN_SECONDS} to {_MAX_CUSTOM_TURN_SECONDS}",
                )
        elif layer.turn_seconds is not None:
            raise _invalid(f"{where}.turn_seconds", "`turn_seconds` is only for `custom` turns")
        if layer.rotation_start.tzinfo is not None:
            raise _invalid(
                f"{where}.rotation_start",
                "`rotation_start` is a local date-time of the schedule's time zone, without an offset",
            )
        for position, restriction in enumerate(layer.restrictions):
            if restriction.start == "24:00":
                raise _invalid(f"{where}.restrictions[{position}].start", "a restriction starts at 23:59 at the latest")
            if restriction.start == restriction.end:
                raise _invalid(
                    f"{where}.restrictions[{position}].end",
                    "a restriction's end must differ from its start (a whole day is 00:00-24:00)",
                )


# --- rendering -------------------------------------------------------------------------------------------------

_Span = tuple[datetime, datetime, str]
"""(start, end, person_id), UTC, start < end."""


@functools.lru_cache(maxsize=8192)
def _utc(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a naive local time: its first occurrence when ambiguous, moved on by the gap's length
    when it does not exist (dateutil's `resolve_imaginary`)."""
    return tz.resolve_imaginary(wall.replace(tzinfo=zone, fold=0)).astimezone(UTC)


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


@dataclass(frozen=True, slots=True)
class _Rotation:
    """The hand-offs of one layer: turn `k` starts at `start(k)`."""

    layer: Layer
    zone: ZoneInfo

    def _step(self) -> timedelta:
        turn = self.layer.turn
        if turn == "daily":
            return timedelta(days=1)
        if turn == "weekly":
            return timedelta(days=7)
        if turn == "hourly":
            return timedelta(hours=1)
        return timedelta(seconds=self.layer.turn_seconds or _MIN_CUSTOM_TURN_SECONDS)

    @property
    def wall_clock(self) -> bool:
        return self.layer.turn in ("daily", "weekly")

    def start(self, turn: int) -> datetime:
        step = self._step()
        if self.wall_clock:
            return _utc(self.layer.rotation_start + turn * step, self.zone)
        return _utc(self.layer.rotation_start, self.zone) + turn * step

    def turn_at(self, instant: datetime) -> int:
        """The turn running at `instant` (negative before the rotation starts)."""
        step = self._step()
        if self.wall_clock:
            turn = (_wall(instant, self.zone) - self.layer.rotation_start) // step
        else:
            turn = (instant - _utc(self.layer.rotation_start, self.zone)) // step
        # Around a DST change the wall-clock estimate can be one off: settle it against the real hand-offs.
        while self.start(turn) > instant:
            turn -= 1
        while self.start(turn + 1) <= instant:
            turn += 1
        return turn


def _restricted_ranges(layer: Layer, zone: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The UTC ranges, merged and ordered, when the layer's restrictions allow someone on call in the window."""
    ranges: list[tuple[datetime, datetime]] = []
    first_day = _wall(start, zone).date() - timedelta(days=1)
    last_day = _wall(end, zone).date()
    day = first_day
    while day <= last_day:
        weekday = DAYS[day.weekday()]
        for restriction in layer.restrictions:
            if weekday not in restriction.days:
                continue
            begin, finish = _minutes(restriction.start), _minutes(restriction.end)
            finish_day = day if finish > begin else day + timedelta(days=1)
            range_start = _utc(_at_minutes(day, begin), zone)
            range_end = _utc(_at_minutes(finish_day, finish), zone)
            if range_start < end and range_end > start:
                ranges.append((max(range_start, start), min(range_end, end)))
        day += timedelta(days=1)
    ranges.sort()
    merged: list[tuple[datetime, datetime]] = []
    for range_start, range_end in ranges:
        if merged and range_start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], range_end))
        else:
            merged.append((range_start, range_end))
    return merged


def _at_minutes(day: date, minutes: int) -> datetime:
    return datetime(day.year, day.month, day.day) + timedelta(minutes=minutes)


def _intersect(spans: list[_Span], ranges: list[tuple[datetime, datetime]]) -> list[_Span]:
    out: list[_Span] = []
    span_index = range_index = 0
    while span_index < len(spans) and range_index < len(ranges):
        span_start, span_end, person = spans[span_index]
        range_start, range_end = ranges[range_index]
        low, high = max(span_start, range_start), min(span_end, range_end)
        if low < high:
            out.append((low, high, person))
        if span_end <= range_end:
            span_index += 1
        else:
            range_index += 1
    return out


def render_layer(layer: Layer, zone: ZoneInfo, start: datetime, end: datetime) -> list[_Span]:
    """The layer's turns in `[start, end)`, restrictions applied, ordered (UTC)."""
    if not layer.participants or start >= end:
        return []
    allowed = _restricted_ranges(layer, zone, start, end) if layer.restrictions else None
    if allowed == []:
        return []
    rotation = _Rotation(layer, zone)
    if rotation.start(0) >= end:
        return []
    turn = max(rotation.turn_at(start), 0)
    spans: list[_Span] = []
    turn_start = rotation.start(turn)
    while turn_start < end:
        turn_end = rotation.start(turn + 1)
        low, high = max(turn_start, start), min(turn_end, end)
        if low < high:
            spans.append((low, high, layer.participants[turn % len(layer.participants)]))
        turn, turn_start = turn + 1, turn_end
    return spans if allowed is None else _intersect(spans, allowed)


def _overlay(base: list[_Span], top: list[_Span]) -> list[_Span]:
    """`top` wherever it has someone, `base` elsewhere (both ordered and non-overlapping)."""
    if not top:
        return base
    out: list[_Span] = []
    top_index = 0
    for base_start, base_end, person in base:
        cursor = base_start
        while top_index < len(top) and top[top_index][1] <= cursor:
            top_index += 1
        index = top_index
        while index < len(top) and top[index][0] < base_end:
            top_start, top_end, _ = top[index]
            if top_start > cursor:
                out.append((cursor, top_start, person))
            cursor = max(cursor, top_end)
            index += 1
        if cursor < base_end:
            out.append((cursor, base_end, person))
    out.extend(top)
    out.sort()
    return out


def _resolve_overrides(overrides: Sequence[OverrideSpan], start: datetime, end: datetime) -> list[_Span]:
    """The overrides meeting the window as non-overlapping spans: where several overlap, the latest created."""
    inside = [item for item in overrides if item.start < end and item.end > start]
    if not inside:
        return []
    inside.sort(key=lambda item: (item.created_at, item.override_id))
    bounds = sorted({max(item.start, start) for item in inside} | {min(item.end, end) for item in inside})
    by_start = sorted(range(len(inside)), key=lambda rank: inside[rank].start)
    active: list[tuple[int, datetime]] = []  # (-rank, end): the latest created on top
    spans: list[_Span] = []
    next_index = 0
    for low, high in itertools.pairwise(bounds):
        while next_index < len(by_start) and inside[by_start[next_index]].start <= low:
            rank = by_start[next_index]
            heapq.heappush(active, (-rank, inside[rank].end))
            next_index += 1
        while active and active[0][1] <= low:
            heapq.heappop(active)
        if active:
            spans.append((low, high, inside[-active[0][0]].person_id))
    return spans


def _merged(spans: list[_Span]) -> list[Shift]:
    shifts: list[Shift] = []
    for span_start, span_end, person in spans:
        if shifts and shifts[-1].person_id == person and shifts[-1].end == span_start:
            shifts[-1] = Shift(person_id=person, start=shifts[-1].start, end=span_end)
        else:
            shifts.append(Shift(person_id=person, start=span_start, end=span_end))
    return shifts


def render_shifts(spec: ScheduleSpec, overrides: Sequence[OverrideSpan], start: datetime, end: datetime) -> list[Shift]:
    """The final shifts of `[start, end)` (aware datetimes; answered in UTC): layers from lowest to highest,
    then the overrides, adjacent shifts of one person merged. Gaps are times nobody is on call."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if start >= end:
        return []
    zone = known_zone(spec.time_zone)
    final: list[_Span] = []
    for layer in spec.layers:
        final = _overlay(final, render_layer(layer, zone, start, end))
    final = _overlay(final, _resolve_overrides(overrides, start, end))
    return _merged(final)


def on_call_at(spec: ScheduleSpec, overrides: Sequence[OverrideSpan], at: datetime) -> str | None:
    """The person on call at the instant `at`, or None: what `render_shifts` says of that instant, found by
    looking at the overrides, then at the layers from the highest down, stopping at the first with someone."""
    at = at.astimezone(UTC)
    covering = [item for item in overrides if item.start <= at < item.end]
    if covering:
        return max(covering, key=lambda item: (item.created_at, item.override_id)).person_id
    zone = known_zone(spec.time_zone)
    instant_end = at + timedelta(microseconds=1)
    for layer in reversed(spec.layers):
        spans = render_layer(layer, zone, at, instant_end)
        if spans:
            return spans[0][2]
    return None
