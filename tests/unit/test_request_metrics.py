"""The request-latency histogram counts a response until it starts, so long-lived streams (tails) do not
swamp it, while a slow handler still counts in full."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from mintlog.http.app import RequestContextMiddleware
from mintlog.metrics import Metrics


def latency_sum(metrics: Metrics) -> float:
    value = metrics.registry.get_sample_value("mintlog_http_request_seconds_sum", {"server": "api"})
    assert value is not None
    return value


async def serve(app: Any) -> tuple[Metrics, list[dict[str, Any]]]:
    metrics = Metrics()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    middleware = RequestContextMiddleware(app, server="api", metrics=metrics)
    await middleware(cast("Any", {"type": "http", "headers": []}), cast("Any", receive), send)
    return metrics, sent


async def test_a_stream_counts_until_it_opens_not_while_it_stays_open() -> None:
    async def stream(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(3):
            await asyncio.sleep(0.1)
            await send({"type": "http.response.body", "body": b"data: x\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    metrics, sent = await serve(stream)

    assert latency_sum(metrics) < 0.1
    assert b"x-request-id" in dict(sent[0]["headers"])


async def test_a_slow_answer_counts_in_full() -> None:
    async def slow(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(0.2)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}", "more_body": False})

    metrics, _ = await serve(slow)

    assert latency_sum(metrics) >= 0.2
