"""`LogStore.aggregate` for the OpenSearch store: one native aggregation over the tenant's daily indices.

How an aggregation runs (shape and guarantees: `mintlog.ports.aggregation`; the answer is built by the
store-agnostic `mintlog.adapters.logstore.aggregate_tree.finish`, as for the Tantivy store, so ordering, ties,
`other_count`, zero-filled histograms and metric rules are the same code):

- One search (`size: 0`) over the indices of the days in range, filtered like `search` (tenant id, time
  range, the compiled query), nests one native aggregation per group, in order: a terms group on
  `service`, `level`, `host`, `source`, `trace_id` or `span_id` is a `terms` aggregation on that keyword;
  one on `fields.<key>` is a `terms` aggregation on the `field_pairs` keyword restricted (`include`) to the
  terms `fields.<key>=<text>`, whose prefix is stripped, so keys are the value texts of
  `mintlog.query.values.value_text`; a histogram is a `date_histogram` on `timestamp` with a
  `fixed_interval`, which OpenSearch aligns on the Unix epoch in UTC. Leaves compute `stats` (and
  `percentiles` when asked) of `field_numbers.value` inside a `nested` aggregation filtered on the key.
- Terms aggregations ask for *every* value (`size` and `shard_size` `NATIVE_BUCKETS`), never a top N, so
  counts are exact across days and shards; a response whose terms were cut anyway
  (`sum_other_doc_count` or `doc_count_error_upper_bound` above 0), or that hit the cluster's
  `search.max_buckets`, is asked again in two halves of its time range, down to single microseconds, and
  the partial trees are merged exactly. At most `MAX_TRACKED_BUCKETS` distinct buckets are merged; beyond
  that the request fails with 400 `too_many_buckets` (the Tantivy store's limit).
- Percentiles are OpenSearch's TDigest estimates (`TDIGEST_COMPRESSION`), which interpolate between
  neighbouring numbers. A leaf whose numbers were split over several requests gets one more request for
  that leaf alone, so its estimate covers all its numbers at once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from opensearchpy import AsyncOpenSearch
from opensearchpy.exceptions import TransportError

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
    percents_by_field,
)
from mintlog.adapters.logstore.opensearch_client import search_when_shards_started, translate_errors
from mintlog.adapters.logstore.opensearch_documents import FIELD_PAIRS, FIELD_PAIRS_PREFIX, utc_instant
from mintlog.adapters.logstore.opensearch_search import FIRST_INSTANT, LAST_INSTANT, adapt_query
from mintlog.errors import BadRequest, StoreUnavailable
from mintlog.ports.aggregation import (
    MAX_TRACKED_BUCKETS,
    TERMS_FIELDS,
    AggregateQuery,
    AggregateResult,
    HistogramGroup,
    TermsGroup,
)
from mintlog.ports.logstore import epoch_micros
from mintlog.query.ast import field_key
from mintlog.query.patterns import lucene_escape
from mintlog.query.values import pair_prefix

__all__ = [
    "AGGREGATE_FILTER_PATH",
    "MAX_TRACKED_BUCKETS",
    "NATIVE_BUCKETS",
    "TDIGEST_COMPRESSION",
    "TERMS_FIELDS",
    "aggregate_indices",
    "check_aggregate_query",
    "native_aggregations",
]

NATIVE_BUCKETS = 65_000
"""`size` of every native terms aggregation: just under the cluster's default `search.max_buckets` (65,535)."""
TDIGEST_COMPRESSION = 200.0
"""TDigest compression of percentiles (OpenSearch's default is 100; memory grows with it). TDigest bounds the
error in rank, not in value: on 60,000 log-normal numbers over three days every estimate from p1 to p99.9 was
within 0.35 % of the value at rank floor(p / 100 * (n - 1)); small buckets are estimated by interpolating
between the numbers around that rank."""
AGGREGATE_FILTER_PATH = "hits.total,aggregations"
"""The parts of an aggregation response the store reads."""

_NUMBERS = "m"
_STATS = "s"
_PERCENTILES = "p"
_NUMBERS_PATH = "field_numbers"
_NUMBER_KEY = "field_numbers.key"
_NUMBER_VALUE = "field_numbers.value"
_DATE_FORMAT = "strict_date_optional_time_nanos"
_ONE_DAY_US = 86_400_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIRST_US = epoch_micros(datetime.fromisoformat(FIRST_INSTANT))
_END_US = epoch_micros(datetime.fromisoformat(LAST_INSTANT)) + 1
_PARAMS = {
    "ignore_unavailable": "true",
    "allow_no_indices": "true",
    "allow_partial_search_results": "false",
    "filter_path": AGGREGATE_FILTER_PATH,
}


def check_aggregate_query(query: AggregateQuery) -> None:
    """Raise `ValueError` for a group or metric on a field the port does not allow (the caller's mistake)."""
    for group in query.groups:
        if isinstance(group, TermsGroup):
            _terms_source(group.field)
    for spec in query.metrics:
        _metric_key(spec.field)


async def aggregate_indices(
    client: AsyncOpenSearch,
    index: str,
    days: list[date],
    query: AggregateQuery,
    node_dsl: dict[str, Any],
    *,
    native_buckets: int = NATIVE_BUCKETS,
    max_buckets: int = MAX_TRACKED_BUCKETS,
) -> AggregateResult:
    """Aggregate `query` (whose node compiled to `node_dsl`) over `index`, the indices of `days` (oldest first).

    `days` may be empty (nothing stored in range: the answer is empty, with a zero-filled bounded
    histogram). `native_buckets` is the `size` of native terms aggregations and `max_buckets` the most
    distinct buckets merged (tests lower both). Raises `BadRequest` (`too_many_buckets`) past `max_buckets`,
    `StoreUnavailable` when the cluster fails, and `ValueError` like `check_aggregate_query`.
    """
    started = time.perf_counter()
    check_aggregate_query(query)
    run = _Run(
        client=client,
        index=index,
        query=query,
        filters=_base_filters(query, node_dsl),
        request=native_aggregations(query, native_buckets),
        metric_fields=metric_fields(query.metrics),
        percents=percents_by_field(query.metrics),
        max_buckets=max_buckets,
    )
    root = PartialBucket()
    if days:
        root = await run.collect(_whole_span(query, days))
        await run.settle_percentiles(root)
    result = finish(root, query, _no_combination)
    result.took_ms = (time.perf_counter() - started) * 1000.0
    return result


def native_aggregations(query: AggregateQuery, native_buckets: int = NATIVE_BUCKETS) -> dict[str, Any]:
    """The `aggs` of the search body for `query`: groups nested in order, number statistics in the leaves."""
    level = _leaf_aggregations(query)
    for group in reversed(query.groups):
        if isinstance(group, TermsGroup):
            source, prefix = _terms_source(group.field)
            spec: dict[str, Any] = {"field": source, "size": native_buckets, "shard_size": native_buckets}
            if prefix:
                spec["include"] = f"{lucene_escape(prefix)}.*"
            aggregation: dict[str, Any] = {"terms": spec}
        else:
            aggregation = {
                "date_histogram": {
                    "field": "timestamp",
                    "fixed_interval": f"{group.interval_seconds}s",
                    "min_doc_count": 1,
                }
            }
        if level:
            aggregation["aggs"] = level
        level = {GROUP_KEY: aggregation}
    return level


def _leaf_aggregations(query: AggregateQuery, only_percentiles: str | None = None) -> dict[str, Any]:
    """`stats` (and `percentiles`) of every metric field, or only the percentiles of `only_percentiles`."""
    percents = percents_by_field(query.metrics)
    per_key: dict[str, Any] = {}
    for index, metric_field in enumerate(metric_fields(query.metrics)):
        if only_percentiles is not None and metric_field != only_percentiles:
            continue
        numbers: dict[str, Any] = {}
        if only_percentiles is None:
            numbers[_STATS] = {"stats": {"field": _NUMBER_VALUE}}
        if metric_field in percents:
            numbers[_PERCENTILES] = {
                "percentiles": {
                    "field": _NUMBER_VALUE,
                    "percents": list(percents[metric_field]),
                    "keyed": False,
                    "tdigest": {"compression": TDIGEST_COMPRESSION},
                }
            }
        per_key[f"f{index}"] = {"filter": {"term": {_NUMBER_KEY: _metric_key(metric_field)}}, "aggs": numbers}
    if not per_key:
        return {}
    return {_NUMBERS: {"nested": {"path": _NUMBERS_PATH}, "aggs": per_key}}


def _terms_source(group_field: str) -> tuple[str, str]:
    """The keyword field a terms group buckets, and the prefix its terms carry (`fields.<key>=`)."""
    if group_field in TERMS_FIELDS:
        return group_field, ""
    key = field_key(group_field)
    if not key:
        raise ValueError(f"cannot group by {group_field!r}: not one of {sorted(TERMS_FIELDS)} or fields.<key>")
    return FIELD_PAIRS, FIELD_PAIRS_PREFIX + pair_prefix(key)


def _metric_key(metric_field: str) -> str:
    """The key of `fields.<key>` in `field_numbers`."""
    key = field_key(metric_field)
    if not key:
        raise ValueError(f"cannot summarize {metric_field!r}: metrics apply to fields.<key> only")
    return key


def _base_filters(query: AggregateQuery, node_dsl: dict[str, Any]) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = [{"term": {"tenant_id": query.tenant_id}}]
    if "match_all" not in node_dsl:
        filters.append(adapt_query(node_dsl))
    return filters


def _time_filter(start_us: int, end_us: int) -> dict[str, Any]:
    """Events with `start_us <= timestamp < end_us`, bounds clamped to what `date_nanos` holds."""
    start_us, end_us = max(start_us, _FIRST_US), min(end_us, _END_US)
    if end_us <= start_us:
        return {"match_none": {}}
    return {
        "range": {
            "timestamp": {"gte": _instant(start_us), "lt": _instant(end_us), "format": _DATE_FORMAT},
        }
    }


def _instant(moment_us: int) -> str:
    return utc_instant(_EPOCH + timedelta(microseconds=moment_us))


def _whole_span(query: AggregateQuery, days: list[date]) -> tuple[int, int]:
    """`[start, end)` in µs: the query's bounds, or the first and last selected day's."""
    first, last = days[0], days[-1]
    start_us = epoch_micros(datetime(first.year, first.month, first.day, tzinfo=UTC))
    end_us = epoch_micros(datetime(last.year, last.month, last.day, tzinfo=UTC)) + _ONE_DAY_US
    if query.start is not None:
        start_us = max(start_us, epoch_micros(query.start))
    if query.end is not None:
        end_us = min(end_us, epoch_micros(query.end))
    return start_us, end_us


def _no_combination(*_args: object) -> dict[float, float]:
    """`finish` never needs to combine: `settle_percentiles` left one estimate per leaf."""
    raise AssertionError("percentiles of several requests are settled before finishing")


def _too_large(max_buckets: int) -> BadRequest:
    return BadRequest(
        f"the aggregation has more than {max_buckets} distinct buckets; group by fields with fewer "
        "values, or narrow the query or the time range",
        code="too_many_buckets",
    )


@dataclass(slots=True)
class _Run:
    client: AsyncOpenSearch
    index: str
    query: AggregateQuery
    filters: list[dict[str, Any]]
    request: dict[str, Any]
    metric_fields: list[str]
    percents: dict[str, tuple[float, ...]]
    max_buckets: int
    units: int = 0
    tracked: int = 1

    # --- pass 1: every group and leaf statistic ---------------------------------------------------------

    async def collect(self, span: tuple[int, int]) -> PartialBucket:
        """The merged tree of every event in `span`, asked in as few requests as the bucket limits allow."""
        root = PartialBucket()
        pending = [span]
        while pending:
            start_us, end_us = pending.pop()
            try:
                tree = await self._aggregate_span(start_us, end_us)
            except TooManyBuckets:
                if end_us - start_us <= 1:
                    raise _too_large(self.max_buckets) from None
                middle = start_us + (end_us - start_us) // 2
                pending.extend([(middle, end_us), (start_us, middle)])
                continue
            self.tracked += root.merge(tree)
            if self.tracked > self.max_buckets:
                raise _too_large(self.max_buckets)
        return root

    async def _aggregate_span(self, start_us: int, end_us: int) -> PartialBucket:
        body: dict[str, Any] = {
            "size": 0,
            "track_total_hits": True,
            "query": {"bool": {"filter": [*self.filters, _time_filter(start_us, end_us)]}},
        }
        if self.request:
            body["aggs"] = self.request
        response = await self._search(body)
        unit = self.units
        self.units += 1
        try:
            total = int(cast("dict[str, Any]", cast("dict[str, Any]", response["hits"])["total"])["value"])
            root = PartialBucket(count=total)
            _Reader(self, unit).read(cast("dict[str, Any]", response.get("aggregations", {})), root, 0)
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreUnavailable(f"opensearch store got an unexpected aggregation response: {exc!r}") from exc
        return root

    async def _search(self, body: dict[str, Any]) -> dict[str, Any]:
        with translate_errors("aggregate"):  # lets `TooManyBuckets` through
            try:
                response = await search_when_shards_started(self.client, index=self.index, body=body, params=_PARAMS)
            except TransportError as exc:
                if "too_many_buckets_exception" in str(exc.info):
                    raise TooManyBuckets from exc
                raise
        if not isinstance(response, dict):
            raise StoreUnavailable("opensearch store got an unexpected aggregation response")
        return cast("dict[str, Any]", response)

    # --- pass 2: percentiles of leaves whose numbers came in several requests ---------------------------

    async def settle_percentiles(self, root: PartialBucket) -> None:
        """Give every leaf the answer will show one percentile estimate covering all its numbers."""
        if not self.percents or self.units <= 1:
            return
        for path, leaf in self._shown_leaves(root, 0, ()):
            for metric_field in self.percents:
                estimates = leaf.estimates.get(metric_field, [])
                if len({estimate.unit for estimate in estimates}) <= 1:
                    continue
                values = await self._leaf_percentiles(path, metric_field)
                leaf.estimates[metric_field] = [PercentileEstimate(unit=-1, values=values)]

    def _shown_leaves(
        self, bucket: PartialBucket, depth: int, path: tuple[ChildKey, ...]
    ) -> Iterator[tuple[tuple[ChildKey, ...], PartialBucket]]:
        """The leaves `finish` reports: for terms only the `size` most frequent values (its own order)."""
        groups = self.query.groups
        if depth == len(groups):
            yield path, bucket
            return
        group = groups[depth]
        children = list(bucket.children.items())
        if isinstance(group, TermsGroup):
            children = sorted(children, key=lambda item: (-item[1].count, item[0]))[: max(group.size, 0)]
        for key, child in children:
            yield from self._shown_leaves(child, depth + 1, (*path, key))

    async def _leaf_percentiles(self, path: tuple[ChildKey, ...], metric_field: str) -> dict[float, float]:
        body: dict[str, Any] = {
            "size": 0,
            "track_total_hits": False,
            "query": {"bool": {"filter": [*self.filters, *self._path_clauses(path)]}},
            "aggs": _leaf_aggregations(self.query, only_percentiles=metric_field),
        }
        if self.query.start is not None or self.query.end is not None:
            start_us = _FIRST_US if self.query.start is None else epoch_micros(self.query.start)
            end_us = _END_US if self.query.end is None else epoch_micros(self.query.end)
            body["query"]["bool"]["filter"].append(_time_filter(start_us, end_us))
        response = await self._search(body)
        index = self.metric_fields.index(metric_field)
        try:
            numbers = cast("dict[str, Any]", cast("dict[str, Any]", response["aggregations"])[_NUMBERS])
            return _percentile_values(cast("dict[str, Any]", numbers[f"f{index}"])[_PERCENTILES])
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreUnavailable(f"opensearch store got an unexpected percentiles response: {exc!r}") from exc

    def _path_clauses(self, path: tuple[ChildKey, ...]) -> Iterator[dict[str, Any]]:
        for group, key in zip(self.query.groups, path, strict=True):
            if isinstance(group, HistogramGroup):
                assert isinstance(key, int)
                yield _time_filter(key, key + group.interval_seconds * 1_000_000)
                continue
            source, prefix = _terms_source(group.field)
            yield {"term": {source: f"{prefix}{key}"}}


class _Reader(NativeReader):
    """Reads OpenSearch's answer: histogram keys in epoch milliseconds, terms keys `fields.<key>=<text>`."""

    def __init__(self, run: _Run, unit: int) -> None:
        super().__init__(run.query.groups)
        self.run = run
        self.unit = unit

    def histogram_key(self, native_key: object) -> int:
        return int(cast("int", native_key)) * 1000

    def terms_prefix_length(self, group: TermsGroup) -> int:
        return len(_terms_source(group.field)[1])

    def leaf(self, node: dict[str, Any], bucket: PartialBucket) -> None:
        if not self.run.metric_fields:
            return
        numbers = cast("dict[str, Any]", node.get(_NUMBERS, {}))
        for index, metric_field in enumerate(self.run.metric_fields):
            found = cast("dict[str, Any]", numbers.get(f"f{index}", {}))
            stats = cast("dict[str, Any]", found.get(_STATS, {}))
            count = int(stats.get("count") or 0)
            if count == 0:
                continue
            bucket.stats[metric_field] = NumberStats(
                count=count, total=float(stats["sum"]), minimum=float(stats["min"]), maximum=float(stats["max"])
            )
            if metric_field in self.run.percents:
                values = _percentile_values(found[_PERCENTILES])
                bucket.estimates[metric_field] = [PercentileEstimate(unit=self.unit, values=values)]


def _percentile_values(result: object) -> dict[float, float]:
    """`{percent: value}` of a `percentiles` result asked with `keyed: false` (missing values left out)."""
    items = cast("list[dict[str, Any]]", cast("dict[str, Any]", result)["values"])
    values: dict[float, float] = {}
    for item in items:
        value = item.get("value")
        if value is not None and math.isfinite(float(value)):
            values[float(item["key"])] = float(value)
    return values
