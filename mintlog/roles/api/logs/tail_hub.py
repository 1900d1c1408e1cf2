"""`TailHub`: the live tails of one API process — the per-tenant cap, the open-tails gauge, the periodic
re-check of their API keys, and shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from mintlog.errors import DependencyUnavailable, TooManyRequests
from mintlog.metrics import Metrics

if TYPE_CHECKING:
    from mintlog.auth import KeyRefusal

__all__ = ["KeyRecheck", "TailHub", "TailLease"]

logger = logging.getLogger(__name__)

_RETRY_AFTER_SECONDS = 5


class KeyRecheck(Protocol):
    """Tells whether a key in use still authenticates (`Authenticator` is one)."""

    async def recheck(self, key_hash: str) -> KeyRefusal | None:
        """None while the key with this SHA-256 authenticates, else why not; may raise `DependencyUnavailable`
        when that cannot be told."""
        ...


class TailLease:
    """One tail's slot in its tenant's cap, opened with the key whose SHA-256 is `key_hash`.

    `release` frees it (idempotent). `on_stop` is called at shutdown; `on_refused` when the key stopped
    authenticating, just before the hub releases the lease.
    """

    def __init__(self, hub: TailHub, tenant_id: str, key_hash: str) -> None:
        self.tenant_id = tenant_id
        self.key_hash = key_hash
        self._hub = hub
        self._released = False
        self.on_stop: Callable[[], None] | None = None
        self.on_refused: Callable[[KeyRefusal], None] | None = None

    @property
    def released(self) -> bool:
        return self._released

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        self._hub._release(self)  # pyright: ignore[reportPrivateUsage]


class TailHub:
    """Counts open tails per tenant, ends those whose key no longer authenticates, and ends them all at shutdown.

    Guarantees: at most `max_per_tenant` leases of one tenant are held at once in this process (the cap is
    per API instance, not cluster-wide); `acquire` beyond it raises `TooManyRequests` (code
    `too_many_tails`); after `close` starts, `acquire` raises `DependencyUnavailable` (503).

    While leases are held, every `recheck_seconds` each distinct key among them is re-checked once through
    `keys` (so many tails of one key cost one check); when a key is refused, each of its leases gets
    `on_refused` with the reason and is released at once, so a dead stream never holds a slot. A check that
    cannot be answered (database down, nothing cached) keeps the tails open: an outage never ends them.
    """

    def __init__(self, max_per_tenant: int, metrics: Metrics, keys: KeyRecheck, *, recheck_seconds: float) -> None:
        self._max_per_tenant = max_per_tenant
        self._gauge = metrics.tails_open
        self._keys = keys
        self._recheck_seconds = recheck_seconds
        self._per_tenant: Counter[str] = Counter()
        self._leases: set[TailLease] = set()
        self._by_key: dict[str, set[TailLease]] = {}
        self._rechecking: asyncio.Task[None] | None = None
        self._closing = False
        self._idle = asyncio.Event()
        self._idle.set()

    def open_tails(self, tenant_id: str) -> int:
        """How many tails `tenant_id` holds open in this process."""
        return self._per_tenant[tenant_id]

    def acquire(self, tenant_id: str, key_hash: str) -> TailLease:
        """A slot for one more tail of `tenant_id` opened with the key `key_hash`, or `TooManyRequests` when
        the tenant's cap is reached."""
        if self._closing:
            raise DependencyUnavailable("the API is shutting down and opens no new tails")
        if self._per_tenant[tenant_id] >= self._max_per_tenant:
            raise TooManyRequests(
                f"this tenant already has {self._max_per_tenant} live tails open, the most allowed at once; "
                "close one first",
                code="too_many_tails",
                extra={"limit": self._max_per_tenant, "retry_after_seconds": _RETRY_AFTER_SECONDS},
            )
        lease = TailLease(self, tenant_id, key_hash)
        self._per_tenant[tenant_id] += 1
        self._leases.add(lease)
        self._by_key.setdefault(key_hash, set()).add(lease)
        self._idle.clear()
        self._gauge.inc()
        if self._rechecking is None:
            self._rechecking = asyncio.get_running_loop().create_task(self._recheck_while_open(), name="recheck-tails")
        return lease

    def _release(self, lease: TailLease) -> None:
        if lease not in self._leases:
            return
        self._leases.remove(lease)
        self._per_tenant[lease.tenant_id] -= 1
        if self._per_tenant[lease.tenant_id] <= 0:
            del self._per_tenant[lease.tenant_id]
        same_key = self._by_key.get(lease.key_hash)
        if same_key is not None:
            same_key.discard(lease)
            if not same_key:
                del self._by_key[lease.key_hash]
        self._gauge.dec()
        if not self._leases:
            self._idle.set()

    async def _recheck_while_open(self) -> None:
        try:
            while self._by_key:
                await asyncio.sleep(self._recheck_seconds)
                await self.recheck_keys()
        finally:
            self._rechecking = None  # no await since the loop's test: a new lease starts a new task

    async def recheck_keys(self) -> int:
        """Check each key of the open tails once; end the tails of the refused ones. Returns how many ended."""
        ended = 0
        unanswered: list[str] = []
        for key_hash in list(self._by_key):
            try:
                refusal = await self._keys.recheck(key_hash)
            except DependencyUnavailable as exc:
                unanswered.append(str(exc))
                continue
            except Exception:
                logger.exception("re-checking the API key of open tails failed; they stay open")
                continue
            if refusal is not None:
                ended += self._refuse(key_hash, refusal)
        if unanswered:
            logger.warning(
                "could not re-check %d API keys of open tails, which stay open: %s", len(unanswered), unanswered[0]
            )
        return ended

    def _refuse(self, key_hash: str, refusal: KeyRefusal) -> int:
        leases = self._by_key.pop(key_hash, set())
        for lease in leases:
            if lease.on_refused is not None:
                lease.on_refused(refusal)
            lease.release()
        if leases:
            tenant_id = next(iter(leases)).tenant_id
            logger.info("ended %d live tails of tenant %s: %s", len(leases), tenant_id, refusal)
        return len(leases)

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
        rechecking = self._rechecking
        if rechecking is not None:
            rechecking.cancel()
            await asyncio.wait({rechecking})
