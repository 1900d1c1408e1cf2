"""`POST /v1/logs/search` with the query language (docs/query-language.md), end to end on embedded defaults."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.harness import MintlogProcess

EVENTS: list[dict[str, Any]] = [
    {
        "service": "checkout",
        "level": "error",
        "host": "web-1",
        "message": "payment gateway timeout",
        "timestamp": "2026-11-20T10:00:01Z",
        "fields": {"status": 503, "user_id": "u1"},
    },
    {
        "service": "checkout-worker",
        "level": "warn",
        "host": "web-2",
        "message": "connection reset by peer",
        "timestamp": "2026-11-20T10:00:02Z",
        "fields": {"status": "500", "retry": True},
    },
    {
        "service": "search",
        "level": "error",
        "host": "web-1",
        "message": "index unavailable",
        "timestamp": "2026-11-20T10:00:03Z",
        "fields": {"status": 502},
    },
    {
        "service": "checkout",
        "level": "info",
        "host": "web-3",
        "message": "payment accepted",
        "timestamp": "2026-11-21T09:00:00Z",
        "fields": {"status": 200, "user_id": "u2"},
    },
]


@pytest.fixture(scope="module")
def ingested(running: tuple[MintlogProcess, str]) -> tuple[MintlogProcess, str]:
    mintlog, key = running
    assert mintlog.ingest(key, {"events": EVENTS}).status_code == 202
    assert mintlog.wait_for_total(key, {}, len(EVENTS))["total"] == len(EVENTS)
    return mintlog, key


def messages(mintlog: MintlogProcess, key: str, body: dict[str, Any]) -> list[str]:
    response = mintlog.search(key, body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["total"] == len(answer["events"])
    return [event["message"] for event in answer["events"]]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"query": "fields.status:[500 TO 599] AND service:check*"},
            ["connection reset by peer", "payment gateway timeout"],
        ),
        ({"query": '"gateway timeout"'}, ["payment gateway timeout"]),
        ({"query": "payment -level:error"}, ["payment accepted"]),
        ({"query": "service:search OR fields.user_id:u2"}, ["payment accepted", "index unavailable"]),
        ({"query": "_exists_:fields.retry"}, ["connection reset by peer"]),
        ({"query": "fields.status:>=502", "level": "error"}, ["index unavailable", "payment gateway timeout"]),
        ({"query": "timestamp:>=2026-11-21T00:00:00Z"}, ["payment accepted"]),
        (
            {"query": "timestamp:[2026-11-20T10:00:02Z TO 2026-11-20T10:00:03Z]", "sort": "asc"},
            ["connection reset by peer", "index unavailable"],
        ),
        ({"query": "service:checkout", "fields": {"status": 503}}, ["payment gateway timeout"]),
        ({"query": "", "host": ["web-2", "web-3"]}, ["payment accepted", "connection reset by peer"]),
    ],
)
def test_queries_return_the_right_events(
    ingested: tuple[MintlogProcess, str], body: dict[str, Any], expected: list[str]
) -> None:
    mintlog, key = ingested
    assert messages(mintlog, key, body) == expected


@pytest.mark.parametrize(
    ("query", "position"),
    [("level:(error", 12), ("servce:api", 0), ("fields.status:[500 TO", 21)],
)
def test_a_syntax_error_is_a_400_problem_with_its_position(
    running: tuple[MintlogProcess, str], query: str, position: int
) -> None:
    mintlog, key = running
    response = mintlog.search(key, {"query": query})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "invalid_query"
    assert problem["position"] == position
    assert str(position) in problem["detail"]
