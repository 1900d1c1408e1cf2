"""The ingest use case: validate a batch, publish it as one bus message, answer with what was accepted.

Guarantees:
- `202` is returned only after JetStream acknowledged every message of the batch (durable);
- one bus message per batch (split only when a batch exceeds the bus's payload limit);
- the same `Idempotency-Key` with the same body returns the first answer and stores nothing twice; with
  a different body it is refused (422);
- bad events are reported by index and reason and counted; nothing is dropped silently;
- a tenant's batches are held to its ingest quota (`MINTLOG_RATELIMIT__TENANT_INGEST_EVENTS_PER_SECOND`,
  bursts of `MINTLOG_RATELIMIT__BURST_SECONDS` of it): each valid batch costs its number of events, and a
  batch over the quota is refused whole (429 `ingest_quota_exceeded`, nothing published). Replays of an
  `Idempotency-Key` cost nothing.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import msgspec

from mintlog.domain.events import RawBatch, encode_bus_message
from mintlog.domain.validation import reason_code, validate_events
from mintlog.errors import BadRequest, PayloadTooLarge, TooManyRequests, UnprocessableEntity
from mintlog.metrics import Metrics
from mintlog.ports.bus import EventBus
from mintlog.ports.cache import Cache
from mintlog.ports.ratelimit import RateLimiter
from mintlog.settings import IngestSettings, RateLimitSettings

__all__ = ["IngestBody", "IngestError", "IngestResult", "IngestService", "new_batch_id"]

logger = logging.getLogger(__name__)

_PAYLOAD_HEADROOM = 4096
_MAX_IDEMPOTENCY_KEY = 200


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


class IngestService:
    """Turns request bodies into durable raw batches on `logs.raw.{tenant}`."""

    def __init__(
        self,
        *,
        bus: EventBus,
        cache: Cache,
        limits: IngestSettings,
        limiter: RateLimiter,
        rate_limits: RateLimitSettings,
        metrics: Metrics,
        source: str = "http",
    ) -> None:
        self._bus = bus
        self._cache = cache
        self._limits = limits
        self._limiter = limiter
        self._rate_limits = rate_limits
        self._metrics = metrics
        self._source = source

    async def ingest(self, tenant_id: str, body: bytes, *, idempotency_key: str | None = None) -> tuple[bytes, bool]:
        """Validate and publish a batch; returns the encoded 202 answer and whether it was replayed."""
        replay_key = body_hash = None
        if idempotency_key is not None:
            if not 0 < len(idempotency_key) <= _MAX_IDEMPOTENCY_KEY:
                raise BadRequest(
                    f"Idempotency-Key must be 1 to {_MAX_IDEMPOTENCY_KEY} characters",
                    code="bad_idempotency_key",
                )
            replay_key = f"idem:{tenant_id}:{hashlib.sha256(idempotency_key.encode()).hexdigest()}"
            body_hash = hashlib.sha256(body).digest()
            stored = await self._cache.get(replay_key)
            if stored is not None:
                if stored[:32] != body_hash:
                    raise UnprocessableEntity(
                        "this Idempotency-Key was already used with a different body",
                        code="idempotency_key_reused",
                    )
                self._metrics.ingest_batches_duplicate.inc()
                return stored[32:], True

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
        if self._rate_limits.enabled:
            await self._take_quota(tenant_id, len(batch.events))

        batch_id = new_batch_id()
        msg_id = f"{tenant_id}:idem:{idempotency_key}" if idempotency_key is not None else batch_id
        await self._publish(tenant_id, batch_id, msg_id, accepted)
        self._metrics.ingest_events_accepted.inc(len(accepted))

        answer = _result_encoder.encode(
            IngestResult(accepted=len(accepted), rejected=len(errors), errors=errors, batch_id=batch_id)
        )
        if replay_key is not None and body_hash is not None:
            await self._cache.set(replay_key, body_hash + answer, self._limits.idempotency_ttl_seconds)
        return answer, False

    async def _take_quota(self, tenant_id: str, events: int) -> None:
        """Charge `events` to the tenant's ingest bucket; raise `TooManyRequests` when it cannot pay."""
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

    async def _publish(self, tenant_id: str, batch_id: str, msg_id: str, events: list[dict[str, Any]]) -> None:
        received_at = datetime.now(UTC)
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
            await self._bus.publish(subject, payload, msg_id=f"{msg_id}:{part}")
            part += 1
