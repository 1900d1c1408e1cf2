"""`EmbeddedNatsBus`: the default event bus, a `NatsEventBus` on a nats-server child process.

`start()` starts the child (see `EmbeddedNatsServer` for its lifecycle guarantees) and then connects;
`close()` disconnects and stops the child, so no nats-server outlives Mintlog.

While the server reports a failed store write (its disk filled up), `publish` raises `BusUnavailable` at once,
without sending (so nothing is stored), and `ping` raises it too (readiness is `not_ready`), naming the error
and the free bytes; both work again as soon as the server was restarted on a disk with room again (the
store watch of `EmbeddedNatsServer` does that within seconds).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

from mintlog.adapters.bus.embedded_nats import EmbeddedNatsServer, StoreHealth
from mintlog.adapters.bus.nats import NatsEventBus
from mintlog.domain.streams import total_stream_bytes
from mintlog.errors import BusUnavailable
from mintlog.ports.bus import BusConsumer, BusMessage, ConsumerBacklog, PublishAck, StreamBacklog

__all__ = ["EmbeddedNatsBus"]

_STORE_HEADROOM_BYTES = 256 * 1024 * 1024


class EmbeddedNatsBus:
    """The EventBus port on an embedded, Mintlog-managed JetStream server."""

    def __init__(
        self,
        *,
        store_dir: Path,
        sync_interval: str,
        max_payload_bytes: int,
        connect_timeout_seconds: float,
        publish_timeout_seconds: float,
        stream_max_bytes: int,
        stream_max_age_seconds: int,
        duplicate_window_seconds: int,
        replicas: int,
        on_restart: Callable[[], object] | None = None,
        on_store_health: Callable[[StoreHealth], object] | None = None,
        on_store_recovery: Callable[[], object] | None = None,
    ) -> None:
        # Storage is sized to the streams' own limits rather than to 75 % of the free disk (JetStream's
        # default), so stream creation does not depend on how full the disk happens to be; a disk that
        # really fills up makes publishes fail, and ingest answers 503.
        self.server = EmbeddedNatsServer(
            store_dir,
            sync_interval=sync_interval,
            max_payload_bytes=max_payload_bytes,
            max_file_store_bytes=total_stream_bytes(stream_max_bytes) + _STORE_HEADROOM_BYTES,
            on_restart=on_restart,
            on_store_health=on_store_health,
            on_store_recovery=on_store_recovery,
        )
        self._connect_timeout_seconds = connect_timeout_seconds
        self._publish_timeout_seconds = publish_timeout_seconds
        self._stream_max_bytes = stream_max_bytes
        self._stream_max_age_seconds = stream_max_age_seconds
        self._duplicate_window_seconds = duplicate_window_seconds
        self._replicas = replicas
        self._bus: NatsEventBus | None = None

    @property
    def _inner(self) -> NatsEventBus:
        assert self._bus is not None, "EmbeddedNatsBus.start() was not awaited"
        return self._bus

    async def start(self) -> None:
        url = await self.server.start()
        self._bus = NatsEventBus(
            [url],
            connect_timeout_seconds=self._connect_timeout_seconds,
            publish_timeout_seconds=self._publish_timeout_seconds,
            stream_max_bytes=self._stream_max_bytes,
            stream_max_age_seconds=self._stream_max_age_seconds,
            duplicate_window_seconds=self._duplicate_window_seconds,
            replicas=self._replicas,
        )
        try:
            await self._bus.start()
        except BaseException:
            await self.server.stop()
            raise

    async def close(self) -> None:
        try:
            if self._bus is not None:
                await self._bus.close()
        finally:
            self._bus = None
            await self.server.stop()

    async def publish(
        self,
        subject: str,
        payload: bytes,
        *,
        msg_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> PublishAck:
        self._check_store()
        return await self._inner.publish(subject, payload, msg_id=msg_id, headers=headers)

    async def consumer(self, stream: str, durable: str, *, filter_subject: str, ack_wait_seconds: float) -> BusConsumer:
        return await self._inner.consumer(
            stream, durable, filter_subject=filter_subject, ack_wait_seconds=ack_wait_seconds
        )

    def subscribe(self, subject: str) -> AsyncIterator[BusMessage]:
        return self._inner.subscribe(subject)

    async def ping(self) -> None:
        self._check_store()
        await self._inner.ping()

    async def backlog(self, stream: str) -> StreamBacklog:
        return await self._inner.backlog(stream)

    async def consumer_backlog(self, stream: str, durable: str) -> ConsumerBacklog | None:
        return await self._inner.consumer_backlog(stream, durable)

    def _check_store(self) -> None:
        """Raise `BusUnavailable` while the server reports a failed store write."""
        health = self.server.store_health
        if health.write_error is not None:
            free = f"{health.free_bytes} bytes free" if health.free_bytes is not None else "free space unknown"
            raise BusUnavailable(
                f"the embedded nats-server cannot write its store under {self.server.store_dir} ({free}); "
                f"it is restarted once there is room: {health.write_error}"
            )

    @property
    def max_payload_bytes(self) -> int:
        return self._inner.max_payload_bytes
