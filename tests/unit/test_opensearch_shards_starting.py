"""A search racing the creation of a new day's index is tried again instead of answering 503 at once."""

from __future__ import annotations

from typing import Any

import pytest
from opensearchpy.exceptions import TransportError

from mintlog.adapters.logstore import opensearch_client
from mintlog.adapters.logstore.opensearch_client import search_when_shards_started

_ALL_SHARDS_FAILED = TransportError(
    503,
    "search_phase_execution_exception",
    {"error": {"root_cause": [], "type": "search_phase_execution_exception", "reason": "all shards failed"}},
)
_BAD_QUERY = TransportError(
    400, "parsing_exception", {"error": {"type": "parsing_exception", "reason": "unknown query [nope]"}}
)


_TOO_MANY_BUCKETS = TransportError(
    503,
    "search_phase_execution_exception",
    {
        "error": {
            "root_cause": [{"type": "too_many_buckets_exception", "reason": "Trying to create too many buckets"}],
            "type": "search_phase_execution_exception",
            "reason": "all shards failed",
        }
    },
)


class _ScriptedClient:
    """Raises the scripted errors in order, then answers."""

    def __init__(self, failures: list[TransportError]) -> None:
        self.failures = failures
        self.calls = 0

    async def search(self, **request: Any) -> dict[str, Any]:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return {"hits": {"hits": []}, "request": request}


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []

    async def record(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr(opensearch_client.asyncio, "sleep", record)
    return slept


async def test_starting_shards_are_waited_for(no_waiting: list[float]) -> None:
    client = _ScriptedClient([_ALL_SHARDS_FAILED, _ALL_SHARDS_FAILED])
    answer = await search_when_shards_started(client, index="logs-t-2026.12.06")  # pyright: ignore[reportArgumentType]
    assert answer["request"] == {"index": "logs-t-2026.12.06"}
    assert client.calls == 3
    assert no_waiting == [0.1, 0.2]


@pytest.mark.parametrize("error", [_BAD_QUERY, _TOO_MANY_BUCKETS], ids=["bad-query", "too-many-buckets"])
async def test_other_errors_are_raised_at_once(error: TransportError) -> None:
    client = _ScriptedClient([error])
    with pytest.raises(TransportError) as raised:
        await search_when_shards_started(client, index="x")  # pyright: ignore[reportArgumentType]
    assert raised.value is error
    assert client.calls == 1


async def test_shards_that_never_start_fail_after_about_two_and_a_half_seconds(no_waiting: list[float]) -> None:
    client = _ScriptedClient([_ALL_SHARDS_FAILED] * 10)
    with pytest.raises(TransportError):
        await search_when_shards_started(client, index="x")  # pyright: ignore[reportArgumentType]
    assert client.calls == 6
    assert sum(no_waiting) == pytest.approx(2.5)
