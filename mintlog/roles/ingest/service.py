"""The ingest use case: validate a batch, publish it as one bus message, answer with what was accepted.

Guarantees:
- `202` is returned only after JetStream acknowledged every message of the batch (durable);
- one bus message per batch (split only when a batch exceeds the bus's payload limit);
- an `Idempotency-Key` makes a batch stored exactly once for `MINTLOG_INGEST__IDEMPOTENCY_TTL_SECONDS` after
  its first request, across restarts of Mintlog, of the bus and of the cache: a record of the key (body
  digest, batch id, receive time, answer) is written to the metadata database before the batch is
  published and marked completed after the PubAck. A retry of a completed key returns the first answer
  (replayed) and publishes nothing; a retry of a key whose publish failed (`503`, stored or not) publishes
  the very same messages again: the same `Nats-Msg-Id`s (`{batch_id}:{part}`, which the bus drops inside
  its duplicate window) carrying the same batch id and receive time, hence the same event ids and event
  times, which the log stores write at most once (create-only by id) even when the bus forgot the msg id.
  The same key with a different body is refused (422);
- bad events are reported by index and reason and counted; nothing is dropped silently;
- a tenant's batches are held to its ingest quota (`MINTLOG_RATELIMIT__TENANT_INGEST_EVENTS_PER_SECOND`,
  bursts of `MINTLOG_RATELIMIT__BURST_SECONDS` of it): each valid batch costs its number of events, and a
  batch over the quota is refused whole (429 `ingest_quota_exceeded`, nothing published). Replays of a
  completed `Idempotency-Key` cost nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from mintlog.domain.events import RawBatch, encode_bus_message
from mintlog.domain.validation import reason_code, validate_events
from mintlog.errors import (
    BadRequest,
    DependencyUnavailable,
    PayloadTooLarge,
    TooManyRequests,
    UnprocessableEntity,
)
from mintlog.metrics import Metrics
from mintlog.ports.bus import EventBus
from mintlog.ports.idempotency import IdempotencyRecord, IdempotencyStore
from mintlog.ports.ratelimit import RateLimiter
from mintlog.settings import IngestSettings, RateLimitSettings

__all__ = ["IngestBody", "IngestError", "IngestResult", "IngestService", "new_batch_id"]

logger = logging.getLogger(__name__)

_PAYLOAD_HEADROOM = 4096
_MAX_IDEMPOTENCY_KEY = 200
_SWEEP_PAGE = 10_000
# Expired records are ignored already; sweeping them out only frees their rows, so it is not urgent.
_SWEEP_INTERVAL_SECONDS = 300.0


class IngestBody(msgspec.Struct, forbid_unknown_fields=True):
    """`{"events": [...]}`."""

    events: list[Any]


class IngestError(msgspec.Struct, frozen=True):
    """Why one event of a batch was rejected."""

    index: int
    reason: str


class IngestResult(msgspec.Struct, frozen=True):
    """The 202 answer."""

    accepted: int
    rejected: int
    errors: list[IngestError]
    batch_id: str


_body_decoder = msgspec.json.Decoder(IngestBody)
_result_encoder = msgspec.json.Encoder()


def new_batch_id() -> str:
    """A batch id that sorts by arrival time: 12 hex digits of milliseconds, then 12 random hex digits."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(6)}"


def _decode_body(body: bytes) -> IngestBody:
    if not body.strip():
        raise BadRequest('body is empty; send {"events": [...]}', code="empty_body")
    try:
        return _body_decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise BadRequest(f'body has the wrong shape: {exc}; expected {{"events": [...]}}', code="wrong_shape") from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}", code="malformed_json") from None
    except UnicodeDecodeError as exc:
        raise BadRequest(f"body is not valid UTF-8: {exc.reason} at byte {exc.start}", code="malformed_json") from None


@dataclass(frozen=True, slots=True)
class _ValidBatch:
    """The accepted events of a request body and why the others were rejected."""

    events: list[dict[str, Any]]
    errors: list[IngestError]

    def answer(self, batch_id: str) -> bytes:
        """The encoded 202 answer for this batch published as `batch_id`."""
        return _result_encoder.encode(
            IngestResult(accepted=len(self.events), rejected=len(self.errors), errors=self.errors, batch_id=batch_id)
        )


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _check_same_body(record: IdempotencyRecord, body_sha256: str) -> None:
    if record.body_sha256 != body_sha256:
        raise UnprocessableEntity(
            "this Idempotency-Key was already used with a different body",
            code="idempotency_key_reused",
        )


class IngestService:
    """Turns request bodies into durable raw batches on `logs.raw.{tenant}`."""

    def __init__(
        self,
        *,
        bus: EventBus,
        idempotency: IdempotencyStore,
        limits: IngestSettings,
        limiter: RateLimiter,
        rate_limits: RateLimitSettings,
        metrics: Metrics,
        source: str = "http",
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._bus = bus
        self._idempotency = idempotency
        self._limits = limits
        self._limiter = limiter
        self._rate_limits = rate_limits
        self._metrics = metrics
        self._source = source
        self._clock = clock
        self._sweep: asyncio.Task[None] | None = None
        self._next_sweep_at = 0.0
        self._closed = False

    async def ingest(self, tenant_id: str, body: bytes, *, idempotency_key: str | None = None) -> tuple[bytes, bool]:
        """Validate and publish a batch; returns the encoded 202 answer and whether it was replayed.

        Raises `DependencyUnavailable` (503) when the bus does not acknowledge the batch, in which case it
        may or may not have been stored, or when a request with an `Idempotency-Key` cannot reach the
        metadata database (nothing was published then).
        """
        if idempotency_key is not None:
            return await self._ingest_once(tenant_id, body, idempotency_key)
        batch = self._validate(body)
        await self._take_quota(tenant_id, len(batch.events) + len(batch.errors))
        batch_id = new_batch_id()
        await self._publish(tenant_id, batch, batch_id=batch_id, received_at=self._clock())
        return batch.answer(batch_id), False

    async def close(self) -> None:
        """Stop sweeping expired idempotency records (a sweep in progress is abandoned)."""
        self._closed = True
        sweep, self._sweep = self._sweep, None
        if sweep is not None:
            sweep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweep

    async def forget_expired_keys(self) -> int:
        """Delete the idempotency records whose window is over; returns how many were deleted.

        Runs in the background at most every 5 minutes, after a request stored a record (only those add rows).
        """
        deleted = 0
        while True:
            page = await self._idempotency.forget_expired(now=self._clock(), limit=_SWEEP_PAGE)
            deleted += page
            if page < _SWEEP_PAGE:
                return deleted

    async def _ingest_once(self, tenant_id: str, body: bytes, idempotency_key: str) -> tuple[bytes, bool]:
        if not 0 < len(idempotency_key) <= _MAX_IDEMPOTENCY_KEY:
            raise BadRequest(
                f"Idempotency-Key must be 1 to {_MAX_IDEMPOTENCY_KEY} characters",
                code="bad_idempotency_key",
            )
        key_sha256 = hashlib.sha256(idempotency_key.encode()).hexdigest()
        body_sha256 = hashlib.sha256(body).hexdigest()
        now = self._clock()
        record = await self._idempotency.get(tenant_id, key_sha256, now=now)
        if record is not None:
            _check_same_body(record, body_sha256)
            if record.completed:
                self._metrics.ingest_batches_duplicate.inc()
                return record.answer, True
        batch = self._validate(body)
        await self._take_quota(tenant_id, len(batch.events) + len(batch.errors))
        if record is None:
            batch_id = new_batch_id()
            claim = IdempotencyRecord(
                tenant_id=tenant_id,
                key_sha256=key_sha256,
                body_sha256=body_sha256,
                batch_id=batch_id,
                received_at=now,
                answer=batch.answer(batch_id),
                completed=False,
                expires_at=now + timedelta(seconds=self._limits.idempotency_ttl_seconds),
            )
            record = await self._idempotency.claim(claim, now=now)
            self._sweep_soon()
            if record.batch_id != batch_id:  # a concurrent request with this key claimed it first
                _check_same_body(record, body_sha256)
                if record.completed:
                    self._metrics.ingest_batches_duplicate.inc()
                    return record.answer, True
        # A pending record's batch may already be stored (its PubAck was lost): publishing the same messages
        # again stores nothing twice, see the module docstring.
        await self._publish(tenant_id, batch, batch_id=record.batch_id, received_at=record.received_at)
        try:
            await self._idempotency.complete(tenant_id, key_sha256, record.batch_id)
        except DependencyUnavailable as exc:
            # The batch is durable: answer 202. A retry finds the record pending and publishes it again, which
            # stores nothing twice.
            logger.warning("could not mark Idempotency-Key of batch %s completed: %s", record.batch_id, exc)
        return record.answer, False

    def _sweep_soon(self) -> None:
        """Start a background sweep of expired records unless one ran in the last `_SWEEP_INTERVAL_SECONDS`."""
        loop = asyncio.get_running_loop()
        if self._closed or loop.time() < self._next_sweep_at or (self._sweep is not None and not self._sweep.done()):
            return
        self._next_sweep_at = loop.time() + _SWEEP_INTERVAL_SECONDS
        self._sweep = loop.create_task(self._sweep_expired_keys(), name="idempotency-sweep")

    async def _sweep_expired_keys(self) -> None:
        try:
            deleted = await self.forget_expired_keys()
        except DependencyUnavailable as exc:
            logger.warning(
                "could not sweep expired Idempotency-Key records (next try in %ss): %s", _SWEEP_INTERVAL_SECONDS, exc
            )
            return
        except Exception:
            logger.exception("sweeping expired Idempotency-Key records failed")
            return
        if deleted:
            logger.info("swept %d expired Idempotency-Key record(s)", deleted)

    def _validate(self, body: bytes) -> _ValidBatch:
        """The accepted events of `body`; raises the 4xx errors of a body that cannot be stored at all."""
        batch = _decode_body(body)
        if not batch.events:
            raise BadRequest("`events` is empty; send at least one event", code="empty_events")
        if len(batch.events) > self._limits.max_events_per_batch:
            raise PayloadTooLarge(
                f"batch has {len(batch.events)} events; the limit is {self._limits.max_events_per_batch}",
                code="too_many_events",
            )
        accepted, _indexes, rejections = validate_events(batch.events, self._limits)
        errors = [IngestError(index=r.index, reason=r.reason) for r in rejections]
        for rejection in rejections:
            self._metrics.ingest_events_rejected.labels(reason_code(rejection.reason)).inc()
        if not accepted:
            raise UnprocessableEntity(
                "every event of the batch was rejected; nothing was stored",
                code="all_events_rejected",
                extra={"errors": [msgspec.to_builtins(error) for error in errors]},
            )
        return _ValidBatch(accepted, errors)

    async def _take_quota(self, tenant_id: str, events: int) -> None:
        """Charge `events` to the tenant's ingest bucket; raise `TooManyRequests` when it cannot pay."""
        if not self._rate_limits.enabled:
            return
        per_second = float(self._rate_limits.tenant_ingest_events_per_second)
        burst = max(1.0, per_second * self._rate_limits.burst_seconds)
        decision = await self._limiter.acquire(
            f"ingest:{tenant_id}", rate_per_second=per_second, burst=burst, cost=events
        )
        if decision.allowed:
            return
        self._metrics.ratelimit_rejected.labels("tenant_ingest").inc()
        retry_after = decision.retry_after_header
        if events > decision.limit:
            detail = (
                f"a batch of {events} events exceeds this tenant's ingest burst of {decision.limit} events; "
                "send smaller batches"
            )
        else:
            detail = (
                f"this tenant's ingest quota of {per_second:g} events per second is used up; retry in {retry_after} s"
            )
        raise TooManyRequests(detail, code="ingest_quota_exceeded", extra={"retry_after_seconds": retry_after})

    async def _publish(self, tenant_id: str, batch: _ValidBatch, *, batch_id: str, received_at: datetime) -> None:
        """Publish the batch's events, split into as many messages as the payload limit needs; the `i`-th
        message gets the `Nats-Msg-Id` `{batch_id}:{i}`, so a republished batch is deduplicated part by part."""
        events = batch.events
        subject = f"logs.raw.{tenant_id}"
        limit = self._bus.max_payload_bytes - _PAYLOAD_HEADROOM
        pending: list[tuple[int, list[dict[str, Any]]]] = [(0, events)]
        part = 0
        while pending:
            first_index, chunk = pending.pop(0)
            payload = encode_bus_message(
                RawBatch(
                    batch_id=batch_id,
                    tenant_id=tenant_id,
                    received_at=received_at,
                    source=self._source,
                    events=chunk,
                    first_index=first_index,
                )
            )
            if len(payload) > limit and len(chunk) > 1:
                middle = len(chunk) // 2
                pending[:0] = [(first_index, chunk[:middle]), (first_index + middle, chunk[middle:])]
                continue
            await self._bus.publish(subject, payload, msg_id=f"{batch_id}:{part}")
            part += 1
        self._metrics.ingest_events_accepted.inc(len(events))
