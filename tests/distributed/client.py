"""HTTP and bus helpers the distributed tests share."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

__all__ = ["api", "ingest", "search", "search_all", "stream_messages", "wait_for_total"]


def ingest(url: str, key: str, events: list[dict[str, Any]], timeout: float = 30) -> httpx.Response:
    return httpx.post(f"{url}/v1/ingest/logs", json={"events": events}, headers={"X-API-Key": key}, timeout=timeout)


def api(url: str, key: str, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, f"{url}{path}", json=body, headers={"X-API-Key": key}, timeout=30)


def search(url: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{url}/v1/logs/search", json=body, headers={"X-API-Key": key}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def search_all(url: str, key: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every matching event, page after page (5,000 a page, the suite's MINTLOG_SEARCH__MAX_SIZE).

    Not 10,000 a page: the OpenSearch adapter asks for one event more than `size` (to know whether a next
    page exists), and OpenSearch refuses a result window above 10,000 (a 503 from Mintlog).
    """
    events: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = search(url, key, {**body, "size": 5_000, **({"cursor": cursor} if cursor else {})})
        events.extend(page["events"])
        cursor = page.get("next_cursor")
        if not cursor:
            return events


def wait_for_total(
    url: str, key: str, body: dict[str, Any], total: int, timeout_seconds: float, *, stall_seconds: float | None = None
) -> int:
    """Poll until the search total reaches `total`; the last total seen.

    Gives up after `timeout_seconds`, or, with `stall_seconds`, once the total has not grown for that long (a
    backlog still draining on a loaded machine is waited for; one that stopped is not).
    """
    deadline = time.monotonic() + timeout_seconds
    seen = -1
    grew_at = time.monotonic()
    while time.monotonic() < deadline:
        current = int(search(url, key, {**body, "size": 1})["total"])
        if current > seen:
            seen, grew_at = current, time.monotonic()
        if seen >= total:
            return seen
        if stall_seconds is not None and time.monotonic() - grew_at > stall_seconds:
            return seen
        time.sleep(0.25)
    return seen


def stream_messages(nats_url: str, stream: str) -> int:
    """How many messages JetStream holds in `stream` (limits retention: everything ever published)."""

    async def count() -> int:
        import nats

        connection = await nats.connect(nats_url, connect_timeout=5)
        try:
            info = await connection.jetstream().stream_info(stream)  # pyright: ignore[reportUnknownMemberType]
            return int(info.state.messages)
        finally:
            await connection.close()

    return asyncio.run(count())
