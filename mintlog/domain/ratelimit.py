"""Token-bucket arithmetic shared by every rate limiter. Pure code, no I/O.

A bucket holds at most `burst` tokens and gains `rate_per_second` tokens per second; a new or long-idle
bucket is full. A request costs `cost` tokens and, when refused, takes nothing.

A `Lease` is what one process knows of a shared bucket since it last asked it: tokens it took ahead of use
and may spend alone for a short while, or the refusal it got.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Lease", "RateDecision", "can_take", "decide", "lease_size", "refill", "seconds_until_full"]

# Float refill arithmetic must not refuse a request that is exactly on time.
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The outcome of taking from a bucket, with what the `RateLimit-*` and `Retry-After` headers report.

    - `limit`: the bucket size (`burst`), in whole tokens;
    - `remaining`: whole tokens left after this request;
    - `reset_seconds`: time until the bucket is full again;
    - `retry_after_seconds`: 0 when allowed; else the time until `cost` tokens are available (when `cost`
      exceeds `burst` the request can never pass, and this is the time until the bucket is full).
    """

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: float
    retry_after_seconds: float

    @property
    def retry_after_header(self) -> int:
        """`Retry-After` for this decision: whole seconds, rounded up, at least 1."""
        return max(1, math.ceil(self.retry_after_seconds))


def refill(tokens: float, elapsed_seconds: float, *, rate_per_second: float, burst: float) -> float:
    """The tokens of a bucket that held `tokens` `elapsed_seconds` ago (a clock going back adds nothing)."""
    return min(burst, tokens + max(0.0, elapsed_seconds) * rate_per_second)


def can_take(tokens: float, cost: float) -> bool:
    """Whether a bucket holding `tokens` can pay `cost` (tolerating float rounding)."""
    return tokens + _EPSILON >= cost


def seconds_until_full(tokens: float, *, rate_per_second: float, burst: float) -> float:
    """How long a bucket holding `tokens` takes to fill up; past that it equals a new bucket."""
    return max(0.0, burst - tokens) / rate_per_second


def decide(tokens_before: float, *, allowed: bool, rate_per_second: float, burst: float, cost: float) -> RateDecision:
    """The decision for a bucket that held `tokens_before` (refilled) when `cost` was asked."""
    tokens_after = tokens_before - cost if allowed else tokens_before
    if allowed:
        retry_after = 0.0
    elif cost > burst:
        retry_after = seconds_until_full(tokens_before, rate_per_second=rate_per_second, burst=burst)
    else:
        retry_after = max(0.0, cost - tokens_before) / rate_per_second
    return RateDecision(
        allowed=allowed,
        limit=math.floor(burst + _EPSILON),
        remaining=max(0, math.floor(tokens_after + _EPSILON)),
        reset_seconds=seconds_until_full(tokens_after, rate_per_second=rate_per_second, burst=burst),
        retry_after_seconds=retry_after,
    )


def lease_size(burst: float, fraction: float) -> float:
    """Tokens to lease beside a request: `fraction` of the burst in whole tokens, at least 1 (0 if `fraction` is 0)."""
    if fraction <= 0:
        return 0.0
    return float(max(1, math.floor(burst * fraction + _EPSILON)))


@dataclass(slots=True)
class Lease:
    """This process's view of a shared bucket after its last answer, valid until `valid_until`.

    - `leased`: tokens taken from the shared bucket ahead of use, still unspent; only this process spends them;
    - `shared_tokens`: what the shared bucket held right after that answer (other processes take from it too);
    - `refused_cost`: the cost the shared bucket refused in that answer (infinite when it allowed).
    """

    rate_per_second: float
    burst: float
    leased: float
    shared_tokens: float
    answered_at: float
    valid_until: float
    refused_cost: float = math.inf

    def spend(self, now: float, *, rate_per_second: float, burst: float, cost: float) -> RateDecision | None:
        """The decision this lease can take alone, or None when the shared bucket must be asked.

        Allowed when the unspent lease covers `cost`; refused when the shared bucket refused this cost or less
        and has not refilled enough since (by this process's view). `remaining` and the reset time are this
        process's view: its lease plus what the shared bucket held at the last answer, refilled since.
        """
        if now >= self.valid_until or rate_per_second != self.rate_per_second or burst != self.burst:
            return None
        shared = self.shared_tokens + max(0.0, now - self.answered_at) * rate_per_second
        visible = min(burst, self.leased + shared)
        if can_take(self.leased, cost):
            self.leased -= cost
            return decide(visible, allowed=True, rate_per_second=rate_per_second, burst=burst, cost=cost)
        if cost >= self.refused_cost and not can_take(visible, cost):
            return decide(visible, allowed=False, rate_per_second=rate_per_second, burst=burst, cost=cost)
        return None
