"""Posts batches to `POST {url}/v1/ingest/logs` with their `Idempotency-Key`, retrying what may succeed later.

- `202`: `accepted`, and each `errors[]` entry as a rejection of its line (with `Idempotent-Replayed: true`,
  the events were stored by an earlier run and are counted in `replayed` too).
- `422 all_events_rejected`: every event rejected, with the reasons of `errors[]`.
- `413`, or a `429` whose batch alone exceeds the tenant's burst: split in two halves, each sent on its own
  (a single event is rejected with the server's detail).
- `429`, and `503 backlog_exceeded` (ingest pauses while the pipeline catches up): wait `Retry-After` (else the
  backoff) and resend; not counted against `retries`, since the server will take the batch once it caught up.
- `503`, another `5xx`, `408`, a connection error or a timeout: wait `Retry-After` (else the backoff: 0.5 s
  doubling up to 30 s, with jitter) and resend the same body with the same key, at most `retries` times;
  then the batch fails.
- `401`, `403`, `404`: `ImportAborted`: nothing more can succeed (bad key, missing scope, wrong URL).
- Any other `4xx`: the batch fails with the server's detail.

Resending the same body with the same key is what makes a retry safe: the server stores the batch once.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import msgspec

from mintlog.importer.batching import Batch

__all__ = ["Delivery", "ImportAborted", "IngestSender", "RetryPolicy"]

_FATAL = frozenset((401, 403, 404))
_RETRIED = frozenset((408, 500, 502, 503, 504))
_BURST_WORDS = "exceeds this tenant's ingest burst"
_BACKLOG_CODE = "backlog_exceeded"
_MAX_WAIT_SECONDS = 60.0


class ImportAborted(Exception):
    """The server refuses every request (bad key, missing scope, wrong URL): the import stops."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry a batch the server may still take."""

    retries: int = 10
    first_backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0

    def backoff(self, attempt: int) -> float:
        """The wait before retry `attempt` (1-based): exponential with full jitter in its upper half."""
        ceiling = min(self.max_backoff_seconds, self.first_backoff_seconds * 2 ** (attempt - 1))
        return ceiling / 2 + random.random() * ceiling / 2


@dataclass(slots=True)
class Delivery:
    """What became of one batch (and of its halves, when it was split)."""

    accepted: int = 0
    replayed: int = 0
    """Of `accepted`, events of batches an earlier run had stored (answered with `Idempotent-Replayed`)."""
    rejections: list[tuple[int, str]] = field(default_factory=lambda: [])
    """`(line number, reason)` of each event the server refused."""
    failed: int = 0
    failure: str | None = None
    retries: int = 0
    splits: int = 0

    def add(self, other: Delivery) -> None:
        self.accepted += other.accepted
        self.replayed += other.replayed
        self.rejections.extend(other.rejections)
        self.failed += other.failed
        self.failure = self.failure or other.failure
        self.retries += other.retries
        self.splits += other.splits


class _Answer(msgspec.Struct):
    accepted: int = 0
    errors: list[dict[str, Any]] = msgspec.field(default_factory=lambda: [])
    code: str | None = None
    detail: str | None = None


_answer_decoder = msgspec.json.Decoder(_Answer)


class IngestSender:
    """Sends batches with one aiohttp session (open it with `async with`)."""

    def __init__(
        self,
        url: str,
        key: str,
        *,
        policy: RetryPolicy,
        connections: int,
        timeout_seconds: float = 120.0,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        self._endpoint = url.rstrip("/") + "/v1/ingest/logs"
        self._key = key
        self._policy = policy
        self._connections = connections
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._on_retry = on_retry
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> IngestSender:
        connector = aiohttp.TCPConnector(limit=self._connections)
        self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def deliver(self, batch: Batch) -> Delivery:
        """Send `batch` until it is answered for good (see the module docstring); raises `ImportAborted`."""
        delivery = Delivery()
        attempt = 0
        while True:
            try:
                status, headers, body = await self._post(batch)
            except (aiohttp.ClientError, TimeoutError) as exc:
                _stop_if_cancelled()
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if attempt >= self._policy.retries:
                    return self._failed(delivery, batch, f"no answer after {attempt + 1} attempts ({reason})")
                attempt += 1
                delivery.retries += 1
                await self._wait(None, attempt, reason)
                continue
            answer = _decode(body)
            if status == 202:
                delivery.accepted += answer.accepted
                if headers.get("Idempotent-Replayed") == "true":
                    delivery.replayed += answer.accepted
                delivery.rejections.extend(_rejections(batch, answer))
                return delivery
            if status == 422 and answer.code == "all_events_rejected":
                rejections = _rejections(batch, answer)
                delivery.rejections.extend(rejections or [(line, answer.detail or "rejected") for line in batch.lines])
                return delivery
            if status == 413 or (status == 429 and _BURST_WORDS in (answer.detail or "")):
                return await self._split(delivery, batch, status, answer)
            if status in _FATAL:
                raise ImportAborted(_describe(status, answer))
            if status == 429 or (status == 503 and answer.code == _BACKLOG_CODE):
                delivery.retries += 1
                await self._wait(headers.get("Retry-After"), 1, f"{status} {answer.code}")
                continue
            if status in _RETRIED or status >= 500:
                if attempt >= self._policy.retries:
                    return self._failed(delivery, batch, f"{_describe(status, answer)} after {attempt + 1} attempts")
                attempt += 1
                delivery.retries += 1
                await self._wait(headers.get("Retry-After"), attempt, f"{status} {answer.code}")
                continue
            return self._failed(delivery, batch, _describe(status, answer))

    async def _post(self, batch: Batch) -> tuple[int, dict[str, str], bytes]:
        assert self._session is not None, "use IngestSender in `async with`"
        headers = {
            "X-API-Key": self._key,
            "Content-Type": "application/json",
            "Idempotency-Key": batch.key,
        }
        async with self._session.post(self._endpoint, data=batch.body, headers=headers) as response:
            body = await response.read()
            # Only the headers the importer reads, by name in any case (aiohttp's headers are case-insensitive).
            wanted = {"Retry-After": response.headers.get("Retry-After", "")}
            wanted["Idempotent-Replayed"] = response.headers.get("Idempotent-Replayed", "")
            return response.status, wanted, body

    async def _split(self, delivery: Delivery, batch: Batch, status: int, answer: _Answer) -> Delivery:
        if batch.events < 2:
            delivery.rejections.append((batch.lines[0], _describe(status, answer)))
            return delivery
        delivery.splits += 1
        for half in batch.halves():
            delivery.add(await self.deliver(half))
        return delivery

    async def _wait(self, retry_after: str | None, attempt: int, reason: str) -> None:
        seconds = _retry_after(retry_after)
        if seconds is None:
            seconds = self._policy.backoff(attempt)
        if self._on_retry is not None:
            self._on_retry(f"{reason}; retrying in {seconds:.1f} s")
        await asyncio.sleep(seconds)

    @staticmethod
    def _failed(delivery: Delivery, batch: Batch, reason: str) -> Delivery:
        delivery.failed += batch.events
        delivery.failure = delivery.failure or f"{batch.path}:{batch.lines[0]}-{batch.lines[-1]}: {reason}"
        return delivery


def _stop_if_cancelled() -> None:
    """Raise `CancelledError` when this task has a cancellation pending.

    aiohttp can turn a cancellation that lands while it connects into a connection error or a timeout
    (aio-libs/aiohttp#5979); retrying then would ignore Ctrl-C and keep `mintlog import` running for as long as
    its retries last. A pending request (`Task.cancelling()`) survives that conversion, so it is checked here.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _decode(body: bytes) -> _Answer:
    try:
        return _answer_decoder.decode(body)
    except msgspec.DecodeError:
        return _Answer(detail=body[:200].decode("utf-8", "replace"))


def _describe(status: int, answer: _Answer) -> str:
    """`413 too_many_events: <detail>`, leaving out what the answer did not say."""
    head = f"{status} {answer.code}" if answer.code else str(status)
    return f"{head}: {answer.detail}" if answer.detail else head


def _rejections(batch: Batch, answer: _Answer) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for error in answer.errors:
        index = error.get("index")
        line = batch.lines[index] if isinstance(index, int) and 0 <= index < len(batch.lines) else 0
        found.append((line, str(error.get("reason", "rejected"))))
    return found


def _retry_after(value: str | None) -> float | None:
    """`Retry-After` in seconds (the API sends whole seconds), bounded to 0.1-60 s; None when absent or not a
    number."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return min(_MAX_WAIT_SECONDS, max(0.1, seconds))
