"""`POST /v1/logs/aggregate` over HTTP, end to end on embedded defaults (docs/api.md, "Aggregations")."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.harness import MintlogProcess

LEVELS = ("info", "info", "warn", "error")
FIRST = datetime(2026, 11, 20, 22, tzinfo=UTC)
# 48 events, one every 15 minutes from 2026-11-20T22:00Z: they cross midnight into a second UTC day.
EVENTS: list[dict[str, Any]] = [
    {
        "service": "checkout" if index % 3 else "search",
        "host": f"web-{index % 2}",
        "level": LEVELS[index % 4],
        "message": f"request {index}",
        "timestamp": (FIRST + timedelta(minutes=15 * index)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "fields": {"duration_ms": 100 + index, "status": 500 if index % 4 == 3 else 200},
    }
    for index in range(48)
]


@pytest.fixture(scope="module")
def ingested(running: tuple[MintlogProcess, str]) -> tuple[MintlogProcess, str]:
    mintlog, key = running
    assert mintlog.ingest(key, {"events": EVENTS}).status_code == 202
    assert mintlog.wait_for_total(key, {}, len(EVENTS))["total"] == len(EVENTS)
    return mintlog, key


def aggregate(mintlog: MintlogProcess, key: str | None, body: dict[str, Any]) -> httpx.Response:
    headers = {"X-API-Key": key} if key else {}
    return httpx.post(f"{mintlog.api_url}/v1/logs/aggregate", json=body, headers=headers, timeout=30)


def test_the_seed_request_charts_volume_by_level_per_hour(ingested: tuple[MintlogProcess, str]) -> None:
    mintlog, key = ingested

    response = aggregate(
        mintlog,
        key,
        {"group_by": "level", "interval": "1h", "from": "2026-11-20T21:00:00Z", "to": "2026-11-21T10:00:00Z"},
    )

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["total"] == 48
    assert isinstance(answer["took_ms"], float)
    hours = answer["buckets"]
    assert [bucket["key"] for bucket in hours] == [
        "2026-11-20T21:00:00Z",
        "2026-11-20T22:00:00Z",
        "2026-11-20T23:00:00Z",
        *[f"2026-11-21T{hour:02d}:00:00Z" for hour in range(10)],
    ]
    assert [bucket["count"] for bucket in hours] == [0] + [4] * 12
    assert hours[0]["buckets"] == []
    assert hours[1]["buckets"] == [
        {"key": "info", "count": 2},
        {"key": "error", "count": 1},
        {"key": "warn", "count": 1},
    ]
    assert all(bucket["other_count"] == 0 for bucket in hours)


def test_terms_with_metrics_and_filters(ingested: tuple[MintlogProcess, str]) -> None:
    mintlog, key = ingested
    checkout = [event for event in EVENTS if event["service"] == "checkout"]

    response = aggregate(
        mintlog,
        key,
        {
            "query": "service:checkout",
            "group_by": ["fields.status", "host"],
            "size": 1,
            "metrics": [
                {"op": "max", "field": "fields.duration_ms"},
                {"op": "count", "field": "fields.duration_ms", "name": "timed"},
            ],
        },
    )

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["total"] == len(checkout)
    statuses = Counter(str(event["fields"]["status"]) for event in checkout)
    (status, status_count), *rest = statuses.most_common()
    assert [(bucket["key"], bucket["count"]) for bucket in answer["buckets"]] == [(status, status_count)]
    assert answer["other_count"] == sum(count for _status, count in rest)
    inside = [event for event in checkout if str(event["fields"]["status"]) == status]
    hosts = sorted(Counter(event["host"] for event in inside).items(), key=lambda item: (-item[1], item[0]))
    (host, host_count), *others = hosts
    top = answer["buckets"][0]
    assert top["buckets"] == [
        {
            "key": host,
            "count": host_count,
            "metrics": {
                "max(fields.duration_ms)": max(
                    event["fields"]["duration_ms"] for event in inside if event["host"] == host
                ),
                "timed": host_count,
            },
        }
    ]
    assert top["other_count"] == sum(count for _host, count in others)


def test_without_groups_the_answer_has_the_overall_metrics(ingested: tuple[MintlogProcess, str]) -> None:
    mintlog, key = ingested

    response = aggregate(
        mintlog,
        key,
        {"level": "error", "metrics": [{"op": "avg", "field": "fields.duration_ms", "name": "mean"}]},
    )

    assert response.status_code == 200, response.text
    answer = response.json()
    errors = [event["fields"]["duration_ms"] for event in EVENTS if event["level"] == "error"]
    assert sorted(answer) == ["metrics", "took_ms", "total"]
    assert answer["total"] == len(errors)
    assert answer["metrics"] == {"mean": sum(errors) / len(errors)}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"interval": "1x"}, "invalid_interval"),
        ({"interval": "1s", "from": "now-7d"}, "too_many_buckets"),
        ({"group_by": "message"}, "invalid_field"),
        ({"group_by": ["level", "host", "service", "source"]}, "too_many_groups"),
        ({"metrics": [{"op": "avg", "field": "level"}]}, "invalid_field"),
        ({"query": "level:(error"}, "invalid_query"),
        ({"group_by": "level", "size": 5000}, "invalid_size"),
        ({"unknown": True}, "invalid_aggregate"),
    ],
)
def test_a_bad_request_is_a_400_problem(running: tuple[MintlogProcess, str], body: dict[str, Any], code: str) -> None:
    mintlog, key = running

    response = aggregate(mintlog, key, body)

    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code


def test_aggregating_needs_an_api_key(running: tuple[MintlogProcess, str]) -> None:
    mintlog, _key = running

    assert aggregate(mintlog, None, {}).status_code == 401
