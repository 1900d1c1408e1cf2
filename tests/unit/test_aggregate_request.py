"""`POST /v1/logs/aggregate` bodies: what they become for the store, and every refusal with its code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from mintlog.errors import BadRequest
from mintlog.ports.aggregation import AggregateQuery, AggregateResult, Bucket, HistogramGroup, MetricSpec, TermsGroup
from mintlog.query import QuerySyntaxError, all_of, parse
from mintlog.query.filters import equals
from mintlog.roles.api.logs.aggregate import build_aggregate_query, decode_aggregate_request, encode_aggregate_result
from mintlog.settings import SearchSettings

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SETTINGS = SearchSettings(aggregate_default_hours=24)


def build(body: bytes, settings: SearchSettings = SETTINGS) -> AggregateQuery:
    return build_aggregate_query("acme", decode_aggregate_request(body), settings, NOW)


def refusal(body: bytes) -> BadRequest:
    with pytest.raises(BadRequest) as raised:
        build(body)
    return raised.value


def test_the_seed_body_is_an_hourly_histogram_split_by_level_over_the_last_day() -> None:
    query = build(b'{"group_by": "level", "interval": "1h"}')

    assert query.tenant_id == "acme"
    assert query.groups == (HistogramGroup(3600), TermsGroup("level", size=10))
    assert (query.start, query.end) == (NOW - timedelta(hours=24), NOW)
    assert query.now == NOW


def test_an_empty_body_counts_every_event_of_all_time() -> None:
    query = build(b"")

    assert query == AggregateQuery(tenant_id="acme", node=parse(""), now=NOW)


def test_filters_and_time_range_select_the_events_like_search() -> None:
    query = build(
        b'{"query": "timeout", "level": ["error", "warn"], "service": "api", "fields": {"status": 500},'
        b' "from": "now-2h", "to": "now-1h", "group_by": ["service", "fields.status"], "size": 3}'
    )

    assert query.node == all_of(
        [
            parse("timeout"),
            parse("level:error OR level:warn"),
            equals("service", "api"),
            equals("fields.status", 500),
        ]
    )
    assert (query.start, query.end) == (NOW - timedelta(hours=2), NOW - timedelta(hours=1))
    assert query.groups == (TermsGroup("service", size=3), TermsGroup("fields.status", size=3))


@pytest.mark.parametrize(
    ("interval", "seconds"), [("30s", 30), ("5m", 300), ("1h", 3600), ("1d", 86_400), ("366d", 366 * 86_400)]
)
def test_intervals(interval: str, seconds: int) -> None:
    query = build(msgspec.json.encode({"interval": interval}))

    assert query.groups == (HistogramGroup(seconds),)


@pytest.mark.parametrize("interval", ["0s", "1", "1w", "1.5h", "-1h", "h", "1H", " 1h", "367d", "99999999s"])
def test_a_bad_interval_is_refused(interval: str) -> None:
    assert refusal(msgspec.json.encode({"interval": interval})).code == "invalid_interval"


def test_the_histogram_is_outermost_and_from_defaults_within_the_bucket_limit() -> None:
    seconds = build(b'{"interval": "1s", "group_by": "host"}')
    minutes = build(b'{"interval": "1m", "to": "now-1d"}')

    assert seconds.groups == (HistogramGroup(1), TermsGroup("host", size=10))
    assert (seconds.start, seconds.end) == (NOW - timedelta(seconds=10_000), NOW)
    assert (minutes.start, minutes.end) == (NOW - timedelta(days=2), NOW - timedelta(days=1))


def test_the_default_look_back_is_a_setting() -> None:
    query = build(b'{"interval": "1h"}', SearchSettings(aggregate_default_hours=72))

    assert query.start == NOW - timedelta(hours=72)


def test_from_without_to_runs_until_now() -> None:
    query = build(b'{"interval": "5m", "from": "now-3h"}')

    assert (query.start, query.end) == (NOW - timedelta(hours=3), NOW)


def test_a_histogram_of_too_many_intervals_is_refused() -> None:
    error = refusal(b'{"interval": "1s", "from": "now-1d"}')

    assert error.code == "too_many_buckets"
    assert "86400 intervals" in error.detail


def test_an_answer_of_too_many_buckets_is_refused() -> None:
    # 24 hourly buckets x 100 x 100 terms
    error = refusal(b'{"interval": "1h", "group_by": ["host", "service"], "size": 100}')

    assert error.code == "too_many_buckets"


def test_a_histogram_starting_in_the_future_is_refused() -> None:
    assert refusal(b'{"interval": "1h", "from": "now+1h"}').code == "invalid_time"


def test_a_histogram_at_the_edge_of_the_time_range_is_answered_or_refused_never_an_error() -> None:
    # The default look-back of a histogram ending at the earliest time stays representable.
    query = build(b'{"interval": "1d", "to": "1000-01-01T00:00:00Z"}', SearchSettings(aggregate_default_hours=24 * 366))
    assert (query.start, query.end) == (datetime(998, 12, 31, tzinfo=UTC), datetime(1000, 1, 1, tzinfo=UTC))
    # Before the earliest time there is no look-back to take (an OverflowError, a 500, before).
    assert refusal(b'{"interval": "1h", "to": "0001-01-01T00:00:01Z"}').code == "invalid_time"
    assert refusal(b'{"to": "9999-12-31T23:59:59-14:00"}').code == "invalid_time"


@pytest.mark.parametrize("field", ["message", "timestamp", "id", "fields.", "tenant_id", "Level", ""])
def test_grouping_by_an_unknown_field_is_refused(field: str) -> None:
    error = refusal(msgspec.json.encode({"group_by": field}))

    assert error.code == "invalid_field"
    assert repr(field) in error.detail


def test_more_than_three_groups_are_refused() -> None:
    assert refusal(b'{"group_by": ["level", "host", "service"], "interval": "1d"}').code == "too_many_groups"
    assert refusal(b'{"group_by": ["level", "host", "service", "source"]}').code == "too_many_groups"


@pytest.mark.parametrize("size", [0, -1, 1001])
def test_size_outside_its_range_is_refused(size: int) -> None:
    assert refusal(msgspec.json.encode({"group_by": "level", "size": size})).code == "invalid_size"


def test_metrics_become_named_specs() -> None:
    query = build(
        b'{"metrics": [{"op": "avg", "field": "fields.ms"}, {"op": "percentiles", "field": "fields.ms",'
        b' "percents": [50, 99.9, 50]}, {"op": "count", "field": "fields.ms", "name": "timed"}]}'
    )

    assert query.metrics == (
        MetricSpec("avg(fields.ms)", "avg", "fields.ms"),
        MetricSpec("percentiles(fields.ms)", "percentiles", "fields.ms", (50.0, 99.9)),
        MetricSpec("timed", "count", "fields.ms"),
    )


@pytest.mark.parametrize(
    ("metric", "code"),
    [
        ({"op": "median", "field": "fields.ms"}, "invalid_metric"),
        ({"op": "avg", "field": "level"}, "invalid_field"),
        ({"op": "avg", "field": "fields."}, "invalid_field"),
        ({"op": "avg", "field": "fields.ms", "percents": [50]}, "invalid_metric"),
        ({"op": "percentiles", "field": "fields.ms", "percents": [0]}, "invalid_metric"),
        ({"op": "percentiles", "field": "fields.ms", "percents": [100.5]}, "invalid_metric"),
        ({"op": "percentiles", "field": "fields.ms", "percents": []}, "invalid_metric"),
        ({"op": "max", "field": "fields.ms", "name": ""}, "invalid_metric"),
    ],
)
def test_a_bad_metric_is_refused(metric: dict[str, object], code: str) -> None:
    assert refusal(msgspec.json.encode({"metrics": [metric]})).code == code


def test_two_metrics_with_one_name_are_refused() -> None:
    error = refusal(b'{"metrics": [{"op": "max", "field": "fields.a"}, {"op": "max", "field": "fields.a"}]}')

    assert error.code == "invalid_metric"
    assert "max(fields.a)" in error.detail


def test_more_than_ten_metrics_are_refused() -> None:
    body = msgspec.json.encode({"metrics": [{"op": "max", "field": f"fields.k{index}"} for index in range(11)]})

    assert refusal(body).code == "invalid_metric"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"group_by": 5}', "invalid_aggregate"),
        (b'{"interval": "1h", "unknown": 1}', "invalid_aggregate"),
        (b'{"metrics": [{"op": "max"}]}', "invalid_aggregate"),
        (b"{not json", "malformed_json"),
    ],
)
def test_a_malformed_body_is_refused(body: bytes, code: str) -> None:
    with pytest.raises(BadRequest) as raised:
        decode_aggregate_request(body)

    assert raised.value.code == code


def test_a_bad_query_reports_its_position() -> None:
    with pytest.raises(QuerySyntaxError) as raised:
        build(b'{"query": "level:(error"}')

    assert raised.value.code == "invalid_query"


def test_a_bad_time_is_refused() -> None:
    assert refusal(b'{"from": "yesterday"}').code == "invalid_time"
    assert refusal(b'{"from": "now", "to": "now-1h"}').code == "invalid_time"


def test_the_answer_shape() -> None:
    query = build(b'{"interval": "1h", "group_by": "level", "metrics": [{"op": "max", "field": "fields.ms"}]}')
    hour = datetime(2026, 11, 26, 10, tzinfo=UTC)
    result = AggregateResult(
        total=3,
        took_ms=1.23456,
        buckets=[
            Bucket(
                key=hour,
                count=3,
                buckets=[Bucket(key="error", count=2, metrics={"max(fields.ms)": 7.5})],
                other_count=1,
            ),
            Bucket(key=hour + timedelta(hours=1), count=0),
        ],
    )

    answer = msgspec.json.decode(encode_aggregate_result(result, query))

    assert answer == {
        "total": 3,
        "took_ms": 1.235,
        "other_count": 0,
        "buckets": [
            {
                "key": "2026-11-26T10:00:00Z",
                "count": 3,
                "other_count": 1,
                "buckets": [{"key": "error", "count": 2, "metrics": {"max(fields.ms)": 7.5}}],
            },
            {"key": "2026-11-26T11:00:00Z", "count": 0, "other_count": 0, "buckets": []},
        ],
    }


def test_without_groups_the_answer_carries_the_metrics() -> None:
    query = build(b'{"metrics": [{"op": "percentiles", "field": "fields.ms", "percents": [50]}]}')
    result = AggregateResult(total=9, metrics={"percentiles(fields.ms)": {"50.0": 4.0}})

    answer = msgspec.json.decode(encode_aggregate_result(result, query))

    assert answer == {"total": 9, "took_ms": 0.0, "metrics": {"percentiles(fields.ms)": {"50.0": 4.0}}}
