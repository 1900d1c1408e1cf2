"""The syslog listener: TCP, UDP and TCP+TLS servers that batch authenticated messages into `IngestService.accept`.

Guarantees (docs/ingest.md, "Syslog"):
- a message is stored only under the tenant of the API key it carries (`mintlog.roles.ingest.decoders.syslog`)
  and only if that key is valid with the `ingest:logs` scope; anything else is dropped and counted in
  `mintlog_syslog_dropped_total{transport,reason}`, never stored under a guessed tenant. Keys are resolved by
  the shared `Authenticator` (cached) and remembered here for at most `_KEY_MEMO_SECONDS`;
- messages are gathered per tenant and transport kind into batches of `batch_events`, published at the latest
  `flush_interval_ms` after the first one, through `IngestService.accept` (same limits, per-event rejections,
  quota and durability as every protocol, `source` = `syslog`);
- TCP and TLS messages that were read are never dropped silently: while the bus refuses a batch (503, the
  tenant's quota is used up, or the pipeline's backlog is past its limit) it is retried, and every TCP
  connection stops reading, so senders buffer, until it is accepted; reading also stops once
  `max_pending_events` messages wait, and resumes as soon as fewer than half of that wait. UDP has no such
  lever: its messages are dropped and counted (`backpressure`, `unavailable`, `quota`, `backlog`);
- a message longer than `max_frame_bytes` is dropped and counted (`oversized`); a TCP connection whose framing
  is lost is closed (`framing_lost`), see `mintlog.roles.ingest.syslog.framing`;
- `stop` stops accepting connections and datagrams, then publishes what it holds, retrying within the
  shutdown grace; what still cannot be published then is counted (`shutdown`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from mintlog.domain.tenants import IngestTimePolicy, Principal
from mintlog.errors import (
    ConfigError,
    DependencyUnavailable,
    IngestBacklogged,
    ProblemError,
    TooManyRequests,
    Unauthorized,
)
from mintlog.metrics import Metrics
from mintlog.roles.ingest.decoders.syslog import SOURCE, SyslogError, SyslogMessage, parse_syslog
from mintlog.roles.ingest.service import Accepted, IdempotentRequest, IngestService
from mintlog.roles.ingest.syslog.framing import FrameReader, FramingLost
from mintlog.settings import SyslogSettings

if TYPE_CHECKING:
    from mintlog.runtime import Runtime

__all__ = ["BatchIntake", "KeyLookup", "SyslogListener"]

logger = logging.getLogger(__name__)

_SCOPE = "ingest:logs"
_KEY_MEMO_SECONDS = 1.0
_KEY_MEMO_MAX = 4096
_FIRST_RETRY_SECONDS = 0.1
_MAX_RETRY_SECONDS = 2.0


class BatchIntake(Protocol):
    """What the listener needs of `IngestService`: its one entry."""

    async def accept(
        self,
        tenant_id: str,
        events: list[Any],
        *,
        source: str,
        idempotency: IdempotentRequest | None,
        time_policy: IngestTimePolicy | None = None,
    ) -> Accepted:
        """See `IngestService.accept`."""
        ...


class KeyLookup(Protocol):
    """What the listener needs of `mintlog.auth.Authenticator`."""

    async def authenticate(self, secret: str | None) -> Principal:
        """The principal of a valid key; raises `Unauthorized` or `DependencyUnavailable`."""
        ...


@dataclass(slots=True)
class _Item:
    message: SyslogMessage
    transport: str
    reliable: bool


@dataclass(slots=True)
class _Batch:
    events: list[dict[str, Any]] = field(default_factory=lambda: [])
    time_policy: IngestTimePolicy | None = None
    transports: dict[str, int] = field(default_factory=lambda: {})
    started_at: float = 0.0


class SyslogListener:
    """The syslog servers of one ingest role; `enabled` when at least one port is set."""

    def __init__(
        self,
        settings: SyslogSettings,
        *,
        service: BatchIntake,
        authenticator: KeyLookup,
        metrics: Metrics,
        max_events_per_batch: int,
        shutdown_grace_seconds: float,
    ) -> None:
        self._settings = settings
        self._service = service
        self._authenticator = authenticator
        self._received = metrics.syslog_messages
        self._dropped = metrics.syslog_dropped
        self._batch_events = min(settings.batch_events, max_events_per_batch)
        self._flush_seconds = settings.flush_interval_ms / 1000
        self._grace_seconds = shutdown_grace_seconds
        self._servers: list[asyncio.Server] = []
        self._udp: asyncio.DatagramTransport | None = None
        self._connections: set[_StreamProtocol] = set()
        self._inbox: deque[_Item] = deque()
        self._batches: dict[tuple[str, bool], _Batch] = {}
        self._keys: dict[str, tuple[Principal, float]] = {}
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._failing = False
        self._paused = False
        self._stopping = False
        self._stop_deadline = 0.0

    @classmethod
    def of(cls, runtime: Runtime, service: IngestService) -> SyslogListener:
        """The listener of the ingest role of `runtime`, feeding `service`."""
        settings = runtime.settings
        return cls(
            settings.syslog,
            service=service,
            authenticator=runtime.authenticator,
            metrics=runtime.metrics,
            max_events_per_batch=settings.ingest.max_events_per_batch,
            shutdown_grace_seconds=settings.http.shutdown_grace_seconds,
        )

    def readiness_checks(self) -> dict[str, Callable[[], Awaitable[None]]]:
        """`{"syslog": ping}` for the ingest port's /readyz when a syslog port is configured, else nothing."""
        return {"syslog": self.ping} if self.enabled else {}

    @property
    def enabled(self) -> bool:
        """Whether any syslog port is configured."""
        settings = self._settings
        return bool(settings.tcp_port or settings.udp_port or settings.tls_port)

    async def start(self) -> None:
        """Bind every configured port and start the batching worker; raises `ConfigError` for a TLS port
        without a certificate, or a port that cannot be bound."""
        if not self.enabled:
            return
        settings = self._settings
        tls_context = self._tls_context() if settings.tls_port else None
        loop = asyncio.get_running_loop()
        self._worker = loop.create_task(self._run(), name="syslog-batches")
        try:
            if settings.tcp_port:
                self._servers.append(await self._serve_stream(settings.tcp_port, "tcp", None))
            if settings.tls_port:
                self._servers.append(await self._serve_stream(settings.tls_port, "tls", tls_context))
            if settings.udp_port:
                transport, _protocol = await loop.create_datagram_endpoint(
                    lambda: _DatagramProtocol(self), local_addr=(settings.host, settings.udp_port)
                )
                self._udp = transport
        except OSError as exc:
            await self.stop()
            raise ConfigError(f"cannot listen for syslog on {settings.host}: {exc}") from None
        logger.info(
            "syslog listening on %s (tcp %s, udp %s, tls %s)",
            settings.host,
            settings.tcp_port or "off",
            settings.udp_port or "off",
            settings.tls_port or "off",
        )

    async def _serve_stream(self, port: int, transport: str, context: ssl.SSLContext | None) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        return await loop.create_server(
            lambda: _StreamProtocol(self, transport), host=self._settings.host, port=port, ssl=context
        )

    def _tls_context(self) -> ssl.SSLContext:
        settings = self._settings
        if not (settings.tls_cert_file and settings.tls_key_file):
            raise ConfigError(
                "MINTLOG_SYSLOG__TLS_PORT needs MINTLOG_SYSLOG__TLS_CERT_FILE and MINTLOG_SYSLOG__TLS_KEY_FILE"
            )
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"invalid setting MINTLOG_SYSLOG__TLS_CERT_FILE={settings.tls_cert_file!r} or "
                f"MINTLOG_SYSLOG__TLS_KEY_FILE={settings.tls_key_file!r}: {exc}"
            ) from None
        return context

    async def ping(self) -> None:
        """Readiness: raises `DependencyUnavailable` when a configured listener is not serving, or while the
        bus refuses syslog batches (TCP reading is paused then)."""
        if any(not server.is_serving() for server in self._servers):
            raise DependencyUnavailable("a syslog listener is not serving")
        if self._failing:
            raise DependencyUnavailable("syslog batches are refused by the bus; TCP reading is paused")

    async def stop(self) -> None:
        """Stop listening, publish what was received (within the shutdown grace), then close."""
        self._stopping = True
        self._stop_deadline = time.monotonic() + self._grace_seconds
        for server in self._servers:
            server.close()
        for connection in list(self._connections):
            connection.close()
        if self._udp is not None:
            self._udp.close()
        self._wake.set()
        worker, self._worker = self._worker, None
        if worker is not None:
            try:
                await asyncio.wait_for(worker, self._grace_seconds + 1.0)
            except TimeoutError:
                logger.warning("syslog batches were still being published at the end of the shutdown grace")
        self._servers.clear()

    # --- receiving (synchronous, called by the protocols) ----------------------------------------------------

    def receive(self, frames: list[bytes], transport: str, *, reliable: bool) -> None:
        """Take the messages of one read of a connection, or one datagram: parse each and queue it for the
        worker, or count why it is dropped."""
        if not frames:
            return
        self._received.labels(transport).inc(len(frames))
        inbox = self._inbox
        max_pending = self._settings.max_pending_events
        for frame in frames:
            try:
                message = parse_syslog(frame)
            except SyslogError as exc:
                self.drop(transport, exc.reason)
                continue
            if message.key is None:
                self.drop(transport, "unauthenticated")
                continue
            if not reliable and len(inbox) >= max_pending:
                self.drop(transport, "backpressure")
                continue
            inbox.append(_Item(message, transport, reliable))
        self._wake.set()

    def oversized(self, transport: str) -> None:
        """Count a message longer than `max_frame_bytes`, received and dropped."""
        self._received.labels(transport).inc()
        self.drop(transport, "oversized")

    @property
    def max_frame_bytes(self) -> int:
        """The longest message taken."""
        return self._settings.max_frame_bytes

    def drop(self, transport: str, reason: str, count: int = 1) -> None:
        """Count `count` dropped messages."""
        self._dropped.labels(transport, reason).inc(count)

    def connection_opened(self, connection: _StreamProtocol) -> None:
        self._connections.add(connection)
        if self._paused:
            connection.pause()

    def connection_closed(self, connection: _StreamProtocol) -> None:
        self._connections.discard(connection)

    def after_read(self) -> None:
        """Stop reading every connection once `max_pending_events` messages wait."""
        if len(self._inbox) >= self._settings.max_pending_events:
            self._set_paused(True)

    def _update_flow(self) -> None:
        self._set_paused(self._failing or len(self._inbox) >= self._settings.max_pending_events // 2)

    def _set_paused(self, paused: bool) -> None:
        if paused == self._paused:
            return
        self._paused = paused
        logger.info("syslog TCP reading %s", "paused" if paused else "resumed")
        for connection in self._connections:
            if paused:
                connection.pause()
            else:
                connection.resume()

    # --- the worker: authenticate, batch, publish ---------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._drain()
            await self._flush_due(force=self._stopping)
            if self._stopping and not self._inbox and not self._batches:
                return
            self._update_flow()
            self._wake.clear()
            if self._inbox:
                continue
            timeout = self._next_flush_in()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _next_flush_in(self) -> float | None:
        if not self._batches:
            return None
        oldest = min(batch.started_at for batch in self._batches.values())
        return max(0.0, oldest + self._flush_seconds - time.monotonic())

    async def _drain(self) -> None:
        inbox, keys, batches = self._inbox, self._keys, self._batches
        now = time.monotonic()
        while inbox:
            item = inbox[0]
            # The key memo is read here without a call per message: most messages carry a key seen just before.
            memo = keys.get(item.message.key or "")  # queued messages have a key
            if memo is not None and memo[1] > now:
                principal: Principal | object | None = memo[0]
            else:
                principal = await self._principal(item)
                now = time.monotonic()
                if principal is _RETRY:
                    continue
            inbox.popleft()
            if principal is None:
                continue
            assert isinstance(principal, Principal)
            key = (principal.tenant_id, item.reliable)
            batch = batches.get(key)
            if batch is None:
                batch = batches[key] = _Batch(started_at=now)
            batch.events.append(item.message.event)
            batch.time_policy = principal.time_policy
            batch.transports[item.transport] = batch.transports.get(item.transport, 0) + 1
            if len(batch.events) >= self._batch_events:
                del batches[key]
                await self._publish(key[0], key[1], batch)
                self._resume_if_room()
                now = time.monotonic()

    def _resume_if_room(self) -> None:
        """Resume reading once fewer than half of `max_pending_events` messages wait (and the bus accepts)."""
        if self._paused and not self._failing and len(self._inbox) < self._settings.max_pending_events // 2:
            self._set_paused(False)

    async def _principal(self, item: _Item) -> Principal | object | None:
        """The principal of the item's key; None when it is dropped (counted); `_RETRY` after waiting out a
        database outage for a reliable item."""
        secret = item.message.key
        assert secret is not None
        now = time.monotonic()
        memo = self._keys.get(secret)
        if memo is not None and memo[1] > now:
            return memo[0]
        try:
            principal = await self._authenticator.authenticate(secret)
        except Unauthorized:
            self.drop(item.transport, "invalid_key")
            return None
        except DependencyUnavailable as exc:
            if not item.reliable or self._past_deadline():
                self.drop(item.transport, "unavailable" if not item.reliable else "shutdown")
                return None
            logger.warning("syslog: cannot check an API key (%s); TCP reading paused", exc)
            await self._wait_failing(_MAX_RETRY_SECONDS)
            return _RETRY
        if not principal.has_scope(_SCOPE):
            self.drop(item.transport, "invalid_key")
            return None
        if len(self._keys) >= _KEY_MEMO_MAX:
            self._keys.clear()
        self._keys[secret] = (principal, now + _KEY_MEMO_SECONDS)
        return principal

    async def _flush_due(self, *, force: bool) -> None:
        now = time.monotonic()
        due = [key for key, batch in self._batches.items() if force or batch.started_at + self._flush_seconds <= now]
        for key in due:
            batch = self._batches.pop(key)
            await self._publish(key[0], key[1], batch)

    async def _publish(self, tenant_id: str, reliable: bool, batch: _Batch) -> None:
        """Accept one batch; a reliable (TCP, TLS) batch is retried until it is accepted or the shutdown grace
        ends, pausing TCP reading meanwhile."""
        delay = _FIRST_RETRY_SECONDS
        while True:
            try:
                await self._service.accept(
                    tenant_id, batch.events, source=SOURCE, idempotency=None, time_policy=batch.time_policy
                )
            except (DependencyUnavailable, TooManyRequests, IngestBacklogged) as exc:
                reason = (
                    "quota"
                    if isinstance(exc, TooManyRequests)
                    else "backlog"
                    if isinstance(exc, IngestBacklogged)
                    else "unavailable"
                )
                if not reliable or self._past_deadline():
                    self._drop_batch(batch, reason if not reliable else "shutdown")
                    return
                logger.warning(
                    "syslog batch of %d events for tenant %s refused (%s); retrying in %.1fs with TCP reading paused",
                    len(batch.events),
                    tenant_id,
                    exc,
                    delay,
                )
                await self._wait_failing(delay)
                delay = min(delay * 2, _MAX_RETRY_SECONDS)
                continue
            except ProblemError:
                # Every event was rejected (counted by reason in mintlog_ingest_events_rejected_total).
                self._drop_batch(batch, "rejected")
            break
        if self._failing:
            self._failing = False
            self._update_flow()

    async def _wait_failing(self, seconds: float) -> None:
        """Pause TCP reading and wait `seconds` before a retry (no later than the end of the shutdown grace)."""
        self._failing = True
        self._set_paused(True)
        if self._stopping:
            seconds = max(0.0, min(seconds, self._stop_deadline - time.monotonic()))
        await asyncio.sleep(seconds)

    def _drop_batch(self, batch: _Batch, reason: str) -> None:
        for transport, count in batch.transports.items():
            self.drop(transport, reason, count)

    def _past_deadline(self) -> bool:
        return self._stopping and time.monotonic() >= self._stop_deadline


_RETRY = object()


class _StreamProtocol(asyncio.Protocol):
    """One TCP or TLS connection: deframes the stream and hands each message to the listener."""

    def __init__(self, listener: SyslogListener, transport_name: str) -> None:
        self._listener = listener
        self._name = transport_name
        self._transport: asyncio.Transport | None = None
        self._reader = FrameReader(
            max_frame_bytes=listener.max_frame_bytes, on_oversized=lambda: listener.oversized(transport_name)
        )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._listener.connection_opened(self)

    def data_received(self, data: bytes) -> None:
        try:
            frames = self._reader.feed(data)
        except FramingLost as exc:
            self._listener.drop(self._name, "framing_lost")
            logger.info("syslog %s connection closed: %s", self._name, exc)
            self.close()
            return
        self._listener.receive(frames, self._name, reliable=True)
        self._listener.after_read()

    def eof_received(self) -> bool | None:
        # A last message without its newline at the end of the stream is still a message.
        last = self._reader.finish()
        if last is not None:
            self._listener.receive([last], self._name, reliable=True)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._listener.connection_closed(self)

    def pause(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.pause_reading()

    def resume(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class _DatagramProtocol(asyncio.DatagramProtocol):
    """The UDP socket: one datagram is one message."""

    def __init__(self, listener: SyslogListener) -> None:
        self._listener = listener
        self._max = listener.max_frame_bytes

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if len(data) > self._max:
            self._listener.oversized("udp")
            return
        self._listener.receive([data], "udp", reliable=False)
