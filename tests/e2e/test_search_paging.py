"""Paging `POST /v1/logs/search` with `next_cursor`, and the capped total, end to end on embedded defaults."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.harness import MintlogProcess

# 45 events over three seconds of one day and a few on the next: many share a timestamp.
EVENTS: list[dict[str, Any]] = [
    {
        "service": "pager",
        "level": "info",
        "message": f"line {index:02d}",
        "timestamp": f"2026-11-20T10:00:0{index % 3}Z" if index < 40 else f"2026-11-21T08:00:{index:02d}Z",
    }
    for index in range(45)
]


@pytest.fixture(scope="module")
def ingested(running: tuple[MintlogProcess, str]) -> tuple[MintlogProcess, str]:
    mintlog, key = running
    assert mintlog.ingest(key, {"events": EVENTS}).status_code == 202
    assert mintlog.wait_for_total(key, {}, len(EVENTS))["total"] == len(EVENTS)
    return mintlog, key


def read_all_pages(mintlog: MintlogProcess, key: str, body: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    messages: list[str] = []
    answers: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(100):
        response = mintlog.search(key, {**body, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        answer = response.json()
        answers.append(answer)
        messages.extend(event["message"] for event in answer["events"])
        cursor = answer["next_cursor"]
        if cursor is None:
            return messages, answers
    raise AssertionError("paging did not end")


@pytest.mark.parametrize("sort", ["desc", "asc"])
def test_paging_with_the_cursor_returns_every_event_once_in_order(
    ingested: tuple[MintlogProcess, str], sort: str
) -> None:
    mintlog, key = ingested
    everything = mintlog.search(key, {"size": 100, "sort": sort}).json()
    assert everything["next_cursor"] is None

    messages, answers = read_all_pages(mintlog, key, {"size": 7, "sort": sort})

    assert messages == [event["message"] for event in everything["events"]]
    assert len(messages) == len(set(messages)) == len(EVENTS)
    assert [len(answer["events"]) for answer in answers] == [7] * 6 + [3]
    assert {answer["total"] for answer in answers} == {len(EVENTS)}


def test_a_full_last_page_has_no_next_cursor(ingested: tuple[MintlogProcess, str]) -> None:
    mintlog, key = ingested

    _messages, answers = read_all_pages(mintlog, key, {"size": 15})

    assert [len(answer["events"]) for answer in answers] == [15, 15, 15]


def test_events_ingested_while_paging_do_not_shift_the_pages(ingested: tuple[MintlogProcess, str]) -> None:
    mintlog, key = ingested
    first = mintlog.search(key, {"size": 10, "query": "service:pager"}).json()
    newer = {"service": "pager", "level": "info", "message": "arrived later", "timestamp": "2026-11-22T00:00:00Z"}
    assert mintlog.ingest(key, {"events": [newer]}).status_code == 202
    mintlog.wait_for_total(key, {"query": "service:pager"}, len(EVENTS) + 1)

    second = mintlog.search(key, {"size": 10, "query": "service:pager", "cursor": first["next_cursor"]}).json()

    before = mintlog.search(key, {"size": 100, "query": "service:pager"}).json()["events"]
    ordered = [event["message"] for event in before if event["message"] != "arrived later"]
    assert [event["message"] for event in first["events"] + second["events"]] == ordered[:20]


@pytest.mark.parametrize(
    ("cursor", "sort", "detail"),
    [("not-a-cursor", "desc", "not a cursor"), ("", "desc", "not a cursor"), (None, "asc", "sort 'desc'")],
)
def test_a_bad_cursor_is_a_400_problem(
    ingested: tuple[MintlogProcess, str], cursor: str | None, sort: str, detail: str
) -> None:
    mintlog, key = ingested
    if cursor is None:  # a real cursor, but from a search with the other sort order
        cursor = mintlog.search(key, {"size": 1}).json()["next_cursor"]
    response = mintlog.search(key, {"size": 1, "sort": sort, "cursor": cursor})
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["code"] == "invalid_cursor"
    assert detail in problem["detail"]


def test_the_total_becomes_a_lower_bound_above_the_configured_cap(
    mintlog_factory: Callable[..., MintlogProcess],
) -> None:
    mintlog = mintlog_factory(MINTLOG_SEARCH__TOTAL_CAP="20")
    mintlog.start()
    key = mintlog.bootstrap("capped")
    assert mintlog.ingest(key, {"events": EVENTS}).status_code == 202
    mintlog.wait_for_total(key, {}, 20)

    answer = mintlog.search(key, {"size": 5}).json()
    exact = mintlog.search(key, {"size": 5, "query": "timestamp:>=2026-11-21T00:00:00Z"}).json()

    assert (answer["total"], answer["total_relation"]) == (20, "gte")
    assert (exact["total"], exact["total_relation"]) == (5, "eq")
