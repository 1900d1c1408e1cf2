"""Per-key request rate limits on every authenticated endpoint, and the `RateLimit-*` response headers.

A key's `rate_limit` is in requests per minute (`MINTLOG_RATELIMIT__DEFAULT_KEY_REQUESTS_PER_MINUTE` when
the key has none); its bucket holds `MINTLOG_RATELIMIT__BURST_SECONDS` of that rate (at least one request).
The guard stores the decision in the connection state; `rate_limit_headers` (a `before_send` hook) turns it
into `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds until the bucket is full) on
every response of that request, allowed or not. A refused request is a 429 `rate_limited` with
`Retry-After` (whole seconds, at least 1).
"""

from __future__ import annotations

import math
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from litestar.types import Message, Scope

from mintlog.domain.ratelimit import RateDecision
from mintlog.domain.tenants import Principal
from mintlog.errors import TooManyRequests
from mintlog.metrics import Metrics
from mintlog.ports.ratelimit import RateLimiter
from mintlog.settings import RateLimitSettings

if TYPE_CHECKING:
    from mintlog.runtime import Runtime

__all__ = ["RATE_DECISION_STATE", "KeyRateLimits", "rate_limit_headers"]

RATE_DECISION_STATE = "rate_decision"


@dataclass(frozen=True, slots=True)
class KeyRateLimits:
    """What the guard needs to limit requests per API key."""

    limiter: RateLimiter
    settings: RateLimitSettings
    metrics: Metrics | None = None

    @classmethod
    def of(cls, runtime: Runtime) -> KeyRateLimits:
        """The limits of a process: its limiter, `MINTLOG_RATELIMIT__*` and its metrics."""
        return cls(runtime.rate_limiter, runtime.settings.ratelimit, runtime.metrics)

    async def check(self, principal: Principal, state: MutableMapping[str, Any]) -> None:
        """Count one request of `principal`'s key; store the decision in `state`; raise `TooManyRequests` if refused.

        Does nothing when rate limiting is disabled. Never raises because the limiter is down when given a
        `FallbackRateLimiter`.
        """
        if not self.settings.enabled:
            return
        per_minute = principal.rate_limit or self.settings.default_key_requests_per_minute
        rate_per_second = per_minute / 60.0
        burst = max(1.0, rate_per_second * self.settings.burst_seconds)
        decision = await self.limiter.acquire(f"key:{principal.key_id}", rate_per_second=rate_per_second, burst=burst)
        state[RATE_DECISION_STATE] = decision
        if decision.allowed:
            return
        if self.metrics is not None:
            self.metrics.ratelimit_rejected.labels("key").inc()
        retry_after = decision.retry_after_header
        raise TooManyRequests(
            f"this API key is limited to {per_minute} requests per minute with bursts of {decision.limit}; "
            f"retry in {retry_after} s",
            code="rate_limited",
            extra={"retry_after_seconds": retry_after},
        )


async def rate_limit_headers(message: Message, scope: Scope) -> None:
    """`before_send` hook: add the `RateLimit-*` headers of the request's key to its response."""
    if message["type"] != "http.response.start":
        return
    state: dict[str, Any] = scope.get("state") or {}  # pyright: ignore[reportUnknownMemberType]
    decision = state.get(RATE_DECISION_STATE)
    if not isinstance(decision, RateDecision):
        return
    message["headers"] = [
        *message.get("headers", ()),
        (b"ratelimit-limit", str(decision.limit).encode()),
        (b"ratelimit-remaining", str(decision.remaining).encode()),
        (b"ratelimit-reset", str(math.ceil(decision.reset_seconds)).encode()),
    ]
