"""Bulk `create` of events with per-item outcomes, retries with exponential backoff, and refusals.

Every event is sent as `{"create": {"_index": <daily index>, "_id": <event id>}}` plus its document, so a
write is idempotent: an id already in its index answers 409, which counts as stored. Outcomes per item:

- 200/201 and 409: stored;
- 408, 429 and 5xx, and every item of a request that got no answer (connection error, timeout) or a
  408/429/5xx answer: retried after a backoff (`BulkPolicy`), up to `max_retries` times;
- a `cluster_block_exception`, whatever its status (429 or 403: the flood-stage `read_only_allow_delete`
  block of a full disk, or a write block; `opensearch_blocks`): no retry now, the write fails with
  `StoreDiskFailure`, an outage the caller retries without limit until the block is lifted; so does a whole
  request refused by a block;
- 401, 403 and 404 (missing rights, an index that cannot be created): the cluster is misconfigured, not
  the event; no retry now, the write fails with `StoreUnavailable` so the caller retries later;
- any other 4xx (e.g. a `mapper_parsing_exception`, a timestamp outside `date_nanos`): refused for good.

`write_bulk` returns which indices got documents and which events were refused; it raises
`StoreUnavailable` when an event could not be stored after the retries or for a cluster-side cause, and
`StoreDiskFailure` (a `StoreUnavailable`) for a block. Events stored before a failure stay stored (the
caller retries the whole batch, which is idempotent).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import msgspec
from opensearchpy.exceptions import OpenSearchException

from mintlog.adapters.logstore.opensearch_blocks import blocked_items
from mintlog.adapters.logstore.opensearch_client import (
    CLUSTER_BLOCK,
    is_retryable,
    is_write_block,
    status_of,
    store_error,
)
from mintlog.domain.events import LogEvent
from mintlog.errors import StoreUnavailable

__all__ = [
    "BulkClient",
    "BulkItem",
    "BulkOutcome",
    "BulkPolicy",
    "EventsRejectedError",
    "Rejection",
    "write_bulk",
]

logger = logging.getLogger(__name__)

_FILTER_PATH = "errors,items.*.status,items.*.error.type,items.*.error.reason"
_CLUSTER_SIDE = frozenset({401, 403, 404})
_SHOWN_REJECTIONS = 5


class BulkClient(Protocol):
    """What `write_bulk` needs of `opensearchpy.AsyncOpenSearch`."""

    async def bulk(self, *, body: Any, index: Any = None, params: Any = None, headers: Any = None) -> Any: ...


class Rejection(NamedTuple):
    """An event OpenSearch refused for good, and why (`type: reason` of the item's error)."""

    event_id: str
    tenant_id: str
    reason: str


class EventsRejectedError(ValueError):
    """Some events can never be stored (retrying will not help: dead-letter them); the others were stored."""

    def __init__(self, rejections: Sequence[Rejection]) -> None:
        self.rejections = list(rejections)
        shown = "; ".join(
            f"event {item.event_id!r} of tenant {item.tenant_id!r}: {item.reason}"
            for item in self.rejections[:_SHOWN_REJECTIONS]
        )
        more = len(self.rejections) - _SHOWN_REJECTIONS
        suffix = f"; and {more} more" if more > 0 else ""
        super().__init__(f"opensearch refused {len(self.rejections)} event(s): {shown}{suffix}")


@dataclass(frozen=True, slots=True)
class BulkPolicy:
    """Size of one request, and how often and how long to back off before retrying refused items."""

    max_bytes: int = 16 * 1024 * 1024
    max_retries: int = 6
    initial_backoff_seconds: float = 0.2
    max_backoff_seconds: float = 5.0

    def backoff_seconds(self, retry: int) -> float:
        """The pause before retry number `retry` (1-based): doubling from the initial one, capped, jittered."""
        ceiling = min(self.max_backoff_seconds, self.initial_backoff_seconds * 2 ** min(retry - 1, 30))
        return ceiling * random.uniform(0.5, 1.0)


@dataclass(slots=True)
class BulkItem:
    """One event to create: its index and its two NDJSON lines (action and document)."""

    event: LogEvent
    index: str
    lines: bytes
    last_failure: str = ""


@dataclass(slots=True)
class BulkOutcome:
    """What a bulk write did: the indices that hold the stored events, and the events refused for good."""

    indices: set[str] = field(default_factory=lambda: set[str]())
    rejections: list[Rejection] = field(default_factory=lambda: list[Rejection]())


async def write_bulk(
    client: BulkClient,
    items: Sequence[BulkItem],
    policy: BulkPolicy,
    *,
    request_timeout_seconds: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> BulkOutcome:
    """Create every item, retrying the retryable ones (see the module docstring).

    One request may take `request_timeout_seconds`; the cluster lets an item wait half of it for an
    unavailable primary shard before answering 503.
    """
    params: dict[str, Any] = {
        # `request_timeout` is the client's own; with it set, `timeout` reaches the cluster.
        "request_timeout": request_timeout_seconds,
        "timeout": f"{max(round(request_timeout_seconds * 500), 1)}ms",
        "filter_path": _FILTER_PATH,
    }
    outcome = BulkOutcome()
    pending = list(items)
    retry = 0
    while pending:
        retryable: list[BulkItem] = []
        cluster_side: list[BulkItem] = []
        blocked: list[BulkItem] = []
        for chunk in _chunks(pending, policy.max_bytes):
            await _send(client, chunk, params, outcome, _Failed(retryable, cluster_side, blocked))
        if blocked:
            raise blocked_items(len(blocked), blocked[0].last_failure)
        if cluster_side:
            raise StoreUnavailable(
                f"opensearch store could not write {len(cluster_side)} event(s): {cluster_side[0].last_failure}"
            )
        if not retryable:
            break
        retry += 1
        if retry > policy.max_retries:
            raise StoreUnavailable(
                f"opensearch store could not write {len(retryable)} event(s) after {policy.max_retries} "
                f"retries: {retryable[0].last_failure}"
            )
        delay = policy.backoff_seconds(retry)
        logger.info(
            "retrying %d of %d event(s) in %.2f s (retry %d): %s",
            len(retryable),
            len(items),
            delay,
            retry,
            retryable[0].last_failure,
        )
        await sleep(delay)
        pending = retryable
    return outcome


def _chunks(items: list[BulkItem], max_bytes: int) -> list[list[BulkItem]]:
    chunks: list[list[BulkItem]] = []
    current: list[BulkItem] = []
    size = 0
    for item in items:
        if current and size + len(item.lines) > max_bytes:
            chunks.append(current)
            current, size = [], 0
        current.append(item)
        size += len(item.lines)
    if current:
        chunks.append(current)
    return chunks


class _Failed(NamedTuple):
    """The items of one pass that were not stored, by what happens next."""

    retryable: list[BulkItem]
    cluster_side: list[BulkItem]
    blocked: list[BulkItem]


async def _send(
    client: BulkClient, chunk: list[BulkItem], params: dict[str, Any], outcome: BulkOutcome, failed: _Failed
) -> None:
    """One bulk request; sorts its items into stored, refused, retryable, failed cluster-side and blocked."""
    body = b"".join(item.lines for item in chunk)
    try:
        response = await client.bulk(body=body, params=dict(params))
    except OpenSearchException as exc:
        if is_write_block(exc) or not is_retryable(exc):
            raise store_error(exc, "write") from exc
        failure = f"request failed: {_request_failure(exc)}"
        for item in chunk:
            item.last_failure = failure
        failed.retryable.extend(chunk)
        return
    results = _item_results(response, len(chunk))
    for item, (status, error_type, reason) in zip(chunk, results, strict=True):
        if status in (200, 201, 409):
            outcome.indices.add(item.index)
            continue
        item.last_failure = f"HTTP {status} {reason}"
        if error_type == CLUSTER_BLOCK:
            failed.blocked.append(item)
        elif status in (408, 429) or status >= 500:
            failed.retryable.append(item)
        elif status in _CLUSTER_SIDE:
            failed.cluster_side.append(item)
        else:
            outcome.rejections.append(Rejection(item.event.id, item.event.tenant_id, item.last_failure))


def _request_failure(exc: OpenSearchException) -> str:
    status = status_of(exc)
    if status is None:
        return f"no answer ({type(exc).__name__})"
    return f"HTTP {status}"


class _ItemError(msgspec.Struct):
    type: str = ""
    reason: str | None = None


class _ItemResult(msgspec.Struct):
    status: int
    error: _ItemError | None = None


class _BulkResponse(msgspec.Struct):
    items: list[dict[str, _ItemResult]]


def _item_results(response: object, expected: int) -> list[tuple[int, str, str]]:
    """`(status, error type, "type: reason")` of every item of a bulk response, in request order."""
    try:
        items = msgspec.convert(response, _BulkResponse).items
    except msgspec.ValidationError as exc:
        raise StoreUnavailable(f"opensearch store got an unexpected bulk response: {exc}") from exc
    if len(items) != expected or any(len(item) != 1 for item in items):
        raise StoreUnavailable(f"opensearch store got a bulk response without its {expected} item(s)")
    results: list[tuple[int, str, str]] = []
    for item in items:
        result = next(iter(item.values()))
        error = result.error
        if error is None:
            results.append((result.status, "", ""))
        else:
            results.append((result.status, error.type, f"{error.type}: {error.reason or ''}"))
    return results
