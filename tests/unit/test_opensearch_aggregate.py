"""The OpenSearch aggregation: the native request, reading responses, splitting when buckets overflow.

The contract suite (`tests/contract/test_logstore_aggregate.py`) checks the answers on both stores; here the
request shape and the overflow paths are checked with a scripted client. Splitting against the real
OpenSearch (the split answer must equal the one-request answer): tests/integration/test_opensearch_aggregate_split.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

import pytest
from opensearchpy import AsyncOpenSearch
from opensearchpy.exceptions import TransportError

from mintlog.adapters.logstore.opensearch_aggregate import (
    TDIGEST_COMPRESSION,
    aggregate_indices,
    check_aggregate_query,
    native_aggregations,
)
from mintlog.errors import BadRequest, StoreUnavailable
from mintlog.ports.aggregation import (
    AggregateQuery,
    AggregateResult,
    Group,
    HistogramGroup,
    MetricSpec,
    TermsGroup,
)
from mintlog.ports.logstore import epoch_micros
from mintlog.query import parse
from mintlog.query.opensearch import to_opensearch
from tests.contract.test_logstore import DAY1, DAY2

DAY = DAY1.date()
Handler = Callable[[dict[str, Any]], dict[str, Any]]


class ScriptedClient:
    """Answers every search with `handler(body)` (which may raise) and records the bodies."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.bodies: list[dict[str, Any]] = []

    async def search(self, *, index: str, body: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        assert params["ignore_unavailable"] == "true"
        self.bodies.append(body)
        return self.handler(body)


def query_of(
    *groups: Group,
    metrics: tuple[MetricSpec, ...] = (),
    start: datetime | None = None,
    end: datetime | None = None,
) -> AggregateQuery:
    return AggregateQuery(tenant_id="acme", now=DAY2, groups=groups, metrics=metrics, start=start, end=end)


async def run(
    client: ScriptedClient | AsyncOpenSearch, query: AggregateQuery, index: str = "idx", **limits: int
) -> AggregateResult:
    return await aggregate_indices(
        cast("AsyncOpenSearch", client), index, [DAY], query, to_opensearch(query.node, query.now), **limits
    )


def span_of(body: dict[str, Any]) -> tuple[str, str]:
    bounds = body["query"]["bool"]["filter"][-1]["range"]["timestamp"]
    return bounds["gte"], bounds["lt"]


def terms_answer(counts: dict[str, int], *, other: int = 0) -> dict[str, Any]:
    buckets = [{"key": key, "doc_count": count} for key, count in counts.items()]
    return {
        "hits": {"total": {"value": sum(counts.values()) + other}},
        "aggregations": {"g": {"doc_count_error_upper_bound": 0, "sum_other_doc_count": other, "buckets": buckets}},
    }


def too_many_buckets() -> TransportError:
    info = {"error": {"type": "search_phase_execution_exception", "caused_by": {"type": "too_many_buckets_exception"}}}
    return TransportError(503, "search_phase_execution_exception", info)


# --- the request -------------------------------------------------------------------------------------


def test_groups_nest_in_order_with_every_value_asked_and_metrics_in_the_leaves() -> None:
    query = query_of(
        HistogramGroup(3600),
        TermsGroup("fields.http.method", size=3),
        metrics=(MetricSpec("mean", "avg", "fields.ms"), MetricSpec("p", "percentiles", "fields.ms", (99.0, 50.0))),
    )

    aggs = native_aggregations(query, native_buckets=500)

    histogram = aggs["g"]
    assert histogram["date_histogram"] == {"field": "timestamp", "fixed_interval": "3600s", "min_doc_count": 1}
    terms = histogram["aggs"]["g"]
    assert terms["terms"] == {
        "field": "field_pairs",
        "size": 500,
        "shard_size": 500,
        "include": "fields\\.http\\.method\\=.*",
    }
    numbers = terms["aggs"]["m"]
    assert numbers["nested"] == {"path": "field_numbers"}
    leaf = numbers["aggs"]["f0"]
    assert leaf["filter"] == {"term": {"field_numbers.key": "ms"}}
    assert leaf["aggs"]["s"] == {"stats": {"field": "field_numbers.value"}}
    assert leaf["aggs"]["p"]["percentiles"] == {
        "field": "field_numbers.value",
        "percents": [50.0, 99.0],
        "keyed": False,
        "tdigest": {"compression": TDIGEST_COMPRESSION},
    }


def test_keyword_groups_bucket_the_keyword_itself_and_no_metric_means_no_leaf_aggregation() -> None:
    aggs = native_aggregations(query_of(TermsGroup("service"), TermsGroup("trace_id")))

    assert aggs["g"]["terms"]["field"] == "service"
    assert "include" not in aggs["g"]["terms"]
    assert aggs["g"]["aggs"]["g"] == {"terms": {"field": "trace_id", "size": 65_000, "shard_size": 65_000}}


@pytest.mark.parametrize(
    "query",
    [
        query_of(TermsGroup("message")),
        query_of(TermsGroup("fields.")),
        query_of(metrics=(MetricSpec("m", "max", "service"),)),
    ],
)
def test_groups_and_metrics_on_fields_the_port_does_not_allow_are_refused(query: AggregateQuery) -> None:
    with pytest.raises(ValueError, match="cannot"):
        check_aggregate_query(query)


async def test_the_request_filters_on_the_tenant_the_query_and_the_time_range() -> None:
    client = ScriptedClient(lambda _body: terms_answer({}))
    query = AggregateQuery(
        tenant_id="acme",
        node=parse("fields.user:u1"),
        now=DAY2,
        start=DAY1 + timedelta(hours=1),
        end=DAY1 + timedelta(hours=2),
        groups=(TermsGroup("level"),),
    )

    await run(client, query)

    (body,) = client.bodies
    assert body["size"] == 0
    assert body["query"]["bool"]["filter"] == [
        {"term": {"tenant_id": "acme"}},
        {"term": {"field_pairs": "fields.user=u1"}},
        {
            "range": {
                "timestamp": {
                    "gte": "2024-03-09T01:00:00.000000Z",
                    "lt": "2024-03-09T02:00:00.000000Z",
                    "format": "strict_date_optional_time_nanos",
                }
            }
        },
    ]


# --- reading and overflowing -------------------------------------------------------------------------


async def test_field_terms_lose_their_prefix_and_histogram_keys_become_instants() -> None:
    def answer(_body: dict[str, Any]) -> dict[str, Any]:
        hour = epoch_micros(DAY1 + timedelta(hours=3)) // 1000
        inner = {"sum_other_doc_count": 0, "buckets": [{"key": "fields.status=500", "doc_count": 2}]}
        return {
            "hits": {"total": {"value": 3}},
            "aggregations": {"g": {"buckets": [{"key": hour, "doc_count": 3, "g": inner}]}},
        }

    result = await run(ScriptedClient(answer), query_of(HistogramGroup(3600), TermsGroup("fields.status")))

    assert result.total == 3
    (bucket,) = result.buckets
    assert bucket.key == DAY1 + timedelta(hours=3)
    assert [(child.key, child.count) for child in bucket.buckets] == [("500", 2)]


@pytest.mark.parametrize("overflow", ["cut terms", "too many buckets"])
async def test_an_overflowing_request_is_asked_again_in_two_halves_and_merged_exactly(overflow: str) -> None:
    day_start, day_end = "2024-03-09T00:00:00.000000Z", "2024-03-10T00:00:00.000000Z"
    noon = "2024-03-09T12:00:00.000000Z"

    def answer(body: dict[str, Any]) -> dict[str, Any]:
        span = span_of(body)
        if span == (day_start, day_end):
            if overflow == "cut terms":
                return terms_answer({"a": 5}, other=4)
            raise too_many_buckets()
        return {(day_start, noon): terms_answer({"a": 2, "b": 3}), (noon, day_end): terms_answer({"a": 3, "c": 1})}[
            span
        ]

    client = ScriptedClient(answer)
    result = await run(client, query_of(TermsGroup("service", size=2)))

    assert [span_of(body) for body in client.bodies] == [(day_start, day_end), (day_start, noon), (noon, day_end)]
    assert result.total == 9
    assert [(bucket.key, bucket.count) for bucket in result.buckets] == [("a", 5), ("b", 3)]
    assert result.other_count == 1


async def test_an_instant_with_too_many_values_is_a_bad_request() -> None:
    client = ScriptedClient(lambda _body: terms_answer({"a": 1}, other=1))
    query = query_of(TermsGroup("service"), start=DAY1, end=DAY1 + timedelta(microseconds=4))

    with pytest.raises(BadRequest) as failure:
        await run(client, query)

    assert failure.value.code == "too_many_buckets"
    # 4 µs, then their first 2 µs, then its first microsecond, which cannot be split.
    assert [span_of(body)[1][-7:] for body in client.bodies] == ["000004Z", "000002Z", "000001Z"]


async def test_merging_more_distinct_buckets_than_allowed_is_a_bad_request() -> None:
    client = ScriptedClient(lambda _body: terms_answer({f"host-{index}": 1 for index in range(5)}))

    with pytest.raises(BadRequest) as failure:
        await run(client, query_of(TermsGroup("host")), max_buckets=4)

    assert failure.value.code == "too_many_buckets"


async def test_a_failing_cluster_or_an_odd_answer_is_store_unavailable() -> None:
    def failing(_body: dict[str, Any]) -> dict[str, Any]:
        raise TransportError(500, "internal", {"error": {"type": "boom", "reason": "disk"}})

    with pytest.raises(StoreUnavailable, match="could not aggregate"):
        await run(ScriptedClient(failing), query_of(TermsGroup("host")))
    with pytest.raises(StoreUnavailable, match="unexpected"):
        await run(ScriptedClient(lambda _body: {"hits": {}}), query_of(TermsGroup("host")))


async def test_no_index_in_range_answers_without_asking_the_cluster() -> None:
    client = ScriptedClient(lambda _body: pytest.fail("no request expected"))
    query = query_of(HistogramGroup(3600), start=DAY1, end=DAY1 + timedelta(hours=2))

    result = await aggregate_indices(cast("AsyncOpenSearch", client), "", [], query, {"match_all": {}})

    assert [(bucket.key, bucket.count) for bucket in result.buckets] == [(DAY1, 0), (DAY1 + timedelta(hours=1), 0)]
    assert client.bodies == []
