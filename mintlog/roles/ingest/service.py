"""The ingest seam: `IngestService.accept` is the one entry every ingest protocol calls with its decoded events.

A protocol is a decoder (`mintlog.roles.ingest.decoders`) plus the route or listener that reads its requests:
an HTTP route reads the body (`mintlog.roles.ingest.body`) and calls `IngestService.ingest`, which decodes it
with the protocol's decoder and calls `accept`; a listener without request bodies (syslog) calls `accept`
directly. Whatever the protocol, `accept` applies the same rules, so the guarantees below hold for all:

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
- bad events are reported by index and reason and counted; nothing is dropped silently; every event gets
  the protocol's `source`;
- while the pipeline's backlog is past its limit (`mintlog.roles.ingest.backlog`) every batch is refused before
  anything is accepted (503 `backlog_exceeded` with `Retry-After`, nothing published);
- a tenant's batches are held to its ingest quota (`MINTLOG_RATELIMIT__TENANT_INGEST_EVENTS_PER_SECOND`,
  bursts of `MINTLOG_RATELIMIT__BURST_SECONDS` of it): each valid batch costs its number of events, and a
  batch over the quota is refused whole (429 `ingest_quota_exceeded`, nothing published). Replays of a
  completed `Idempotency-Key` cost nothing.

Idempotency records are about the request body: `IdempotentRequest` is the key and the SHA-256 of the whole
decompressed body as it came in (whatever the protocol's wire format), and the record keeps the answer as
`IngestResult` JSON, which each protocol shapes into its own response. Keys are per tenant, shared by every
protocol. A protocol whose clients cannot send a key passes `idempotency=None`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import msgspec

from mintlog.domain.events import RawBatch
from mintlog.domain.retention import TimeWindow
from mintlog.domain.streams import encode_bus_message, raw_subject
from mintlog.domain.tenants import IngestTimePolicy
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
from mintlog.roles.ingest.backlog import BacklogGate
from mintlog.roles.ingest.decoders import IngestDecoder
from mintlog.roles.ingest.decoders.native import NATIVE
from mintlog.roles.kit.publish import publish_in_parts
from mintlog.settings import IngestSettings, RateLimitSettings

__all__ = [
    "Accepted",
    "IdempotentRequest",
    "IngestError",
    "IngestResult",
    "IngestService",
    "new_batch_id",
]

logger = logging.getLogger(__name__)

_MAX_IDEMPOTENCY_KEY = 200
_NO_HEADERS: Mapping[str, str] = {}
_SWEEP_PAGE = 10_000
# Expired records are ignored already; sweeping them out only frees their rows, so it is not urgent.
_SWEEP_INTERVAL_SECONDS = 300.0


class IngestError(msgspec.Struct, frozen=True):
    """Why one event of a batch was rejected."""

    index: int
    reason: str


class IngestResult(msgspec.Struct, frozen=True):
    """What was accepted: the native 202 answer, and what every protocol's answer is made from."""

    accepted: int
    rejected: int
    errors: list[IngestError]
    batch_id: str


class Accepted(NamedTuple):
    """The outcome of one accepted batch."""

    answer: bytes
    """The `IngestResult` as JSON: the native body's 202 answer, the same bytes on a replay."""
    replayed: bool
    """Whether this is a completed `Idempotency-Key`'s first answer again (nothing was published now)."""


@dataclass(frozen=True, slots=True)
class IdempotentRequest:
    """A request's `Idempotency-Key` and its body, as the idempotency record knows them (SHA-256 hex of each)."""

    key_sha256: str
    body_sha256: str

    @classmethod
    def of(cls, key: str | None, body: bytes) -> IdempotentRequest | None:
        """The request's idempotency, None without a key; 400 `bad_idempotency_key` unless it has 1 to 200
        characters. `body` is the whole decompressed request body, in the protocol's own format."""
        if key is None:
            return None
        if not 0 < len(key) <= _MAX_IDEMPOTENCY_KEY:
            raise BadRequest(
                f"Idempotency-Key must be 1 to {_MAX_IDEMPOTENCY_KEY} characters", code="bad_idempotency_key"
            )
        return cls(hashlib.sha256(key.encode()).hexdigest(), hashlib.sha256(body).hexdigest())


_result_encoder = msgspec.json.Encoder()


def new_batch_id() -> str:
    """A batch id that sorts by arrival time: 12 hex digits of milliseconds, then 12 random hex digits."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(6)}"


@dataclass(frozen=True, slots=True)
class _ValidBatch:
    """The accepted events of a batch and why the others were rejected."""

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
    """Turns decoded events into durable raw batches on `LOGS_RAW` (`logs.raw.{tenant}`)."""

    def __init__(
        self,
        *,
        bus: EventBus,
        idempotency: IdempotencyStore,
        limits: IngestSettings,
        limiter: RateLimiter,
        rate_limits: RateLimitSettings,
        metrics: Metrics,
        backlog: BacklogGate | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._bus = bus
        self._backlog = backlog
        self._idempotency = idempotency
        self._limits = limits
        self._limiter = limiter
        self._rate_limits = rate_limits
        self._metrics = metrics
        self._clock = clock
        self._sweep: asyncio.Task[None] | None = None
        self._next_sweep_at = 0.0
        self._closed = False

    def check_backlog(self) -> None:
        """Raise `IngestBacklogged` (503 `backlog_exceeded`, nothing accepted) while the pipeline's backlog is past
        its limit: what a route calls before it reads a body, so a refused request costs little."""
        if self._backlog is not None:
            self._backlog.check()

    async def ingest(
        self,
        tenant_id: str,
        body: bytes,
        *,
        decoder: IngestDecoder = NATIVE,
        headers: Mapping[str, str] = _NO_HEADERS,
        idempotency_key: str | None = None,
        time_policy: IngestTimePolicy | None = None,
    ) -> Accepted:
        """Decode a whole, decompressed request body with `decoder` (the native body by default) and `accept`
        its events with the decoder's `source`: what every HTTP ingest route calls.

        Raises what `decoder` and `accept` raise. The `Idempotency-Key` is checked before the body is decoded,
        and a body that cannot be decoded under a key already used is `422 idempotency_key_reused`, as it is
        for any other body (no record ever holds a body that could not be decoded).
        """
        idempotency = IdempotentRequest.of(idempotency_key, body)
        try:
            events = decoder.decode(body, headers)
        except Exception:
            if idempotency is not None:
                await self._refuse_used_key(tenant_id, idempotency)
            raise
        return await self.accept(
            tenant_id, events, source=decoder.source, idempotency=idempotency, time_policy=time_policy
        )

    async def accept(
        self,
        tenant_id: str,
        events: list[Any],
        *,
        source: str,
        idempotency: IdempotentRequest | None,
        time_policy: IngestTimePolicy | None = None,
    ) -> Accepted:
        """Validate `events` (one request's, in request order) and publish the accepted ones for `tenant_id`,
        each with `source`; returns once they are durable on the bus.

        Refuses the whole batch (nothing published) with 503 `backlog_exceeded` (`check_backlog`), 400
        `empty_events`, 413 `too_many_events`, 422 `all_events_rejected`, 429 `ingest_quota_exceeded`, and with
        `idempotency` 422 `idempotency_key_reused`. Raises `DependencyUnavailable` (503) when the bus does not
        acknowledge the batch, in which case it may or may not have been stored, or when a request with
        `idempotency` cannot reach the metadata database (nothing was published then). With the tenant's
        `time_policy`, events older than its retention by event time are refused one by one (`too_old`,
        `mintlog.domain.retention.TimeWindow`), judged against the batch's receive time.
        """
        self.check_backlog()
        if idempotency is not None:
            return await self._accept_once(tenant_id, events, source, idempotency, time_policy)
        received_at = self._clock()
        batch = self._validate(events, TimeWindow.of(time_policy, received_at))
        await self._take_quota(tenant_id, len(events))
        batch_id = new_batch_id()
        await self._publish(tenant_id, batch, source=source, batch_id=batch_id, received_at=received_at)
        return Accepted(batch.answer(batch_id), False)

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

    async def _refuse_used_key(self, tenant_id: str, idempotency: IdempotentRequest) -> None:
        """422 `idempotency_key_reused` when the tenant holds a record of the key for another body."""
        record = await self._idempotency.get(tenant_id, idempotency.key_sha256, now=self._clock())
        if record is not None:
            _check_same_body(record, idempotency.body_sha256)

    async def _accept_once(
        self,
        tenant_id: str,
        events: list[Any],
        source: str,
        idempotency: IdempotentRequest,
        time_policy: IngestTimePolicy | None,
    ) -> Accepted:
        key_sha256, body_sha256 = idempotency.key_sha256, idempotency.body_sha256
        now = self._clock()
        record = await self._idempotency.get(tenant_id, key_sha256, now=now)
        if record is not None:
            _check_same_body(record, body_sha256)
            if record.completed:
                self._metrics.ingest_batches_duplicate.inc()
                return Accepted(record.answer, True)
        # A retry of a pending record is judged against its first receive time, so it accepts the same events
        # and they get the same ids.
        batch = self._validate(events, TimeWindow.of(time_policy, now if record is None else record.received_at))
        await self._take_quota(tenant_id, len(events))
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
                    return Accepted(record.answer, True)
        # A pending record's batch may already be stored (its PubAck was lost): publishing the same messages
        # again stores nothing twice, see the module docstring.
        await self._publish(tenant_id, batch, source=source, batch_id=record.batch_id, received_at=record.received_at)
        try:
            await self._idempotency.complete(tenant_id, key_sha256, record.batch_id)
        except DependencyUnavailable as exc:
            # The batch is durable: answer 202. A retry finds the record pending and publishes it again, which
            # stores nothing twice.
            logger.warning("could not mark Idempotency-Key of batch %s completed: %s", record.batch_id, exc)
        return Accepted(record.answer, False)

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

    def _validate(self, events: list[Any], window: TimeWindow | None) -> _ValidBatch:
        """The accepted `events` (inside `window` when given); raises the 4xx errors of a batch that cannot be
        stored at all."""
        if not events:
            raise BadRequest("`events` is empty; send at least one event", code="empty_events")
        if len(events) > self._limits.max_events_per_batch:
            raise PayloadTooLarge(
                f"batch has {len(events)} events; the limit is {self._limits.max_events_per_batch}",
                code="too_many_events",
            )
        accepted, _indexes, rejections = validate_events(events, self._limits, window)
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

    async def _publish(
        self, tenant_id: str, batch: _ValidBatch, *, source: str, batch_id: str, received_at: datetime
    ) -> None:
        """Publish the batch's events in as few messages as the payload limit allows; the `i`-th message gets
        the `Nats-Msg-Id` `{batch_id}:{i}`, so a republished batch is deduplicated part by part."""
        events = batch.events

        def encode(first_index: int, chunk: list[dict[str, Any]]) -> bytes:
            return encode_bus_message(
                RawBatch(
                    batch_id=batch_id,
                    tenant_id=tenant_id,
                    received_at=received_at,
                    source=source,
                    events=chunk,
                    first_index=first_index,
                )
            )

        await publish_in_parts(self._bus, raw_subject(tenant_id), events, encode=encode, msg_id_prefix=f"{batch_id}:")
        self._metrics.ingest_events_accepted.inc(len(events))
