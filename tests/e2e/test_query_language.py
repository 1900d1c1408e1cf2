"""`POST /v1/logs/search` with the query language (docs/query-language.md), end to end on embedded defaults."""

from __future__ import annotations

from typing import Any

import httpx
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


# Hints (docs/query-language.md, "Hints"): a query that can never mean what it says is a 400 with the query
# probably meant; a valid one that is likely wrong answers with `warnings`. Each suggestion is runnable.


@pytest.mark.parametrize(
    ("query", "position", "says", "suggestion", "expected"),
    [
        ("level:eror", 6, "did you mean 'error'?", "level:error", ["index unavailable", "payment gateway timeout"]),
        ("level:warning", 6, "did you mean 'warn'?", "level:warn", ["connection reset by peer"]),
        ("servce:search", 0, "did you mean 'service'?", "service:search", ["index unavailable"]),
        ("status:503", 0, "did you mean fields.status?", "fields.status:503", ["payment gateway timeout"]),
        ("web-1:80", 0, 'quote the word: "web-1:80"', '"web-1:80"', []),
        ("gateway[0]", 7, 'quote it: "gateway[0]"', '"gateway[0]"', []),
    ],
)
def test_a_query_that_cannot_mean_what_it_says_is_a_400_with_the_query_meant(
    ingested: tuple[MintlogProcess, str], query: str, position: int, says: str, suggestion: str, expected: list[str]
) -> None:
    mintlog, key = ingested
    response = mintlog.search(key, {"query": query})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert (problem["code"], problem["position"], problem["suggestion"]) == ("invalid_query", position, suggestion)
    assert says in problem["detail"]
    assert messages(mintlog, key, {"query": suggestion}) == expected


@pytest.mark.parametrize(
    ("query", "code", "suggestion", "expected"),
    [
        ("payment and gateway", "lowercase_operator", "payment AND gateway", ["payment gateway timeout"]),
        (
            "level:(warn or info)",
            "lowercase_operator",
            "level:(warn OR info)",
            ["payment accepted", "connection reset by peer"],
        ),
        ("service=search", "equals_sign", "service:search", ["index unavailable"]),
        ("user_id=u2", "equals_sign", "fields.user_id:u2", ["payment accepted"]),
    ],
)
def test_a_valid_but_likely_wrong_query_answers_with_a_warning(
    ingested: tuple[MintlogProcess, str], query: str, code: str, suggestion: str, expected: list[str]
) -> None:
    mintlog, key = ingested
    response = mintlog.search(key, {"query": query})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["events"] == []  # what the query says finds nothing: hence the warning
    (warning,) = answer["warnings"]
    assert (warning["code"], warning["suggestion"]) == (code, suggestion)
    assert warning["message"]
    assert messages(mintlog, key, {"query": suggestion}) == expected
    assert "warnings" not in mintlog.search(key, {"query": suggestion}).json()


def test_aggregate_warns_and_refuses_like_search(ingested: tuple[MintlogProcess, str]) -> None:
    mintlog, key = ingested

    def aggregate(body: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{mintlog.api_url}/v1/logs/aggregate", json=body, headers={"X-API-Key": key}, timeout=30)

    warned = aggregate({"query": "level:error or level:warn"})
    assert warned.status_code == 200, warned.text
    assert warned.json()["total"] == 0
    assert [warning["suggestion"] for warning in warned.json()["warnings"]] == ["level:error OR level:warn"]
    meant = aggregate({"query": "level:error OR level:warn"}).json()
    assert meant["total"] == 3
    assert "warnings" not in meant

    refused = aggregate({"query": "level:eror"})
    assert refused.status_code == 400
    assert (refused.json()["code"], refused.json()["suggestion"]) == ("invalid_query", "level:error")


def test_an_unknown_level_filter_is_a_400_naming_the_level_meant(ingested: tuple[MintlogProcess, str]) -> None:
    mintlog, key = ingested
    response = mintlog.search(key, {"level": ["error", "warning"]})
    assert response.status_code == 400, response.text
    problem = response.json()
    assert (problem["code"], problem["suggestion"]) == ("invalid_level", "warn")
    assert "'warning'" in problem["detail"]
