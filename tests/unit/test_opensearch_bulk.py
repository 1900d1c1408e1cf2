"""Per-item outcomes and retries of the OpenSearch bulk writer, against a scripted fake cluster.

The real cluster is exercised in tests/integration/test_opensearch_store.py; here every status a bulk
item can get is scripted, which a real cluster cannot be made to answer on demand.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import TransportError

from mintlog.adapters.logstore.opensearch_bulk import (
    BulkItem,
    BulkPolicy,
    EventsRejectedError,
    write_bulk,
)
from mintlog.domain.events import LogEvent
from mintlog.errors import StoreDiskFailure, StoreUnavailable

# Decides the status of one item from its event id and the attempt (1-based) it is sent in.
Script = Callable[[str, int], int]


class FakeCluster:
    """Answers bulk requests item by item as `script` says; raises `failures` for whole requests first."""

    def __init__(
        self, script: Script, failures: list[Exception] | None = None, error_types: dict[str, str] | None = None
    ) -> None:
        self.script = script
        self.failures = failures or []
        self.error_types = error_types or {}
        self.requests: list[list[str]] = []
        self.attempts: dict[str, int] = {}
        self.params: list[dict[str, Any]] = []

    async def bulk(self, *, body: Any, index: Any = None, params: Any = None, headers: Any = None) -> Any:
        lines = bytes(body).splitlines()
        ids = [msgspec.json.decode(line)["create"]["_id"] for line in lines[0::2]]
        self.requests.append(ids)
        self.params.append(dict(params or {}))
        if self.failures:
            raise self.failures.pop(0)
        items: list[dict[str, Any]] = []
        for event_id in ids:
            attempt = self.attempts[event_id] = self.attempts.get(event_id, 0) + 1
            status = self.script(event_id, attempt)
            result: dict[str, Any] = {"status": status}
            if status >= 400 and status != 409:
                error_type = self.error_types.get(event_id, f"error_{status}")
                result["error"] = {"type": error_type, "reason": f"status {status} for {event_id}"}
            items.append({"create": result})
        return {"errors": True, "items": items}


def item(event_id: str, size: int = 100) -> BulkItem:
    event = LogEvent(
        id=event_id,
        tenant_id="acme",
        timestamp=datetime(2024, 3, 9, tzinfo=UTC),
        received_at=datetime(2024, 3, 9, tzinfo=UTC),
        service="svc",
        level="info",
        message="m",
        host="h",
    )
    action = msgspec.json.encode({"create": {"_index": "mintlog-acme-2024.03.09", "_id": event_id}})
    document = msgspec.json.encode({"pad": "x" * size})
    return BulkItem(event=event, index="mintlog-acme-2024.03.09", lines=action + b"\n" + document + b"\n")


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


POLICY = BulkPolicy(max_retries=3, initial_backoff_seconds=1.0, max_backoff_seconds=3.0)


async def write(cluster: FakeCluster, items: list[BulkItem], sleeps: Sleeps, policy: BulkPolicy = POLICY) -> Any:
    return await write_bulk(cluster, items, policy, request_timeout_seconds=10.0, sleep=sleeps)


async def test_created_and_already_stored_items_both_count_as_written() -> None:
    cluster = FakeCluster(lambda event_id, _attempt: 409 if event_id == "dup" else 201)
    sleeps = Sleeps()

    outcome = await write(cluster, [item("new"), item("dup")], sleeps)

    assert outcome.indices == {"mintlog-acme-2024.03.09"}
    assert outcome.rejections == []
    assert cluster.requests == [["new", "dup"]]
    assert sleeps.delays == []


@pytest.mark.parametrize("status", [429, 500, 503, 408])
async def test_items_refused_for_now_are_resent_alone_after_a_growing_backoff(status: int) -> None:
    cluster = FakeCluster(lambda event_id, attempt: status if event_id == "busy" and attempt < 4 else 201)
    sleeps = Sleeps()

    outcome = await write(cluster, [item("ok"), item("busy")], sleeps)

    assert outcome.rejections == []
    assert cluster.requests == [["ok", "busy"], ["busy"], ["busy"], ["busy"]]
    assert len(sleeps.delays) == 3
    assert 0.5 <= sleeps.delays[0] <= 1.0
    assert 1.0 <= sleeps.delays[1] <= 2.0
    assert 1.5 <= sleeps.delays[2] <= 3.0, "the backoff is capped"


async def test_items_still_refused_after_the_last_retry_make_the_write_unavailable() -> None:
    cluster = FakeCluster(lambda event_id, _attempt: 429 if event_id == "busy" else 201)
    sleeps = Sleeps()

    with pytest.raises(StoreUnavailable, match=r"1 event\(s\) after 3 retries: HTTP 429 error_429"):
        await write(cluster, [item("ok"), item("busy")], sleeps)

    assert len(cluster.requests) == 4


@pytest.mark.parametrize("status", [400, 413, 422])
async def test_items_refused_for_good_are_named_with_the_reason_and_the_rest_is_written(status: int) -> None:
    cluster = FakeCluster(lambda event_id, _attempt: status if event_id.startswith("bad") else 201)
    sleeps = Sleeps()

    outcome = await write(cluster, [item("bad-1"), item("ok"), item("bad-2")], sleeps)

    assert [(rejection.event_id, rejection.reason) for rejection in outcome.rejections] == [
        ("bad-1", f"HTTP {status} error_{status}: status {status} for bad-1"),
        ("bad-2", f"HTTP {status} error_{status}: status {status} for bad-2"),
    ]
    assert outcome.indices == {"mintlog-acme-2024.03.09"}
    error = EventsRejectedError(outcome.rejections)
    assert isinstance(error, ValueError)
    assert "'bad-1' of tenant 'acme'" in str(error)


@pytest.mark.parametrize("status", [401, 403, 404])
async def test_a_cluster_side_refusal_makes_the_write_unavailable_without_waiting(status: int) -> None:
    cluster = FakeCluster(lambda _event_id, _attempt: status)
    sleeps = Sleeps()

    with pytest.raises(StoreUnavailable, match=f"HTTP {status}"):
        await write(cluster, [item("a")], sleeps)

    assert sleeps.delays == []


@pytest.mark.parametrize("status", [429, 403])  # OpenSearch 2.x's flood-stage block, and older versions'
async def test_items_a_block_refuses_make_the_write_a_disk_failure_without_waiting(status: int) -> None:
    cluster = FakeCluster(
        lambda event_id, _attempt: status if event_id == "blocked" else 201,
        error_types={"blocked": "cluster_block_exception"},
    )
    sleeps = Sleeps()

    with pytest.raises(
        StoreDiskFailure, match=f"1 event\\(s\\), the cluster refuses writes: HTTP {status} cluster_block"
    ):
        await write(cluster, [item("ok"), item("blocked")], sleeps)

    assert cluster.requests == [["ok", "blocked"]], "not retried here: the caller retries until the block is lifted"
    assert sleeps.delays == []


async def test_a_request_a_block_refuses_as_a_whole_is_a_disk_failure() -> None:
    reason = "index [mintlog-acme-2024.03.09] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage]"
    blocked = TransportError(
        429,
        "cluster_block_exception",
        {"error": {"root_cause": [{"type": "cluster_block_exception", "reason": reason}]}, "status": 429},
    )
    cluster = FakeCluster(lambda _event_id, _attempt: 201, failures=[blocked])
    sleeps = Sleeps()

    with pytest.raises(StoreDiskFailure, match="flood-stage"):
        await write(cluster, [item("a")], sleeps)

    assert sleeps.delays == []


async def test_a_request_without_answer_is_resent_whole() -> None:
    no_answer = OpenSearchConnectionError("N/A", "connection refused", OSError("refused"))
    overloaded = TransportError(503, "unavailable", {})
    cluster = FakeCluster(lambda _event_id, _attempt: 201, failures=[no_answer, overloaded])
    sleeps = Sleeps()

    outcome = await write(cluster, [item("a"), item("b")], sleeps)

    assert outcome.rejections == []
    assert cluster.requests == [["a", "b"]] * 3
    assert len(sleeps.delays) == 2


async def test_a_request_the_cluster_refuses_as_a_whole_makes_the_write_unavailable() -> None:
    refused = TransportError(400, "illegal_argument_exception", {"error": {"type": "x", "reason": "bad body"}})
    cluster = FakeCluster(lambda _event_id, _attempt: 201, failures=[refused])

    with pytest.raises(StoreUnavailable, match="HTTP 400: x: bad body"):
        await write(cluster, [item("a")], Sleeps())


async def test_big_writes_are_split_into_requests_below_the_size_limit() -> None:
    cluster = FakeCluster(lambda _event_id, _attempt: 201)
    items = [item(f"e{index}", size=400) for index in range(10)]
    per_item = len(items[0].lines)

    await write(cluster, items, Sleeps(), BulkPolicy(max_bytes=per_item * 3))

    assert [len(request) for request in cluster.requests] == [3, 3, 3, 1]
    assert [event_id for request in cluster.requests for event_id in request] == [f"e{index}" for index in range(10)]


async def test_the_cluster_lets_items_wait_half_the_request_timeout_for_a_shard() -> None:
    cluster = FakeCluster(lambda _event_id, _attempt: 201)

    await write(cluster, [item("a")], Sleeps())

    assert cluster.params[0]["timeout"] == "5000ms"
    assert cluster.params[0]["request_timeout"] == 10.0
