"""`GET /v1/logs/fields` and `GET /v1/logs/{id}/context` over HTTP, end to end on embedded defaults."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.harness import MintlogProcess

EVENTS: list[dict[str, Any]] = [
    {
        "service": "checkout" if index % 4 else "search",
        "host": "web-1" if index % 3 else "web-2",
        "level": "error" if index % 5 == 0 else "info",
        "message": f"step {index:02d}",
        "timestamp": f"2026-11-20T10:00:{index:02d}Z",
        "fields": {"status": 500 if index % 5 == 0 else 200, "user_id": f"u{index % 2}"},
    }
    for index in range(30)
]


@pytest.fixture(scope="module")
def ingested(running: tuple[MintlogProcess, str]) -> tuple[MintlogProcess, str]:
    mintlog, key = running
    assert mintlog.ingest(key, {"events": EVENTS}).status_code == 202
    assert mintlog.wait_for_total(key, {}, len(EVENTS))["total"] == len(EVENTS)
    return mintlog, key


def get(mintlog: MintlogProcess, key: str, path: str, **params: str) -> httpx.Response:
    return httpx.get(f"{mintlog.api_url}{path}", params=params, headers={"X-API-Key": key}, timeout=30)


def test_fields_lists_types_and_top_values(ingested: tuple[MintlogProcess, str]) -> None:
    mintlog, key = ingested

    response = get(mintlog, key, "/v1/logs/fields", query="service:checkout", top="2")

    assert response.status_code == 200, response.text
    answer = response.json()
    fields = {field["name"]: field for field in answer["fields"]}
    checkout = [event for index, event in enumerate(EVENTS) if index % 4]
    assert answer["sampled"] == answer["total"] == len(checkout)
    assert fields["service"]["top_values"] == [{"value": "checkout", "count": len(checkout)}]
    assert fields["fields.status"]["type"] == "number"
    assert fields["fields.status"]["top_values"][0] == {
        "value": "200",
        "count": sum(1 for event in checkout if event["fields"]["status"] == 200),
    }
    assert len(fields["fields.user_id"]["top_values"]) == 2


def test_context_returns_the_neighbours_from_the_same_service_and_host(ingested: tuple[MintlogProcess, str]) -> None:
    mintlog, key = ingested
    page = mintlog.search(key, {"query": '"step 13"'}).json()
    target = page["events"][0]

    response = get(mintlog, key, f"/v1/logs/{target['id']}/context", before="2", after="2")

    assert response.status_code == 200, response.text
    answer = response.json()
    same = [
        event["message"]
        for event in EVENTS
        if event["service"] == target["service"] and event["host"] == target["host"]
    ]
    position = same.index("step 13")
    assert answer["event"]["message"] == "step 13"
    assert [event["message"] for event in answer["before"]] == same[position - 2 : position]
    assert [event["message"] for event in answer["after"]] == same[position + 1 : position + 3]


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/v1/logs/no-such-id/context", {}, 404, None),
        ("/v1/logs/x/context", {"before": "501"}, 400, "invalid_parameter"),
        ("/v1/logs/x/context", {"same": "level"}, 400, "invalid_parameter"),
        ("/v1/logs/x/context", {"tenant_id": "other"}, 400, "unknown_parameter"),
        ("/v1/logs/fields", {"query": "level:(error"}, 400, "invalid_query"),
        ("/v1/logs/fields", {"from": "yesterday"}, 400, "invalid_time"),
        # Out of range (a 500 before: the offset overflowed `datetime`, or the store's day range did).
        ("/v1/logs/fields", {"from": "9999-12-31T23:59:59-14:00"}, 400, "invalid_time"),
        ("/v1/logs/fields", {"to": "0001-01-01T00:00:00Z"}, 400, "invalid_time"),
        ("/v1/logs/fields", {"top": "-1"}, 400, "invalid_parameter"),
    ],
)
def test_bad_requests_are_problems(
    ingested: tuple[MintlogProcess, str], path: str, params: dict[str, str], status: int, code: str | None
) -> None:
    mintlog, key = ingested

    response = get(mintlog, key, path, **params)

    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    if code is not None:
        assert response.json()["code"] == code


def test_both_endpoints_need_a_key(ingested: tuple[MintlogProcess, str]) -> None:
    mintlog, _key = ingested
    assert httpx.get(f"{mintlog.api_url}/v1/logs/fields", timeout=30).status_code == 401
    assert httpx.get(f"{mintlog.api_url}/v1/logs/abc/context", timeout=30).status_code == 401
