"""`POST /v1/logs/aggregate`: the request body, its checks, the store query and the answer (docs/api.md).

The body takes what search takes to select events (`query`, `level`, `service`, `host`, `fields`, `from`,
`to`) plus how to group and summarize them: `group_by` (a field or a list, outermost first), `interval`
(a date histogram, always the outermost group), `size` (terms per group) and `metrics`. Every limit is
checked before the store is asked, so an accepted request has a bounded answer:

- at most `MAX_GROUPS` groups, `MAX_TERMS_SIZE` terms per group, `MAX_METRICS` metrics;
- a histogram spans at most `MAX_HISTOGRAM_BUCKETS` buckets: `to` defaults to now and `from` to
  `SearchSettings.aggregate_default_hours` before `to`, or later when the interval is so small that this
  would exceed the limit (`to - MAX_HISTOGRAM_BUCKETS * interval`);
- at most `MAX_RESPONSE_BUCKETS` buckets in all (histogram buckets times the `size` of each terms group).
"""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from litestar import Controller, Request, Response, post
from msgspec import UNSET, UnsetType

from mintlog.errors import BadRequest
from mintlog.http.guards import principal_of, requires
from mintlog.ports.aggregation import (
    MAX_GROUPS,
    MAX_HISTOGRAM_BUCKETS,
    MAX_TERMS_SIZE,
    AggregateQuery,
    AggregateResult,
    Bucket,
    Group,
    HistogramGroup,
    MetricOp,
    MetricSpec,
    TermsGroup,
)
from mintlog.ports.logstore import epoch_micros
from mintlog.query import QueryWarning
from mintlog.query.ast import field_key
from mintlog.roles.api.common.dependencies import Injected
from mintlog.roles.api.common.resource import operation
from mintlog.roles.api.common.wire import TimeExpression
from mintlog.roles.api.logs.reading import LogReading
from mintlog.roles.api.logs.search import decode_reading_body, filter_query, read_reading_body, time_range
from mintlog.settings import SearchSettings

__all__ = [
    "DEFAULT_TERMS_SIZE",
    "GROUP_FIELDS",
    "MAX_METRICS",
    "MAX_PERCENTS",
    "MAX_RESPONSE_BUCKETS",
    "Aggregate",
    "AggregateAnswer",
    "AggregateBucket",
    "AggregateRequest",
    "MetricRequest",
    "build_aggregate_query",
    "decode_aggregate_request",
    "encode_aggregate_result",
]

DEFAULT_TERMS_SIZE = 10
"""Terms per group when `size` is absent."""
MAX_METRICS = 10
"""Most metrics one request may ask for."""
MAX_PERCENTS = 20
"""Most percents one `percentiles` metric may ask for."""
MAX_RESPONSE_BUCKETS = 100_000
"""Most buckets an answer may hold: histogram buckets times the `size` of every terms group."""
GROUP_FIELDS = ("service", "level", "host", "source", "trace_id", "span_id")
"""Event attributes `group_by` accepts, besides `fields.<key>`."""

_METRIC_OPS: tuple[MetricOp, ...] = ("min", "max", "avg", "sum", "count", "percentiles")
_OPS_BY_NAME: dict[str, MetricOp] = {op: op for op in _METRIC_OPS}
_DEFAULT_PERCENTS = (50.0, 95.0, 99.0)
_INTERVAL = re.compile(r"([1-9][0-9]{0,6})(s|m|h|d)")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
_MAX_INTERVAL_SECONDS = 366 * 86_400
_MAX_BODY = 64 * 1024


class MetricRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One metric: `op` (min, max, avg, sum, count, percentiles) of the numbers of `field` (`fields.<key>`).

    `name` (default `op(field)`, e.g. `avg(fields.duration_ms)`) is its key in `metrics`; `percents` only
    for `percentiles` (default 50, 95, 99).
    """

    op: str
    field: str
    name: str | None = None
    percents: list[float] | None = None


class AggregateRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The aggregate body. Every member is optional; `{}` counts every event."""

    query: str | None = None
    level: str | list[str] | None = None
    service: str | list[str] | None = None
    host: str | list[str] | None = None
    fields: dict[str, str | int | float | bool] | None = None
    from_: TimeExpression | None = msgspec.field(default=None, name="from")
    to: TimeExpression | None = None
    group_by: str | list[str] | None = None
    interval: str | None = None
    size: int | None = None
    metrics: list[MetricRequest] | None = None


_decoder = msgspec.json.Decoder(AggregateRequest)


def decode_aggregate_request(body: bytes) -> AggregateRequest:
    """Parse the body; an empty body is `{}`. Raises `BadRequest` (`invalid_aggregate`, `malformed_json`)."""
    return decode_reading_body(body, _decoder, AggregateRequest, name="aggregate")


def build_aggregate_query(
    tenant_id: str, request: AggregateRequest, settings: SearchSettings, now: datetime | None = None
) -> AggregateQuery:
    """The store query for a request, with every limit checked. The tenant comes from the key, never the body.

    Raises `BadRequest` with a code naming the problem: `invalid_field`, `invalid_interval`, `invalid_size`,
    `invalid_metric`, `too_many_groups`, `too_many_buckets`, `invalid_time`, `invalid_level`; a malformed
    `query` is `QuerySyntaxError` (`invalid_query`, with its position).
    """
    return _aggregate_query(tenant_id, request, settings, now)[0]


def _aggregate_query(
    tenant_id: str, request: AggregateRequest, settings: SearchSettings, now: datetime | None = None
) -> tuple[AggregateQuery, list[QueryWarning]]:
    now = now or datetime.now(UTC)
    terms_size = DEFAULT_TERMS_SIZE if request.size is None else request.size
    if not 1 <= terms_size <= MAX_TERMS_SIZE:
        raise BadRequest(f"size must be between 1 and {MAX_TERMS_SIZE}, got {terms_size}", code="invalid_size")
    groups: list[Group] = [TermsGroup(_group_field(name), size=terms_size) for name in _names(request.group_by)]
    start, end = time_range(request.from_, request.to, now)
    histogram_buckets = 1
    if request.interval is not None:
        interval_seconds = _interval_seconds(request.interval)
        groups.insert(0, HistogramGroup(interval_seconds))
        start, end = _histogram_range(start, end, interval_seconds, settings, now)
        histogram_buckets = _bucket_count(start, end, interval_seconds)
    if len(groups) > MAX_GROUPS:
        raise BadRequest(
            f"at most {MAX_GROUPS} groups (the interval counts as one), got {len(groups)}", code="too_many_groups"
        )
    answer_buckets = histogram_buckets * terms_size ** sum(isinstance(group, TermsGroup) for group in groups)
    if answer_buckets > MAX_RESPONSE_BUCKETS:
        raise BadRequest(
            f"the answer could hold {answer_buckets} buckets, more than {MAX_RESPONSE_BUCKETS}; use a smaller "
            "size, a longer interval or a shorter time range",
            code="too_many_buckets",
        )
    node, warnings = filter_query(request)
    query = AggregateQuery(
        tenant_id=tenant_id,
        node=node,
        now=now,
        start=start,
        end=end,
        groups=tuple(groups),
        metrics=_metrics(request.metrics or []),
    )
    return query, warnings


def _names(group_by: str | list[str] | None) -> list[str]:
    if group_by is None:
        return []
    return [group_by] if isinstance(group_by, str) else list(group_by)


def _group_field(name: str) -> str:
    if name in GROUP_FIELDS or field_key(name):
        return name
    raise BadRequest(
        f"cannot group by {name!r}: use one of {', '.join(GROUP_FIELDS)} or fields.<key> "
        "(for a date histogram, use `interval`)",
        code="invalid_field",
    )


def _interval_seconds(text: str) -> int:
    match = _INTERVAL.fullmatch(text)
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)] if match else 0
    if not 1 <= seconds <= _MAX_INTERVAL_SECONDS:
        raise BadRequest(
            f"interval must be a whole number of s, m, h or d (e.g. 30s, 5m, 1h, 1d) up to 366d, got {text!r}",
            code="invalid_interval",
        )
    return seconds


def _histogram_range(
    start: datetime | None, end: datetime | None, interval_seconds: int, settings: SearchSettings, now: datetime
) -> tuple[datetime, datetime]:
    """The bounds of a histogram: `to` defaults to now, `from` to the default look-back (see the module)."""
    end = end or now
    if start is None:
        default_hours = timedelta(hours=settings.aggregate_default_hours)
        start = end - min(default_hours, timedelta(seconds=interval_seconds) * MAX_HISTOGRAM_BUCKETS)
    if start >= end:
        raise BadRequest("`from` must be earlier than `to` (which defaults to now)", code="invalid_time")
    return start, end


def _bucket_count(start: datetime, end: datetime, interval_seconds: int) -> int:
    """Buckets from the one holding `start` to the one holding `end - 1µs` (the port's span)."""
    interval_us = interval_seconds * 1_000_000
    count = (epoch_micros(end) - 1) // interval_us - epoch_micros(start) // interval_us + 1
    if count > MAX_HISTOGRAM_BUCKETS:
        raise BadRequest(
            f"`from` to `to` holds {count} intervals, more than {MAX_HISTOGRAM_BUCKETS}; use a longer interval "
            "or a shorter time range",
            code="too_many_buckets",
        )
    return count


def _metrics(requested: list[MetricRequest]) -> tuple[MetricSpec, ...]:
    if len(requested) > MAX_METRICS:
        raise BadRequest(f"at most {MAX_METRICS} metrics, got {len(requested)}", code="invalid_metric")
    specs: list[MetricSpec] = []
    for metric in requested:
        op = _OPS_BY_NAME.get(metric.op)
        if op is None:
            raise BadRequest(
                f"metric op must be one of {', '.join(_METRIC_OPS)}, got {metric.op!r}", code="invalid_metric"
            )
        if not field_key(metric.field):
            raise BadRequest(
                f"metrics summarize the numbers of fields.<key>, got {metric.field!r}", code="invalid_field"
            )
        name = metric.name if metric.name is not None else f"{op}({metric.field})"
        if not name:
            raise BadRequest("a metric name must not be empty", code="invalid_metric")
        if any(spec.name == name for spec in specs):
            raise BadRequest(f"two metrics are named {name!r}; give them distinct names", code="invalid_metric")
        specs.append(MetricSpec(name=name, op=op, field=metric.field, percents=_percents(op, metric.percents)))
    return tuple(specs)


def _percents(op: MetricOp, percents: list[float] | None) -> tuple[float, ...]:
    if percents is None:
        return _DEFAULT_PERCENTS
    if op != "percentiles":
        raise BadRequest(f"`percents` only applies to percentiles, not {op}", code="invalid_metric")
    if not 1 <= len(percents) <= MAX_PERCENTS or not all(
        math.isfinite(percent) and 0 < percent <= 100 for percent in percents
    ):
        raise BadRequest(
            f"`percents` takes 1 to {MAX_PERCENTS} numbers above 0 and at most 100, got {percents!r}",
            code="invalid_metric",
        )
    return tuple(dict.fromkeys(float(percent) for percent in percents))


MetricAnswer = float | dict[str, float | None] | None
"""A metric: a number, null when nothing was there to summarize, or for `percentiles` `{"50.0": 12.5, ...}`."""


class AggregateBucket(msgspec.Struct, kw_only=True):
    """One bucket: `key` is the value's text for a terms group, or the start of the interval (RFC 3339, UTC)
    for the histogram; `count` the events in it. Then either its sub-buckets (`buckets`, with `other_count`
    events in sub-buckets left out by `size`), or, in an innermost bucket of a request with metrics, its
    `metrics`."""

    key: str
    count: int
    buckets: list[AggregateBucket] | UnsetType = UNSET
    other_count: int | UnsetType = UNSET
    metrics: dict[str, MetricAnswer] | UnsetType = UNSET


class AggregateAnswer(msgspec.Struct, kw_only=True):
    """The aggregate answer: `total` and `took_ms` always; `buckets` and `other_count` when the request
    groups; `metrics` here when it asks for metrics without groups (with groups, in the innermost buckets);
    `warnings` when the query is valid but likely not what was meant (docs/query-language.md, "Hints")."""

    total: int
    took_ms: float
    buckets: list[AggregateBucket] | UnsetType = UNSET
    other_count: int | UnsetType = UNSET
    metrics: dict[str, MetricAnswer] | UnsetType = UNSET
    warnings: list[QueryWarning] | UnsetType = UNSET


_encoder = msgspec.json.Encoder()


def encode_aggregate_result(
    result: AggregateResult, query: AggregateQuery, warnings: list[QueryWarning] | None = None
) -> bytes:
    """The answer as JSON (docs/api.md, "Aggregations"): an `AggregateAnswer`, with `warnings` when there are."""
    answer = AggregateAnswer(total=result.total, took_ms=round(result.took_ms, 3), warnings=warnings or UNSET)
    if query.groups:
        answer.buckets = [_bucket(bucket, 1, query) for bucket in result.buckets]
        answer.other_count = result.other_count
    elif query.metrics:
        answer.metrics = result.metrics
    return _encoder.encode(answer)


def _bucket(bucket: Bucket, depth: int, query: AggregateQuery) -> AggregateBucket:
    """One bucket of group `depth` (1 = outermost)."""
    key = bucket.key if isinstance(bucket.key, str) else _rfc3339(bucket.key.astimezone(UTC))
    encoded = AggregateBucket(key=key, count=bucket.count)
    if depth < len(query.groups):
        encoded.buckets = [_bucket(child, depth + 1, query) for child in bucket.buckets]
        encoded.other_count = bucket.other_count
    elif query.metrics:
        encoded.metrics = bucket.metrics
    return encoded


def _rfc3339(moment: datetime) -> str:
    text = msgspec.to_builtins(moment)
    assert isinstance(text, str)
    return text


class Aggregate(Controller):
    """`POST /v1/logs/aggregate` (scope `search:logs`)."""

    path = "/v1/logs/aggregate"

    @post(
        guards=[requires("search:logs")],
        status_code=200,
        summary="Count and summarize log events by field and time.",
        description=(
            "Body (all optional): query, level, service, host, fields, from, to (as for search); group_by (a "
            "field or a list: service, level, host, source, trace_id, span_id, fields.<key>); interval (30s, 5m, "
            "1h, 1d: a date histogram, the outermost group); size (terms per group, default 10); metrics "
            "([{op, field, name?, percents?}], op one of min, max, avg, sum, count, percentiles)."
        ),
        opt=operation(body=AggregateRequest, body_required=False, answer=AggregateAnswer),
    )
    async def aggregate_logs(
        self,
        request: Request[Any, Any, Any],
        reading: Injected[LogReading],
    ) -> Response[bytes]:
        principal = principal_of(request)
        body = await read_reading_body(request, max_bytes=_MAX_BODY, name="aggregate")
        query, warnings = _aggregate_query(principal.tenant_id, decode_aggregate_request(body), reading.search)
        started = time.perf_counter()
        result = await reading.store.aggregate(query)
        reading.metrics.aggregate_seconds.observe(time.perf_counter() - started)
        answer = encode_aggregate_result(result, query, warnings)
        return Response(answer, status_code=200, media_type="application/json")
