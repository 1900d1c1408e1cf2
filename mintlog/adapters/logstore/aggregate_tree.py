"""Partial aggregation results that merge exactly, and the answer (`mintlog.ports.aggregation`) built from them.

A store computes one `PartialBucket` tree per unit of work (a day partition, or a part of one), merges the
trees with `PartialBucket.merge` and hands the merged tree to `finish`. Guarantees:

- Merging is exact: counts add up, every terms value and histogram bucket of every tree is kept, and number
  statistics combine (`NumberStats`). So when every tree holds *every* value of its unit (never a top-N cut),
  `finish` reports exact counts and an exact `other_count`.
- `finish` applies the port's shape: the `size` most frequent values of a terms group, most frequent first,
  ties by key ascending; histogram buckets aligned on the epoch, zero-filled over the documented span, oldest
  first; metrics in leaf buckets (or over all matches without groups).
- Percentiles cannot be merged from per-unit estimates. A leaf whose numbers all come from one unit takes
  that unit's estimate; any other leaf is handed to the store's `CombinePercentiles`, with its path.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias, cast

from mintlog.ports.aggregation import (
    MAX_HISTOGRAM_BUCKETS,
    AggregateQuery,
    AggregateResult,
    Bucket,
    HistogramGroup,
    MetricSpec,
    MetricValue,
    TermsGroup,
)
from mintlog.ports.logstore import epoch_micros

__all__ = [
    "GROUP_KEY",
    "ChildKey",
    "CombinePercentiles",
    "NativeReader",
    "NumberStats",
    "PartialBucket",
    "PercentileEstimate",
    "TooManyBuckets",
    "finish",
    "metric_fields",
    "percent_key",
    "percentile_rank",
    "percents_by_field",
]

ChildKey: TypeAlias = str | int
"""A sub-bucket's key in a partial tree: the value text (terms) or the bucket start in µs since the epoch."""

CombinePercentiles: TypeAlias = Callable[
    [tuple[ChildKey, ...], str, "NumberStats", tuple[float, ...], frozenset[int]], dict[float, float]
]
"""`(path, field, stats, percents, units) -> {percent: value}`: the percentiles of `field` over the events of
the leaf at `path` (one key per group, outermost first), computed by the store over all of `units` (the units
that have numbers there) at once."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

GROUP_KEY = "g"
"""The name of each level's group in a native (Elasticsearch-shaped) aggregation request and response."""


class TooManyBuckets(Exception):
    """One native aggregation would build more buckets than the engine allows, or cut a terms list: the
    caller splits the time range and asks again."""


class NativeReader(ABC):
    """Turns one native aggregation response (the shape Tantivy and OpenSearch share: nested `g` groups with
    `buckets` of `key` and `doc_count`) into a `PartialBucket` tree. A store says how to read a histogram key,
    how long the prefix of its terms keys is, and how to read a leaf's metrics."""

    def __init__(self, groups: tuple[TermsGroup | HistogramGroup, ...]) -> None:
        self._groups = groups

    def read(self, node: dict[str, Any], bucket: PartialBucket, depth: int = 0) -> None:
        """Add what `node` (a response, or a bucket of one at `depth`) counts to `bucket`, recursively.

        Raises `TooManyBuckets` when a terms list was cut (`sum_other_doc_count` or an error bound).
        """
        if depth == len(self._groups):
            self.leaf(node, bucket)
            return
        group = self._groups[depth]
        result = cast("dict[str, Any]", node[GROUP_KEY])
        items = cast("list[dict[str, Any]]", result.get("buckets", []))
        if isinstance(group, TermsGroup):
            if result.get("sum_other_doc_count") or result.get("doc_count_error_upper_bound"):
                raise TooManyBuckets
            prefix_length = self.terms_prefix_length(group)
            for item in items:
                self._child(item, bucket, str(item["key"])[prefix_length:], depth)
        else:
            for item in items:
                self._child(item, bucket, self.histogram_key(item["key"]), depth)

    def _child(self, item: dict[str, Any], parent: PartialBucket, key: ChildKey, depth: int) -> None:
        child = parent.child(key)
        child.count += int(item["doc_count"])
        self.read(item, child, depth + 1)

    @abstractmethod
    def histogram_key(self, native_key: object) -> int:
        """A histogram bucket's start in µs since the epoch, from the engine's key."""

    @abstractmethod
    def terms_prefix_length(self, group: TermsGroup) -> int:
        """How many leading characters of this group's terms keys are not the value (`key=` of `field_pairs`)."""

    @abstractmethod
    def leaf(self, node: dict[str, Any], bucket: PartialBucket) -> None:
        """Record the metrics of a leaf bucket."""


def percent_key(percent: float) -> str:
    """The key of one percentile in a `percentiles` metric (`50` -> `"50.0"`)."""
    return str(float(percent))


def percentile_rank(percent: float, count: int) -> int:
    """The 0-based rank, among `count` sorted numbers, whose value is the `percent`-th percentile.

    `floor(percent / 100 * (count - 1))`: the rank Tantivy's DDSketch reports, so a merged estimate agrees
    with a single partition's.
    """
    return min(count - 1, max(0, math.floor(percent / 100.0 * (count - 1))))


@dataclass(slots=True)
class NumberStats:
    """Count, sum, minimum and maximum of the numbers of one metric field in one bucket (merge exactly)."""

    count: int = 0
    total: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf

    def merge(self, other: NumberStats) -> None:
        self.count += other.count
        self.total += other.total
        self.minimum = min(self.minimum, other.minimum)
        self.maximum = max(self.maximum, other.maximum)


@dataclass(frozen=True, slots=True)
class PercentileEstimate:
    """The percentiles of one metric field over one unit of work's numbers in a bucket.

    `unit` identifies the unit (estimates of different units cannot be combined); `values` maps each
    requested percent to its estimate.
    """

    unit: int
    values: dict[float, float]


@dataclass(slots=True)
class PartialBucket:
    """One bucket of a partial tree: its event count, its sub-buckets (next group) and its leaf statistics.

    `stats` and `estimates` are keyed by metric field and only filled in leaf buckets (or the root when the
    query has no group); `estimates` lists only units that had numbers.
    """

    count: int = 0
    children: dict[ChildKey, PartialBucket] = field(default_factory=lambda: {})
    stats: dict[str, NumberStats] = field(default_factory=lambda: {})
    estimates: dict[str, list[PercentileEstimate]] = field(default_factory=lambda: {})

    def child(self, key: ChildKey) -> PartialBucket:
        """The sub-bucket `key`, created empty when missing."""
        found = self.children.get(key)
        if found is None:
            found = self.children[key] = PartialBucket()
        return found

    def size(self) -> int:
        """How many buckets this tree holds, itself included."""
        return 1 + sum(child.size() for child in self.children.values())

    def merge(self, other: PartialBucket) -> int:
        """Add `other` (a tree of the same query over another unit) into this one; return the buckets added."""
        self.count += other.count
        added = 0
        for key, theirs in other.children.items():
            mine = self.children.get(key)
            if mine is None:
                self.children[key] = theirs
                added += theirs.size()
            else:
                added += mine.merge(theirs)
        for metric_field, stats in other.stats.items():
            self.stats.setdefault(metric_field, NumberStats()).merge(stats)
        for metric_field, estimates in other.estimates.items():
            self.estimates.setdefault(metric_field, []).extend(estimates)
        return added


def metric_fields(metrics: Iterable[MetricSpec]) -> list[str]:
    """The distinct fields the metrics summarize, in first-mention order."""
    return list(dict.fromkeys(spec.field for spec in metrics))


def percents_by_field(metrics: Iterable[MetricSpec]) -> dict[str, tuple[float, ...]]:
    """For every field with a `percentiles` metric, every percent any of them asks for, ascending."""
    wanted: dict[str, set[float]] = {}
    for spec in metrics:
        if spec.op == "percentiles":
            wanted.setdefault(spec.field, set()).update(float(percent) for percent in spec.percents)
    return {metric_field: tuple(sorted(percents)) for metric_field, percents in wanted.items()}


def finish(root: PartialBucket, query: AggregateQuery, combine: CombinePercentiles) -> AggregateResult:
    """The answer to `query` from the merged tree of every unit (see the module docstring).

    Raises `ValueError` when a histogram would have more than `MAX_HISTOGRAM_BUCKETS` buckets (the caller
    is expected to bound `[start, end)` first).
    """
    builder = _Builder(query, combine)
    if not query.groups:
        return AggregateResult(total=root.count, metrics=builder.metrics(root, ()))
    buckets, other_count = builder.level(root, 0, ())
    return AggregateResult(total=root.count, buckets=buckets, other_count=other_count)


@dataclass(slots=True)
class _Builder:
    query: AggregateQuery
    combine: CombinePercentiles
    percents: dict[str, tuple[float, ...]] = field(default_factory=lambda: {})

    def __post_init__(self) -> None:
        self.percents = percents_by_field(self.query.metrics)

    def level(self, parent: PartialBucket, depth: int, path: tuple[ChildKey, ...]) -> tuple[list[Bucket], int]:
        """The buckets of group `depth` inside `parent`, and the count of the terms left out."""
        group = self.query.groups[depth]
        if isinstance(group, TermsGroup):
            ranked = sorted(parent.children.items(), key=lambda item: (-item[1].count, item[0]))
            kept = ranked[: max(group.size, 0)]
            other_count = sum(child.count for _key, child in ranked[len(kept) :])
            return [self.bucket(key, str(key), child, depth, path) for key, child in kept], other_count
        buckets = [
            self.bucket(start_us, _EPOCH + timedelta(microseconds=start_us), parent.children.get(start_us), depth, path)
            for start_us in self._histogram_span(group, parent.children)
        ]
        return buckets, 0

    def bucket(
        self,
        key: ChildKey,
        shown: str | datetime,
        partial: PartialBucket | None,
        depth: int,
        path: tuple[ChildKey, ...],
    ) -> Bucket:
        partial = partial or PartialBucket()
        path = (*path, key)
        if depth + 1 == len(self.query.groups):
            return Bucket(key=shown, count=partial.count, metrics=self.metrics(partial, path))
        buckets, other_count = self.level(partial, depth + 1, path)
        return Bucket(key=shown, count=partial.count, buckets=buckets, other_count=other_count)

    def _histogram_span(self, group: HistogramGroup, children: dict[ChildKey, PartialBucket]) -> range:
        interval_us = group.interval_seconds * 1_000_000
        if self.query.start is not None and self.query.end is not None:
            first = epoch_micros(self.query.start) // interval_us * interval_us
            last = (epoch_micros(self.query.end) - 1) // interval_us * interval_us
        else:
            starts = [key for key in children if isinstance(key, int)]
            if not starts:
                return range(0)
            first, last = min(starts), max(starts)
        if last < first:
            return range(0)
        if (last - first) // interval_us + 1 > MAX_HISTOGRAM_BUCKETS:
            raise ValueError(f"the histogram would have more than {MAX_HISTOGRAM_BUCKETS} buckets")
        return range(first, last + interval_us, interval_us)

    def metrics(self, leaf: PartialBucket, path: tuple[ChildKey, ...]) -> dict[str, MetricValue]:
        values: dict[str, MetricValue] = {}
        combined: dict[str, dict[float, float]] = {}
        for spec in self.query.metrics:
            stats = leaf.stats.get(spec.field, NumberStats())
            if spec.op == "count":
                values[spec.name] = stats.count
            elif stats.count == 0:
                values[spec.name] = None
            elif spec.op == "min":
                values[spec.name] = stats.minimum
            elif spec.op == "max":
                values[spec.name] = stats.maximum
            elif spec.op == "sum":
                values[spec.name] = stats.total
            elif spec.op == "avg":
                values[spec.name] = stats.total / stats.count
            else:
                if spec.field not in combined:
                    combined[spec.field] = self._percentiles(leaf, path, spec.field, stats)
                estimates = combined[spec.field]
                values[spec.name] = {percent_key(percent): estimates.get(float(percent)) for percent in spec.percents}
        return values

    def _percentiles(
        self, leaf: PartialBucket, path: tuple[ChildKey, ...], metric_field: str, stats: NumberStats
    ) -> dict[float, float]:
        estimates = leaf.estimates.get(metric_field, [])
        units = frozenset(estimate.unit for estimate in estimates)
        if len(units) == 1:
            found = estimates[0].values
        else:
            found = self.combine(path, metric_field, stats, self.percents[metric_field], units)
        # An estimate never lies outside the numbers it summarizes.
        return {percent: min(max(value, stats.minimum), stats.maximum) for percent, value in found.items()}
