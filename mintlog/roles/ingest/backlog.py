"""The backlog gate: ingest refuses new batches while the pipeline is too far behind, so that the searchable lag
stays bounded instead of growing as long as intake outruns indexing.

The pipeline's backlog is the work its two stages have not started: the batches on `LOGS_RAW` not yet handed to
the normalizer (its durable consumer `pipeline`), and everything `LOGS_PARSED` holds (a work queue: a parsed batch
stays there until the indexer acked it, so failed writes waiting for a retry count too). The batches the
normalizer was handed but has not acked are not counted: with the archive on they are already normalized and
passed on, and wait only for their archive object (up to `MINTLOG_ARCHIVE__MAX_AGE_SECONDS`, or longer while the
blob store is down), which does not delay search. Before the normalizer's consumer exists (the pipeline never
ran), everything `LOGS_RAW` holds is counted. `BacklogGate.refresh` reads them from the bus
(`EventBus.consumer_backlog` and `EventBus.backlog`, at most three requests) every
`MINTLOG_INGEST__BACKLOG_CHECK_INTERVAL_MS`, never per request, and exports them
(`mintlog_ingest_backlog_messages`, `mintlog_ingest_backlog_oldest_seconds`) even with both limits off;
`BacklogGate.check`, called before a batch is read, only looks at the last decision.

Guarantees:
- The gate closes when the searchable delay passes `MINTLOG_INGEST__MAX_BACKLOG_SECONDS`, or the messages of both
  streams together pass `MINTLOG_INGEST__MAX_BACKLOG_MESSAGES` (0 turns a limit off), and opens again only once
  both are below `RESUME_FRACTION` (80 %) of their limit, so it does not flap at the edge. The delay is the
  larger of the age of the oldest waiting message (of either stream) and the expected wait of a batch accepted
  now: what waits ahead of it divided by the rate at which the pipeline drained each stream over the last
  `RATE_WINDOW_SECONDS` (only once the stream was busy that long: a pipeline waiting for work is not measured).
  The age alone would let intake run ahead of indexing for the whole limit before closing, so that the last
  batch accepted then waits the limit times the overload (intake ÷ indexing rate).
- A refusal happens before anything of the batch is accepted: nothing is published, nothing accepted earlier is
  touched (it stays on the bus until indexed).
- While the bus cannot be read the last decision stays (a bus that cannot be read refuses publishes itself).

The age of the oldest waiting message is a lower bound of the searchable lag: an event waiting on `LOGS_PARSED`
already spent some time on `LOGS_RAW`. The expected wait counts messages, so it assumes the batches waiting are
about as large as those drained lately.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from mintlog.domain.streams import LOGS_PARSED, LOGS_RAW, NORMALIZER_DURABLE
from mintlog.errors import BusUnavailable, IngestBacklogged
from mintlog.metrics import Metrics
from mintlog.ports.bus import EventBus, StreamBacklog
from mintlog.roles.kit.base import Periodic
from mintlog.settings import IngestSettings

__all__ = [
    "RATE_WINDOW_SECONDS",
    "RESUME_FRACTION",
    "RETRY_AFTER_SECONDS",
    "Backlog",
    "BacklogGate",
    "BacklogLimits",
    "DrainRate",
    "expected_wait_seconds",
    "is_overloaded",
]

logger = logging.getLogger(__name__)

BACKLOG_STREAMS = (LOGS_RAW.name, LOGS_PARSED.name)
RESUME_FRACTION = 0.8
"""The gate opens again once the backlog is below this fraction of every limit."""
RETRY_AFTER_SECONDS = 2
"""What a refusal's `Retry-After` says: about two reads of the backlog."""
RATE_WINDOW_SECONDS = 5.0
"""How far back the pipeline's drain rate is measured."""


@dataclass(frozen=True, slots=True)
class BacklogLimits:
    """When the gate closes; a limit of 0 is off."""

    max_seconds: float = 0.0
    max_messages: int = 0

    @classmethod
    def of(cls, settings: IngestSettings) -> BacklogLimits:
        return cls(max_seconds=settings.max_backlog_seconds, max_messages=settings.max_backlog_messages)


@dataclass(frozen=True, slots=True)
class Backlog:
    """The pipeline's backlog: messages waiting on both log streams, and the age of the oldest of them."""

    messages: int
    oldest_seconds: float
    expected_seconds: float = 0.0
    """How long a batch accepted now would wait to be indexed at the pipeline's recent drain rate (0: unknown)."""

    @property
    def delay_seconds(self) -> float:
        """The searchable delay the gate bounds: the oldest waiting message's age or the expected wait."""
        return max(self.oldest_seconds, self.expected_seconds)


def is_overloaded(backlog: Backlog, limits: BacklogLimits, *, was_overloaded: bool) -> bool:
    """Whether ingest should refuse: past a limit when it accepted so far; still at or above `RESUME_FRACTION`
    of a limit when it refused so far."""
    fraction = RESUME_FRACTION if was_overloaded else 1.0
    too_old = limits.max_seconds > 0 and backlog.delay_seconds > limits.max_seconds * fraction
    too_many = limits.max_messages > 0 and backlog.messages > limits.max_messages * fraction
    return too_old or too_many


class DrainRate:
    """Messages per second leaving one stage's backlog (taken by the normalizer from `LOGS_RAW`, acked by the
    indexer on `LOGS_PARSED`), over the last `RATE_WINDOW_SECONDS` during which the backlog never ran empty: the
    rate of a busy consumer, which is what it can do."""

    def __init__(self, window_seconds: float = RATE_WINDOW_SECONDS) -> None:
        self._window = window_seconds
        self._samples: deque[tuple[float, int, int]] = deque()

    def observe(self, at: float, held: int, last_sequence: int) -> None:
        """Record a read at monotonic time `at`: `held` messages waiting, behind the one at `last_sequence`
        (whatever the sequence moved by and `held` did not, left)."""
        if held == 0:
            self._samples.clear()  # idle: what left so far was limited by what came in
        self._samples.append((at, held, last_sequence))
        while len(self._samples) > 2 and self._samples[1][0] <= at - self._window:
            self._samples.popleft()

    def per_second(self) -> float | None:
        """The drain rate, or None until the stream was busy for a whole window."""
        if len(self._samples) < 2:
            return None
        (first_at, first_held, first_sequence), (last_at, last_held, last_sequence) = (
            self._samples[0],
            self._samples[-1],
        )
        if last_at - first_at < self._window or first_held == 0:
            return None
        left = (last_sequence - first_sequence) - (last_held - first_held)
        return max(0, left) / (last_at - first_at)


def expected_wait_seconds(raw_held: int, raw_rate: float | None, parsed_held: int, parsed_rate: float | None) -> float:
    """How long a message published on `LOGS_RAW` now waits to be indexed: behind the raw messages for the
    normalizer, and behind those plus the parsed ones for the indexer (each raw message becomes one parsed
    message); a stage whose rate is unknown or zero adds nothing (the oldest message's age covers a stall)."""
    waits = [0.0]
    if raw_held and raw_rate:
        waits.append(raw_held / raw_rate)
    if raw_held + parsed_held and parsed_rate:
        waits.append((raw_held + parsed_held) / parsed_rate)
    return max(waits)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class BacklogGate:
    """Reads the pipeline's backlog periodically (`start`/`stop`) and refuses intake while it is too large."""

    name = "ingest-backlog"

    def __init__(
        self,
        bus: EventBus,
        limits: BacklogLimits,
        metrics: Metrics,
        *,
        check_interval_seconds: float = 1.0,
        clock: Callable[[], datetime] = _utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bus = bus
        self._limits = limits
        self._metrics = metrics
        self._clock = clock
        self._monotonic = monotonic
        self._rates = {stream: DrainRate() for stream in BACKLOG_STREAMS}
        self._overloaded = False
        self._last: Backlog | None = None
        self._unreadable = False
        self._loop = Periodic(self.name, check_interval_seconds, self.refresh)

    @property
    def overloaded(self) -> bool:
        """Whether intake is refused now."""
        return self._overloaded

    @property
    def last_backlog(self) -> Backlog | None:
        """The backlog as last read, None before the first read."""
        return self._last

    def check(self) -> None:
        """Raise `IngestBacklogged` (nothing accepted) while the gate is closed; return at once otherwise."""
        if not self._overloaded:
            return
        raise IngestBacklogged(self._refusal(), extra={"retry_after_seconds": RETRY_AFTER_SECONDS})

    async def refresh(self) -> None:
        """Read the backlog of both stages once, update the gauges and decide (with both limits off the
        gauges are kept all the same: they are how an operator sees the pipeline fall behind)."""
        now = self._clock()
        messages: dict[str, int] = {}
        oldest_seconds = 0.0
        try:
            for stream in BACKLOG_STREAMS:
                held = await self._waiting(stream)
                self._rates[stream].observe(self._monotonic(), held.messages, held.last_sequence)
                age = 0.0
                if held.oldest_stored_at is not None:
                    age = max(0.0, (now - held.oldest_stored_at).total_seconds())
                self._metrics.ingest_backlog_messages.labels(stream).set(held.messages)
                self._metrics.ingest_backlog_oldest_seconds.labels(stream).set(age)
                messages[stream] = held.messages
                oldest_seconds = max(oldest_seconds, age)
        except BusUnavailable as exc:
            if not self._unreadable:
                logger.warning("cannot read the pipeline's backlog (keeping the last decision): %s", exc)
            self._unreadable = True
            return
        self._unreadable = False
        raw, parsed = BACKLOG_STREAMS
        expected = expected_wait_seconds(
            messages[raw], self._rates[raw].per_second(), messages[parsed], self._rates[parsed].per_second()
        )
        self._metrics.ingest_backlog_expected_wait_seconds.set(expected)
        backlog = self._last = Backlog(sum(messages.values()), oldest_seconds, expected)
        overloaded = is_overloaded(backlog, self._limits, was_overloaded=self._overloaded)
        if overloaded != self._overloaded:
            if overloaded:
                logger.warning("ingest refuses new batches: %s", self._describe(backlog))
            else:
                logger.info("ingest accepts batches again: %s", self._describe(backlog))
        self._overloaded = overloaded
        self._metrics.ingest_backlog_refusing.set(1 if overloaded else 0)

    async def _waiting(self, stream: str) -> StreamBacklog:
        """What waits on `stream` for its stage to start on it: on `LOGS_RAW` what the normalizer was not handed
        yet (all it holds while the normalizer's consumer does not exist), on `LOGS_PARSED` all it holds."""
        if stream == LOGS_RAW.name:
            position = await self._bus.consumer_backlog(stream, NORMALIZER_DURABLE)
            if position is not None:
                return StreamBacklog(
                    messages=position.undelivered,
                    bytes=0,
                    oldest_stored_at=position.oldest_undelivered_at,
                    last_sequence=position.delivered_sequence + position.undelivered,
                )
        return await self._bus.backlog(stream)

    async def start(self) -> None:
        """Read the backlog now, then every check interval."""
        await self.refresh()
        await self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    def _refusal(self) -> str:
        backlog = self._last
        described = self._describe(backlog) if backlog is not None else "the pipeline is behind"
        return (
            f"ingest is paused while the pipeline catches up ({described}); nothing of this request was stored, "
            f"retry in {RETRY_AFTER_SECONDS} s"
        )

    def _describe(self, backlog: Backlog) -> str:
        limits = self._limits
        parts = [
            f"oldest waiting event {backlog.oldest_seconds:.1f} s old, a new one would wait "
            f"{backlog.expected_seconds:.1f} s"
        ]
        if limits.max_seconds > 0:
            parts[-1] += f" (limit {limits.max_seconds:g} s)"
        parts.append(f"{backlog.messages} batches waiting")
        if limits.max_messages > 0:
            parts[-1] += f" (limit {limits.max_messages})"
        return ", ".join(parts)
