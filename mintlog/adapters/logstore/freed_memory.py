"""`FreedMemoryReleaser`: hands memory that Tantivy freed back to the operating system, at most once an interval.

Tantivy's merges run on their own threads, so they allocate in glibc's per-thread malloc arenas, and free
that memory when the merge is done. glibc keeps much of it mapped for later reuse. Measured in a soak at
16,500 events/s: after 18 minutes the index child's glibc heaps held 163 MiB, and one `malloc_trim(0)`
handed 65 MiB of it back (`RssAnon` 258 → 193 MiB). Without it, what a merge freed stayed resident until
later allocations reused it. Memory still in use is not touched: its growth with the partition is a separate,
open question (docs/benchmarks.md, "Memory that merges leave behind").

Guarantees:

- `release_if_due()` calls glibc's `malloc_trim(0)` when `interval_seconds` have passed since the last call
  (the first call only starts the clock), and does nothing where the C library has no `malloc_trim` (musl,
  macOS) or when `interval_seconds` is 0. It frees only memory no allocation uses: nothing live moves.
- It runs on the caller's thread (the store's writer thread, after a commit), never on the event loop.
"""

from __future__ import annotations

import ctypes
import logging
import time
from collections.abc import Callable

__all__ = ["FreedMemoryReleaser", "malloc_trim_function"]

logger = logging.getLogger(__name__)

TrimFunction = Callable[[int], int]


def malloc_trim_function() -> TrimFunction | None:
    """glibc's `malloc_trim(pad)`, or None when the C library does not have it."""
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library the process already loaded
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int

    def call(pad: int) -> int:
        return int(trim(pad))

    return call


class FreedMemoryReleaser:
    """Calls `malloc_trim(0)` at most once every `interval_seconds` (see the module docstring)."""

    def __init__(
        self,
        interval_seconds: float,
        *,
        trim: TrimFunction | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval = interval_seconds
        self._trim = None if interval_seconds <= 0 else (trim or malloc_trim_function())
        self._clock = clock
        self._last: float | None = None

    def release_if_due(self) -> bool:
        """Trim when the interval has passed since the last trim; True when it trimmed."""
        if self._trim is None:
            return False
        now = self._clock()
        if self._last is None:
            self._last = now
            return False
        if now - self._last < self._interval:
            return False
        self._last = now
        started = time.perf_counter()
        self._trim(0)
        logger.debug("handed freed memory back to the system in %.1f ms", (time.perf_counter() - started) * 1000)
        return True
