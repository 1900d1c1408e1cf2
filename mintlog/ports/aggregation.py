"""What `LogStore.aggregate` is asked and answers: nested groups (terms, date histogram) and numeric metrics.

One shape for both stores (docs/api.md, "Aggregations"):

- `AggregateQuery.groups` nest left to right: `(HistogramGroup(3600), TermsGroup("level"))` is a volume
  histogram whose every hour is split by level. No groups: only the overall count and metrics.
- A `TermsGroup` buckets events by the value of one field: `service`, `level`, `host`, `source`,
  `trace_id`, `span_id` or `fields.<key>` (the key's text as in `mintlog.query.values.value_text`: the
  number 500 is the key `"500"`). Events without the field fall in no bucket. The `size` most frequent
  values come back, most frequent first, ties by key ascending; the counts are exact and `other_count` is
  the number of events with the field in the buckets left out.
- A `HistogramGroup` buckets by `timestamp` into fixed intervals aligned on the Unix epoch (UTC). Buckets
  run from the one holding `start` to the one holding `end - 1µs` when the query has both, otherwise from
  the first to the last bucket with events; empty buckets inside that span are present with count 0.
  Buckets come oldest first.
- A `MetricSpec` summarizes a numeric field (`fields.<key>` whose values are numbers; other values of the
  key are ignored): `min`, `max`, `avg`, `sum`, `count` (events with a number there) or `percentiles`.
  Metrics are computed in every leaf bucket, or over all matches when there is no group. A metric with no
  number to work on is `None`. Percentiles are estimates (both stores keep the relative error within 1 %).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, TypeAlias

from mintlog.query import Node
from mintlog.query.ast import MatchAll

__all__ = [
    "MAX_GROUPS",
    "MAX_HISTOGRAM_BUCKETS",
    "MAX_TERMS_SIZE",
    "MAX_TRACKED_BUCKETS",
    "TERMS_FIELDS",
    "AggregateQuery",
    "AggregateResult",
    "Bucket",
    "BucketKey",
    "Group",
    "HistogramGroup",
    "MetricOp",
    "MetricSpec",
    "MetricValue",
    "TermsGroup",
]

MAX_GROUPS = 3
"""Groups one aggregation may nest."""
MAX_TERMS_SIZE = 1000
"""Largest `TermsGroup.size`."""
MAX_HISTOGRAM_BUCKETS = 10_000
"""Most buckets one histogram may produce (the caller checks `(end - start) / interval` against it)."""
MAX_TRACKED_BUCKETS = 250_000
"""Most distinct buckets (all groups together) a store merges for one aggregation before failing as too large."""
TERMS_FIELDS = frozenset({"service", "level", "host", "source", "trace_id", "span_id"})
"""The event attributes a terms group may bucket on (besides `fields.<key>`); keyword fields in both stores."""

MetricOp: TypeAlias = Literal["min", "max", "avg", "sum", "count", "percentiles"]
BucketKey: TypeAlias = str | datetime
"""A terms bucket's key is the value's text; a histogram bucket's key is its start (UTC)."""
MetricValue: TypeAlias = float | dict[str, float | None] | None
"""A number, `None` when nothing was there to summarize, or for `percentiles` `{"50.0": 12.5, ...}`."""


@dataclass(frozen=True, slots=True)
class TermsGroup:
    """Bucket by the values of `field` (a keyword field or `fields.<key>`); the `size` most frequent first."""

    field: str
    size: int = 10


@dataclass(frozen=True, slots=True)
class HistogramGroup:
    """Bucket by `timestamp` in fixed intervals of `interval_seconds`, aligned on the Unix epoch (UTC)."""

    interval_seconds: int


Group: TypeAlias = TermsGroup | HistogramGroup


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """A numeric summary of `field` (`fields.<key>`), reported under `name`.

    `percents` (only for `percentiles`) are in (0, 100]; a percentile's key is `str(float(percent))`.
    """

    name: str
    op: MetricOp
    field: str
    percents: tuple[float, ...] = (50.0, 95.0, 99.0)


@dataclass(frozen=True, slots=True)
class AggregateQuery:
    """Aggregate the events of one tenant matching `node` within `[start, end)` (see the module docstring)."""

    tenant_id: str
    node: Node = field(default_factory=MatchAll)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    start: datetime | None = None
    end: datetime | None = None
    groups: tuple[Group, ...] = ()
    metrics: tuple[MetricSpec, ...] = ()


@dataclass(slots=True)
class Bucket:
    """One bucket: its key, how many events it holds, its metrics (leaf buckets) or its sub-buckets."""

    key: BucketKey
    count: int
    metrics: dict[str, MetricValue] = field(default_factory=lambda: {})
    buckets: list[Bucket] = field(default_factory=lambda: [])
    other_count: int = 0
    """Events of this bucket in sub-buckets left out by the next terms group's `size`."""


@dataclass(slots=True)
class AggregateResult:
    """The answer: the number of matching events, the top-level buckets and, without groups, the metrics."""

    total: int
    buckets: list[Bucket] = field(default_factory=lambda: [])
    metrics: dict[str, MetricValue] = field(default_factory=lambda: {})
    other_count: int = 0
    took_ms: float = 0.0
