"""`TailHub`: the live tails of one API process — the per-tenant cap, the open-tails gauge, and shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable

from mintlog.errors import DependencyUnavailable, TooManyRequests
from mintlog.metrics import Metrics

__all__ = ["TailHub", "TailLease"]

logger = logging.getLogger(__name__)

_RETRY_AFTER_SECONDS = 5


class TailLease:
    """One tail's slot in its tenant's cap. `release` frees it (idempotent); `on_stop` is called at shutdown."""

    def __init__(self, hub: TailHub, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self._hub = hub
        self._released = False
        self.on_stop: Callable[[], None] | None = None

    @property
    def released(self) -> bool:
        return self._released

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        self._hub._release(self)  # pyright: ignore[reportPrivateUsage]


class TailHub:
    """Counts open tails per tenant and ends them all at shutdown.

    Guarantees: at most `max_per_tenant` leases of one tenant are held at once in this process (the cap is
    per API instance, not cluster-wide); `acquire` beyond it raises `TooManyRequests` (code
    `too_many_tails`); after `close` starts, `acquire` raises `DependencyUnavailable` (503).
    """

    def __init__(self, max_per_tenant: int, metrics: Metrics) -> None:
        self._max_per_tenant = max_per_tenant
        self._gauge = metrics.tails_open
        self._per_tenant: Counter[str] = Counter()
        self._leases: set[TailLease] = set()
        self._closing = False
        self._idle = asyncio.Event()
        self._idle.set()

    def open_tails(self, tenant_id: str) -> int:
        """How many tails `tenant_id` holds open in this process."""
        return self._per_tenant[tenant_id]

    def acquire(self, tenant_id: str) -> TailLease:
        """A slot for one more tail of `tenant_id`, or `TooManyRequests` when its cap is reached."""
        if self._closing:
            raise DependencyUnavailable("the API is shutting down and opens no new tails")
        if self._per_tenant[tenant_id] >= self._max_per_tenant:
            raise TooManyRequests(
                f"this tenant already has {self._max_per_tenant} live tails open, the most allowed at once; "
                "close one first",
                code="too_many_tails",
                extra={"limit": self._max_per_tenant, "retry_after_seconds": _RETRY_AFTER_SECONDS},
            )
        lease = TailLease(self, tenant_id)
        self._per_tenant[tenant_id] += 1
        self._leases.add(lease)
        self._idle.clear()
        self._gauge.inc()
        return lease

    def _release(self, lease: TailLease) -> None:
        if lease not in self._leases:
            return
        self._leases.remove(lease)
        self._per_tenant[lease.tenant_id] -= 1
        if self._per_tenant[lease.tenant_id] <= 0:
            del self._per_tenant[lease.tenant_id]
        self._gauge.dec()
        if not self._leases:
            self._idle.set()

    async def close(self, timeout_seconds: float) -> None:
        """Refuse new tails, ask every open one to end, and wait up to `timeout_seconds` for them to finish.

        A tail ends once its client has read what was already queued for it; one whose client stopped reading
        may outlive the wait (its slot is then logged, and freed when its connection goes).
        """
        self._closing = True
        for lease in list(self._leases):
            if lease.on_stop is not None:
                lease.on_stop()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_seconds)
        except TimeoutError:
            logger.warning("%d live tails did not end within %.1fs of shutdown", len(self._leases), timeout_seconds)
