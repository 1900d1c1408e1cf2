"""Troubleshooting helpers: which fields the logs have (`fields_of`) and what happened around one event
(`context_of`). Both work on any `LogStore` through `search` only, so both stores give identical answers.

- Field discovery looks at a sample: the newest `sample_size` events matching the query in the time range
  (Kibana's field list does the same). For each field it reports its type, in how many sampled events it
  occurs and its most frequent values (by their index text, `mintlog.query.values.value_text`, the text a
  query on the field compares), most frequent first, ties by value.
- Context lists the events just before and just after one event, oldest first, in the exact `(timestamp,
  id)` order of search, restricted to the same values of `same` (default: service and host).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, cast

from mintlog.domain.events import LogEvent
from mintlog.errors import NotFound
from mintlog.ports.logstore import LogStore, SearchAfter, SearchQuery
from mintlog.query import Node, all_of
from mintlog.query.ast import Exists, Not
from mintlog.query.filters import equals
from mintlog.query.values import value_texts

__all__ = [
    "CONTEXT_SAME_FIELDS",
    "EventContext",
    "FieldSummary",
    "FieldType",
    "TopValue",
    "context_of",
    "summarize_fields",
]

FieldType = Literal["text", "date", "keyword", "string", "number", "boolean", "mixed"]
CONTEXT_SAME_FIELDS = ("service", "host", "source", "trace_id")
"""Fields a context may be restricted to (`same`)."""

# Attributes every event has, with their type; `message` and `timestamp` get no top values.
_ATTRIBUTES: tuple[tuple[str, FieldType], ...] = (
    ("timestamp", "date"),
    ("message", "text"),
    ("service", "keyword"),
    ("level", "keyword"),
    ("host", "keyword"),
    ("source", "keyword"),
    ("trace_id", "keyword"),
    ("span_id", "keyword"),
)
_NO_TOP_VALUES = frozenset({"timestamp", "message"})


@dataclass(frozen=True, slots=True)
class TopValue:
    value: str
    count: int


@dataclass(slots=True)
class FieldSummary:
    """One field seen in the sample: its type, how many sampled events have it, its most frequent values."""

    name: str
    type: FieldType
    count: int
    top_values: list[TopValue] = field(default_factory=lambda: [])


def _value_type(value: object) -> FieldType | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


def _fields_value_type(value: object) -> FieldType | None:
    elements: list[object] = cast("list[object]", value) if isinstance(value, list) else [value]
    kinds: set[FieldType] = {kind for kind in map(_value_type, elements) if kind is not None}
    if not kinds:
        return None
    return kinds.pop() if len(kinds) == 1 else "mixed"


def _attribute_texts(event: LogEvent, name: str) -> list[str]:
    value: object = getattr(event, name)
    if value is None:
        return []
    return [value] if isinstance(value, str) else []


def summarize_fields(events: Sequence[LogEvent], top: int) -> list[FieldSummary]:
    """The fields of `events`: attributes first (in a fixed order), then `fields.*` by name."""
    summaries: list[FieldSummary] = []
    for name, kind in _ATTRIBUTES:
        present = [event for event in events if getattr(event, name) is not None]
        if not present:
            continue
        values: Counter[str] = Counter()
        if name not in _NO_TOP_VALUES:
            for event in present:
                values.update(_attribute_texts(event, name))
        summaries.append(FieldSummary(name, kind, len(present), _top(values, top)))

    counts: Counter[str] = Counter()
    kinds: dict[str, set[FieldType]] = {}
    values_by_key: dict[str, Counter[str]] = {}
    for event in events:
        for key, value in event.fields.items():
            kind = _fields_value_type(value)
            if kind is None:
                continue
            counts[key] += 1
            kinds.setdefault(key, set()).add(kind)
            values_by_key.setdefault(key, Counter()).update(value_texts(value))
    for key in sorted(counts):
        seen = kinds[key]
        kind = seen.pop() if len(seen) == 1 else "mixed"
        summaries.append(FieldSummary(f"fields.{key}", kind, counts[key], _top(values_by_key[key], top)))
    return summaries


def _top(values: Counter[str], top: int) -> list[TopValue]:
    ranked = sorted(values.items(), key=lambda item: (-item[1], item[0]))
    return [TopValue(value, count) for value, count in ranked[:top]]


@dataclass(frozen=True, slots=True)
class EventContext:
    """One event with the events just before and after it (both oldest first)."""

    event: LogEvent
    before: list[LogEvent]
    after: list[LogEvent]


async def find_event(store: LogStore, tenant_id: str, event_id: str, now: datetime) -> LogEvent:
    """The tenant's event with this id. Raises `NotFound` (another tenant's id is not found either)."""
    page = await store.search(SearchQuery(tenant_id=tenant_id, node=equals("id", event_id), now=now, size=1))
    if not page.events:
        raise NotFound(f"no event with id {event_id!r}")
    return page.events[0]


async def context_of(
    store: LogStore,
    tenant_id: str,
    event_id: str,
    *,
    before: int,
    after: int,
    same: Sequence[str],
    now: datetime,
) -> EventContext:
    """`before` events preceding and `after` events following the event, sharing its values of `same`."""
    event = await find_event(store, tenant_id, event_id, now)
    node = _same_as(event, same)
    position = SearchAfter.of(event)
    preceding: list[LogEvent] = []
    following: list[LogEvent] = []
    if before:
        page = await store.search(
            SearchQuery(tenant_id=tenant_id, node=node, now=now, size=before, order="desc", after=position, total_cap=1)
        )
        preceding = list(reversed(page.events))
    if after:
        page = await store.search(
            SearchQuery(tenant_id=tenant_id, node=node, now=now, size=after, order="asc", after=position, total_cap=1)
        )
        following = page.events
    return EventContext(event=event, before=preceding, after=following)


def _same_as(event: LogEvent, same: Sequence[str]) -> Node:
    clauses: list[Node] = []
    for name in same:
        value: object = getattr(event, name)
        # An event without a trace id shares its context with events that have none either.
        clauses.append(equals(name, value) if isinstance(value, str) else _absent(name))
    return all_of(clauses)


def _absent(name: str) -> Node:
    return Not(Exists(name))
