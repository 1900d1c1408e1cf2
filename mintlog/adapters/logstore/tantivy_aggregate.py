"""`LogStore.aggregate` for the Tantivy store: one native aggregation per partition, merged exactly.

How an aggregation runs (shape and guarantees: `mintlog.ports.aggregation`):

- Every partition of the tenant whose period overlaps the query's time range runs one Tantivy aggregation
  (`Searcher.aggregate`, Elasticsearch-shaped JSON) with the query's groups nested in order: a terms group
  on `service`, `level`, `host`, `source`, `trace_id` or `span_id` buckets that fast field; one on
  `fields.<key>` buckets the `key=<text>` terms of the fast `field_pairs` field (so keys are the value texts
  of `mintlog.query.values.value_text`); a histogram buckets `ts_us` on epoch-aligned intervals. Leaves
  compute `stats` of every metric field and Tantivy's `percentiles` (DDSketch, within 1 %) when asked, on
  both number columns of the key (`tantivy_schema`: `field_decimals.<key>` in thousandths, `fields.<key>`
  as written; strings and booleans are not numbers); the thousandths are divided back and the two
  statistics merged exactly. A partition of the legacy layout has only `fields.<key>`.
- Terms groups ask each partition for *every* value, never a top N, so the merged counts
  (`mintlog.adapters.logstore.aggregate_tree`) are exact. When a partition holds more distinct buckets than
  one Tantivy aggregation builds (`NATIVE_BUCKETS`), its time span is split in halves until each part fits.
  At most `MAX_TRACKED_BUCKETS` distinct buckets are merged; beyond that the request fails with 400
  `too_many_buckets` instead of exhausting memory.
- Percentiles of a leaf whose numbers all come from one column of one partition (e.g. a histogram bucket
  inside one day) are that partition's estimate. Other leaves are recomputed with a sketch that merges exactly: every
  power-of-two range of the value ("octave") is split into 128 equal bins by a `histogram` aggregation bounded
  to that octave, so a bin's midpoint is within 0.4 % of every number in it. Numbers closer to zero than
  2^-64 times the largest magnitude count as 0.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, cast

import tantivy

from mintlog.adapters.logstore.aggregate_tree import (
    GROUP_KEY,
    ChildKey,
    NativeReader,
    NumberStats,
    PartialBucket,
    PercentileEstimate,
    TooManyBuckets,
    finish,
    metric_fields,
    percentile_rank,
    percents_by_field,
)
from mintlog.adapters.logstore.days import day_range
from mintlog.adapters.logstore.periods import Period, overlapping
from mintlog.adapters.logstore.tantivy_partitions import Partition, PartitionCache
from mintlog.adapters.logstore.tantivy_query import build_query
from mintlog.adapters.logstore.tantivy_schema import DECIMAL_SCALE, DECIMALS_FIELD
from mintlog.errors import BadRequest, StoreUnavailable
from mintlog.ports.aggregation import (
    MAX_TRACKED_BUCKETS,
    TERMS_FIELDS,
    AggregateQuery,
    AggregateResult,
    HistogramGroup,
    TermsGroup,
)
from mintlog.ports.logstore import SearchQuery, epoch_micros
from mintlog.query.ast import field_key
from mintlog.query.patterns import rust_escape
from mintlog.query.values import FIELD_PAIRS, pair_prefix

__all__ = ["MAX_TRACKED_BUCKETS", "NATIVE_BUCKETS", "TERMS_FIELDS", "aggregate_partitions"]


NATIVE_BUCKETS = 65_000
"""Tantivy refuses an aggregation building more buckets than this (its default `AggregationLimits`)."""
_ONE_DAY_US = 86_400_000_000
_OCTAVE_BINS_LOG2 = 7  # 128 bins per octave: a midpoint is within 1/256 of the octave's lower bound
_OCTAVES = 64
_TOTAL = "n"


def aggregate_partitions(
    partitions: PartitionCache,
    schema: tantivy.Schema,
    query: AggregateQuery,
    *,
    native_buckets: int = NATIVE_BUCKETS,
    max_buckets: int = MAX_TRACKED_BUCKETS,
) -> AggregateResult:
    """Aggregate `query` over the tenant's partitions (blocking; see the module docstring).

    `native_buckets` is the most values one native terms aggregation may return before its part of a
    partition is split, and `max_buckets` the most distinct buckets merged (tests lower both).

    Raises `QuerySyntaxError` when a time bound of the node cannot be resolved, `BadRequest`
    (`too_many_buckets`) past `max_buckets`, `StoreUnavailable` when Tantivy or the disk fails, and
    `ValueError` for a group or metric on a field the port does not allow.
    """
    started = time.perf_counter()
    run = _Run.prepare(partitions, schema, query, native_buckets=native_buckets, max_buckets=max_buckets)
    root = run.collect()
    result = finish(root, query, run.combine_percentiles)
    result.took_ms = (time.perf_counter() - started) * 1000.0
    return result


def _day_micros(day: date) -> int:
    return epoch_micros(datetime(day.year, day.month, day.day, tzinfo=UTC))


@dataclass(frozen=True, slots=True)
class _Unit:
    """A piece of work: one partition, possibly restricted to `[start_us, end_us)`."""

    partition: Partition
    start_us: int
    end_us: int
    whole: bool


@dataclass(slots=True)
class _Run:
    partitions: PartitionCache
    schema: tantivy.Schema
    query: AggregateQuery
    base: tantivy.Query | None
    periods: list[Period]
    requests: dict[bool, dict[str, Any]]
    metric_fields: list[str]
    percents: dict[str, tuple[float, ...]]
    max_buckets: int
    unit_periods: dict[int, Period] = field(default_factory=lambda: {})
    tracked: int = 1

    @classmethod
    def prepare(
        cls,
        partitions: PartitionCache,
        schema: tantivy.Schema,
        query: AggregateQuery,
        *,
        native_buckets: int,
        max_buckets: int,
    ) -> _Run:
        """Check the groups and metrics and compile the query (outside error translation: these are the caller's)."""
        for group in query.groups:
            if isinstance(group, TermsGroup):
                _terms_source(group.field)
        for spec in query.metrics:
            _metric_path(spec.field)
        search = SearchQuery(
            tenant_id=query.tenant_id, node=query.node, now=query.now, start=query.start, end=query.end
        )
        first_day, last_day = day_range(search)
        empty = not query.tenant_id or (first_day is not None and last_day is not None and first_day > last_day)
        fields = metric_fields(query.metrics)
        percents = percents_by_field(query.metrics)
        run = cls(
            partitions=partitions,
            schema=schema,
            query=query,
            base=None if empty else build_query(schema, search),
            periods=[],
            requests={
                decimals: _native_request(query, fields, percents, native_buckets, decimals=decimals)
                for decimals in (True, False)
            },
            metric_fields=fields,
            percents=percents,
            max_buckets=max_buckets,
        )
        if not empty:
            with _translated("list partitions"):
                run.periods = overlapping(partitions.list_periods(query.tenant_id), first_day, last_day)
        return run

    # --- pass 1: every group and leaf statistic, per partition ------------------------------------------

    def collect(self) -> PartialBucket:
        """The merged tree of every partition in range."""
        root = PartialBucket()
        for period in self.periods:
            partition = self._open(period)
            if partition is None:  # dropped since it was listed
                continue
            pending = [self._whole_unit(partition)]
            while pending:
                unit = pending.pop()
                try:
                    tree = self._aggregate_unit(unit, len(self.unit_periods))
                except TooManyBuckets:
                    pending.extend(self._halves(unit))
                    continue
                self.unit_periods[len(self.unit_periods)] = period
                self.tracked += root.merge(tree)
                if self.tracked > self.max_buckets:
                    raise _too_large(self.max_buckets)
        return root

    def _open(self, period: Period) -> Partition | None:
        with _translated("open a partition"):
            partition = self.partitions.get(self.query.tenant_id, period, create=False)
            if partition is not None:
                self.partitions.refresh(partition)
            return partition

    def _whole_unit(self, partition: Partition) -> _Unit:
        start_us, end_us = _day_micros(partition.period.start), _day_micros(partition.period.last) + _ONE_DAY_US
        if self.query.start is not None:
            start_us = max(start_us, epoch_micros(self.query.start))
        if self.query.end is not None:
            end_us = min(end_us, epoch_micros(self.query.end))
        return _Unit(partition, start_us, end_us, whole=True)

    def _halves(self, unit: _Unit) -> list[_Unit]:
        if unit.end_us - unit.start_us <= 1:
            raise _too_large(self.max_buckets)
        middle = unit.start_us + (unit.end_us - unit.start_us) // 2
        return [
            _Unit(unit.partition, middle, unit.end_us, whole=False),
            _Unit(unit.partition, unit.start_us, middle, whole=False),
        ]

    def _aggregate_unit(self, unit: _Unit, unit_id: int) -> PartialBucket:
        assert self.base is not None
        query = self.base if unit.whole else _all_of([self.base, _time_range(self.schema, unit.start_us, unit.end_us)])
        response = _native_aggregate(unit.partition, query, self.requests[unit.partition.decimals])
        root = PartialBucket(count=int(cast("dict[str, Any]", response[_TOTAL])["value"] or 0))
        _Reader(self, unit_id).read(response, root, 0)
        return root

    # --- pass 2: percentiles of leaves whose numbers span several units ------------------------------

    def combine_percentiles(
        self,
        path: tuple[ChildKey, ...],
        metric_field: str,
        stats: NumberStats,
        percents: tuple[float, ...],
        units: frozenset[int],
    ) -> dict[float, float]:
        """Percentiles of `metric_field` over the leaf at `path`: one sketch over the partitions of `units`."""
        sketch = _OctaveSketch.around(stats)
        if sketch is None:
            return dict.fromkeys(percents, 0.0)
        assert self.base is not None
        leaf_query = _all_of([self.base, *self._path_clauses(path)])
        plain = sketch.request(_metric_path(metric_field))
        both = {**plain, **sketch.request(_decimals_path(metric_field), scale=DECIMAL_SCALE)}
        periods = {self.unit_periods[_unit_of(unit)] for unit in units}
        for period in sorted(periods, key=lambda period: period.sort_key):
            partition = self._open(period)
            if partition is None:
                continue
            response = _native_aggregate(partition, leaf_query, both if partition.decimals else plain)
            sketch.add(response)
            if partition.decimals:
                sketch.add(response, scale=DECIMAL_SCALE)
        return sketch.percentiles(percents)

    def _path_clauses(self, path: tuple[ChildKey, ...]) -> Iterator[tantivy.Query]:
        for group, key in zip(self.query.groups, path, strict=True):
            if isinstance(group, HistogramGroup):
                assert isinstance(key, int)
                yield _time_range(self.schema, key, key + group.interval_seconds * 1_000_000)
                continue
            source, prefix = _terms_source(group.field)
            yield tantivy.Query.term_query(self.schema, source, f"{prefix}{key}", index_option="basic")


class _Reader(NativeReader):
    """Reads Tantivy's answer: histogram keys are `ts_us` bucket starts (floats), terms keys `<key>=<text>`."""

    def __init__(self, run: _Run, unit_id: int) -> None:
        super().__init__(run.query.groups)
        self.run = run
        self.unit_id = unit_id

    def histogram_key(self, native_key: object) -> int:
        return round(float(cast("float", native_key)))

    def terms_prefix_length(self, group: TermsGroup) -> int:
        return len(_terms_source(group.field)[1])

    def leaf(self, node: dict[str, Any], bucket: PartialBucket) -> None:
        for index, metric_field in enumerate(self.run.metric_fields):
            # `s`/`p`: the `fields` column; `d`/`q`: the thousandths of `field_decimals` (absent in legacy partitions).
            merged = NumberStats()
            estimates: list[PercentileEstimate] = []
            for stats_name, percentiles_name, scale, unit in (
                (f"s{index}", f"p{index}", 1, self.unit_id),
                (f"d{index}", f"q{index}", DECIMAL_SCALE, _other_column(self.unit_id)),
            ):
                stats = cast("dict[str, Any] | None", node.get(stats_name))
                count = 0 if stats is None else int(stats.get("count") or 0)
                if stats is None or count == 0:
                    continue
                merged.merge(
                    NumberStats(
                        count=count,
                        total=float(stats["sum"]) / scale,
                        minimum=float(stats["min"]) / scale,
                        maximum=float(stats["max"]) / scale,
                    )
                )
                if metric_field in self.run.percents:
                    values = cast("dict[str, Any]", cast("dict[str, Any]", node[percentiles_name])["values"])
                    estimate = {
                        float(percent): float(value) / scale for percent, value in values.items() if value is not None
                    }
                    estimates.append(PercentileEstimate(unit=unit, values=estimate))
            if merged.count == 0:
                continue
            bucket.stats[metric_field] = merged
            if estimates:
                # One column's estimate stands for the unit; two columns' are recombined (`combine_percentiles`).
                if len(estimates) == 1:
                    estimates = [PercentileEstimate(unit=self.unit_id, values=estimates[0].values)]
                bucket.estimates[metric_field] = estimates


def _other_column(unit_id: int) -> int:
    """The unit id standing for the `field_decimals` column of unit `unit_id` (negative: never a real unit)."""
    return -1 - unit_id


def _unit_of(unit_id: int) -> int:
    """The unit of a unit id, whichever column it stands for (see `_other_column`)."""
    return unit_id if unit_id >= 0 else -1 - unit_id


def _native_request(
    query: AggregateQuery,
    fields: list[str],
    percents: dict[str, tuple[float, ...]],
    native_buckets: int,
    *,
    decimals: bool,
) -> dict[str, Any]:
    """The Tantivy aggregation request of the whole query (groups nested in order, metrics in the leaves),
    for a partition with (`decimals`) or without the `field_decimals` column."""
    leaf: dict[str, Any] = {}
    for index, metric_field in enumerate(fields):
        columns = [("s", "p", _metric_path(metric_field))]
        if decimals:
            columns.append(("d", "q", _decimals_path(metric_field)))
        for stats_name, percentiles_name, path in columns:
            leaf[f"{stats_name}{index}"] = {"stats": {"field": path}}
            if metric_field in percents:
                spec = {"field": path, "percents": list(percents[metric_field])}
                leaf[f"{percentiles_name}{index}"] = {"percentiles": spec}
    level = leaf
    for group in reversed(query.groups):
        if isinstance(group, TermsGroup):
            source, prefix = _terms_source(group.field)
            spec: dict[str, Any] = {"field": source, "size": native_buckets, "segment_size": native_buckets}
            if prefix:
                spec["include"] = f"(?s){rust_escape(prefix)}.*"
            aggregation: dict[str, Any] = {"terms": spec}
        else:
            interval_us = float(group.interval_seconds * 1_000_000)
            aggregation = {"histogram": {"field": "ts_us", "interval": interval_us, "min_doc_count": 1}}
        if level:
            aggregation["aggs"] = level
        level = {GROUP_KEY: aggregation}
    return {**level, _TOTAL: {"value_count": {"field": "ts_us"}}}


def _terms_source(group_field: str) -> tuple[str, str]:
    """The fast field a terms group buckets, and the prefix its terms carry (`key=` in `field_pairs`)."""
    if group_field in TERMS_FIELDS:
        return group_field, ""
    key = field_key(group_field)
    if not key:
        raise ValueError(f"cannot group by {group_field!r}: not one of {sorted(TERMS_FIELDS)} or fields.<key>")
    return FIELD_PAIRS, pair_prefix(key)


def _metric_path(metric_field: str) -> str:
    """The JSON path whose number columns hold the numbers of `fields.<key>`."""
    if not field_key(metric_field):
        raise ValueError(f"cannot summarize {metric_field!r}: metrics apply to fields.<key> only")
    return metric_field


def _decimals_path(metric_field: str) -> str:
    """The JSON path of the `field_decimals` column of `fields.<key>` (thousandths)."""
    return DECIMALS_FIELD + _metric_path(metric_field).removeprefix("fields")


def _native_aggregate(partition: Partition, query: tantivy.Query, request: dict[str, Any]) -> dict[str, Any]:
    try:
        searcher = partition.index.searcher()
        # The stubs type the request and the answer as bare dicts.
        return cast("dict[str, Any]", searcher.aggregate(query, request))  # pyright: ignore[reportUnknownMemberType]
    except ValueError as exc:
        if "Aborting aggregation" in str(exc):  # the bucket or memory limit of one aggregation
            raise TooManyBuckets from exc
        raise StoreUnavailable(f"tantivy store could not aggregate partition {partition.name}: {exc}") from exc
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # Tantivy panics surface as pyo3's PanicException, a BaseException
        raise StoreUnavailable(f"tantivy store could not aggregate partition {partition.name}: {exc}") from exc


@contextmanager
def _translated(action: str) -> Generator[None]:
    """Turn what the partition cache raises (file system, Tantivy) into `StoreUnavailable`."""
    try:
        yield
    except (StoreUnavailable, KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # Tantivy panics surface as pyo3's PanicException, a BaseException
        raise StoreUnavailable(f"tantivy store could not {action}: {exc}") from exc


def _too_large(max_buckets: int) -> BadRequest:
    return BadRequest(
        f"the aggregation has more than {max_buckets} distinct buckets; group by fields with fewer "
        "values, or narrow the query or the time range",
        code="too_many_buckets",
    )


def _time_range(schema: tantivy.Schema, start_us: int, end_us: int) -> tantivy.Query:
    return tantivy.Query.range_query(
        schema,
        "ts_us",
        tantivy.FieldType.Integer,
        lower_bound=start_us,
        upper_bound=end_us,
        include_lower=True,
        include_upper=False,
    )


def _all_of(clauses: list[tantivy.Query]) -> tantivy.Query:
    if len(clauses) == 1:
        return clauses[0]
    return tantivy.Query.boolean_query([(tantivy.Occur.Must, clause) for clause in clauses])


@dataclass(slots=True)
class _OctaveSketch:
    """A histogram of numbers with bins at most 1/128 of their octave wide: merges exactly, 0.4 % error.

    Octave `e` holds the numbers whose magnitude is in `[2^e, 2^(e+1))`; the zero octave holds the
    magnitudes below `2^low` and reports them as 0. Only octaves within `[minimum, maximum]` are asked for.
    """

    minimum: float
    maximum: float
    low: int
    high: int
    counts: dict[float, int] = field(default_factory=lambda: {})

    @classmethod
    def around(cls, stats: NumberStats) -> _OctaveSketch | None:
        """A sketch for numbers within `stats`' bounds; `None` when they are all 0."""
        largest = max(abs(stats.minimum), abs(stats.maximum))
        if largest == 0 or not math.isfinite(largest):
            return None
        high = math.frexp(largest)[1]  # largest < 2**high
        return cls(minimum=stats.minimum, maximum=stats.maximum, low=high - _OCTAVES, high=high)

    def _octaves(self) -> Iterator[tuple[str, float, float, float]]:
        """`(name, lowest, highest, bin width)` of every octave that may hold a number, highest exclusive."""
        tiny = math.ldexp(1.0, self.low)
        for exponent in range(self.low, self.high):
            lower, upper = math.ldexp(1.0, exponent), math.ldexp(1.0, exponent + 1)
            width = math.ldexp(1.0, exponent - _OCTAVE_BINS_LOG2)
            if lower <= self.maximum and upper > self.minimum:
                yield f"p{exponent}", lower, upper, width
            if -upper <= self.maximum and -lower > self.minimum:
                yield f"n{exponent}", -upper, -lower, width
        if -tiny <= self.maximum and tiny > self.minimum:
            yield "z", -tiny, tiny, tiny

    def request(self, path: str, *, scale: int = 1) -> dict[str, Any]:
        """The histograms of every octave over the column at `path`, whose numbers are `scale` times the values."""
        return {
            _scaled_name(name, scale): {
                "histogram": {
                    "field": path,
                    "interval": width * scale,
                    "min_doc_count": 1,
                    "hard_bounds": {"min": lowest * scale, "max": highest * scale},
                }
            }
            for name, lowest, highest, width in self._octaves()
        }

    def add(self, response: dict[str, Any], *, scale: int = 1) -> None:
        """Count the buckets of `request(..., scale=scale)` in `response`."""
        for name, lowest, highest, width in self._octaves():
            answer = cast("dict[str, Any]", response.get(_scaled_name(name, scale), {}))
            items = cast("list[dict[str, Any]]", answer.get("buckets", []))
            for item in items:
                start = float(item["key"]) / scale
                if not lowest <= start < highest:  # bounds are inclusive: `highest` belongs to the next octave
                    continue
                middle = 0.0 if name == "z" else start + width / 2
                self.counts[middle] = self.counts.get(middle, 0) + int(item["doc_count"])

    def percentiles(self, percents: tuple[float, ...]) -> dict[float, float]:
        ordered = sorted(self.counts.items())
        total = sum(count for _value, count in ordered)
        if total == 0:
            return {}
        found: dict[float, float] = {}
        for percent in percents:
            rank, seen = percentile_rank(percent, total), 0
            for value, count in ordered:
                seen += count
                if seen > rank:
                    found[percent] = value
                    break
        return found


def _scaled_name(name: str, scale: int) -> str:
    return name if scale == 1 else f"{name}x{scale}"
