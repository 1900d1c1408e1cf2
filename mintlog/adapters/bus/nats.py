"""The NATS JetStream event bus (nats-py), used both for the embedded server and an external cluster.

Guarantees:

- `publish` returns only after JetStream's PubAck: the message is stored in its stream, with the durability of
  the server's `sync_interval` (fsynced before the ack with `always`). A repeated `msg_id` inside the stream's
  duplicate window is acknowledged with `duplicate=True` and stored once.
- Consumers are durable pull consumers with explicit acks and no delivery limit: a message is redelivered
  after `ack_wait_seconds` until it is acked or terminated (at-least-once). Within one subject, messages are
  first delivered in stream order; redeliveries may interleave with newer messages.
- `ack`, `nak` and `term` are sent on a live connection without waiting for a confirmation (`close()`
  flushes them); one lost with a connection or a server crash only causes a redelivery.
- After `start()` the client reconnects forever in the background; while it is disconnected, calls wait
  for the connection up to their own timeout and then raise `BusUnavailable`. No nats exception leaves this
  module: a refused message raises `BusFull`, a payload above the server's limit `PayloadTooLarge`, anything
  else `BusUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import TypeVar
from urllib.parse import urlsplit

import msgspec
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext, JetStreamManager
from nats.js import api as js_api

from mintlog.adapters.bus.live import LiveMessage
from mintlog.domain.streams import STREAMS, StreamSpec
from mintlog.errors import BusFull, BusUnavailable, DependencyUnavailable, PayloadTooLarge
from mintlog.ports.bus import BusConsumer, BusMessage, ConsumerBacklog, PublishAck, StreamBacklog

__all__ = ["NatsEventBus"]

logger = logging.getLogger(__name__)

MSG_ID_HEADER = "Nats-Msg-Id"
_DEFAULT_MAX_PAYLOAD = 1024 * 1024  # what nats-server allows unless configured otherwise
_RECONNECT_WAIT_SECONDS = 1
_CONNECTED_POLL_SECONDS = 0.1

# JetStream API error codes meaning "the stream or the account has no room for this message".
_ERR_INSUFFICIENT_RESOURCES = 10023
_ERR_MEMORY_RESOURCES_EXCEEDED = 10028
_ERR_STORAGE_RESOURCES_EXCEEDED = 10047
_ERR_CONSUMER_NOT_UNIQUE_ON_WORK_QUEUE = 10100
_ERR_MESSAGE_TOO_LARGE = 10054
_ERR_STREAM_NAME_IN_USE = 10058
_ERR_CONSUMER_NOT_FOUND = 10014
_ERR_NO_MESSAGE_FOUND = 10037
_FULL_ERROR_CODES = frozenset(
    {_ERR_INSUFFICIENT_RESOURCES, _ERR_MEMORY_RESOURCES_EXCEEDED, _ERR_STORAGE_RESOURCES_EXCEEDED}
)

_Answer = TypeVar("_Answer")


class _StreamState(msgspec.Struct):
    messages: int = 0
    bytes: int = 0
    first_ts: datetime | None = None
    last_seq: int = 0


class _ApiError(msgspec.Struct):
    code: int = 0
    err_code: int = 0
    description: str = ""


class _StreamInfoAnswer(msgspec.Struct):
    """The part of JetStream's `STREAM.INFO` answer `backlog` reads (nats-py's `StreamState` drops `first_ts`)."""

    state: _StreamState | None = None
    error: _ApiError | None = None


_stream_info_decoder = msgspec.json.Decoder(_StreamInfoAnswer)


class _DeliveredSequence(msgspec.Struct):
    stream_seq: int = 0


class _ConsumerFilter(msgspec.Struct):
    filter_subject: str | None = None


class _ConsumerInfoAnswer(msgspec.Struct):
    """The part of JetStream's `CONSUMER.INFO` answer `consumer_backlog` reads."""

    num_pending: int = 0
    num_ack_pending: int = 0
    delivered: _DeliveredSequence | None = None
    config: _ConsumerFilter | None = None
    error: _ApiError | None = None


class _StoredTime(msgspec.Struct):
    time: datetime | None = None


class _MessageGetAnswer(msgspec.Struct):
    """The part of JetStream's `STREAM.MSG.GET` answer `consumer_backlog` reads (the message's stored time)."""

    message: _StoredTime | None = None
    error: _ApiError | None = None


_consumer_info_decoder = msgspec.json.Decoder(_ConsumerInfoAnswer)
_message_get_decoder = msgspec.json.Decoder(_MessageGetAnswer)

# Errors raised by nats-py (all of them derive from nats.errors.Error, timeouts also from TimeoutError).
_NatsFailure = (nats.errors.Error, TimeoutError, OSError)


class NatsEventBus:
    """`EventBus` over NATS JetStream: create it, `await start()`, share it in the process, `close()` it."""

    def __init__(
        self,
        servers: list[str],
        *,
        connect_timeout_seconds: float,
        publish_timeout_seconds: float,
        stream_max_bytes: int,
        stream_max_age_seconds: float,
        duplicate_window_seconds: float,
        replicas: int,
        max_payload_bytes_hint: int | None = None,
    ) -> None:
        if not servers:
            raise ValueError("NatsEventBus needs at least one server URL")
        self._servers = list(servers)
        self._connect_timeout = connect_timeout_seconds
        self._publish_timeout = publish_timeout_seconds
        self._stream_max_bytes = stream_max_bytes
        self._stream_max_age = stream_max_age_seconds
        self._duplicate_window = duplicate_window_seconds
        self._replicas = replicas
        self._max_payload_hint = max_payload_bytes_hint
        self._connection: _Connection | None = None
        self._js: JetStreamContext | None = None
        self._outage_reported = False

    @property
    def max_payload_bytes(self) -> int:
        """The server's `max_payload` from its INFO once connected; before that the hint (or 1 MiB)."""
        if self._connection is not None and self._connection.nc.max_payload > 0:
            return self._connection.nc.max_payload
        return self._max_payload_hint or _DEFAULT_MAX_PAYLOAD

    async def start(self) -> None:
        """Connect (once) and create or update every stream in `STREAMS`; idempotent.

        Streams use file storage, limits retention and discard-new, with this bus's size, age, duplicate
        window and replica settings; an existing stream is updated to them. Raises `BusUnavailable` when
        the server cannot be reached within the connect timeout or refuses a stream.
        """
        if self._connection is None or self._connection.nc.is_closed:
            self._connection = await self._connect()
            self._js = JetStreamContext(self._connection.nc, timeout=self._publish_timeout)
        deadline = asyncio.get_running_loop().time() + self._connect_timeout
        for spec in STREAMS:
            await self._ensure_stream(spec, deadline)

    async def close(self) -> None:
        """Flush what was sent, then disconnect; open subscriptions end. Idempotent."""
        connection, self._connection, self._js = self._connection, None, None
        if connection is None or connection.nc.is_closed:
            return
        nc = connection.nc
        if nc.is_connected:
            try:
                await asyncio.wait_for(nc.flush(), self._publish_timeout)
            except _NatsFailure as exc:
                logger.warning("could not flush the NATS connection before closing: %s", exc)
        await connection.close()

    async def publish(
        self,
        subject: str,
        payload: bytes,
        *,
        msg_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> PublishAck:
        """Store `payload` durably in the stream of `subject`; returns after the PubAck.

        Waits at most `publish_timeout_seconds`, including the time to get a connection back. Raises
        `BusFull` when the stream refuses new messages, `PayloadTooLarge` above `max_payload_bytes` and
        `BusUnavailable` otherwise; after `BusUnavailable` the message may still have been stored, so retry
        with the same `msg_id`.
        """
        if len(payload) > self.max_payload_bytes:
            raise PayloadTooLarge(
                f"a bus message carries at most {self.max_payload_bytes} bytes, this one has {len(payload)}"
            )
        message_headers = dict(headers) if headers else {}
        if msg_id is not None:
            message_headers[MSG_ID_HEADER] = msg_id
        connection, js = self._require_js()

        def send(timeout_seconds: float) -> Awaitable[js_api.PubAck]:
            return js.publish(subject, payload, timeout=timeout_seconds, headers=message_headers or None)

        try:
            # With a msg id a resend after a lost connection is deduplicated, so it is safe to retry.
            ack = await connection.answered(
                send,
                self._publish_timeout,
                retry_on_disconnect=msg_id is not None,
                action=f"publish to {subject}",
            )
        except nats.js.errors.APIError as exc:
            raise _translate_api_error(exc, f"publish to {subject}") from exc
        except nats.js.errors.NoStreamResponseError as exc:
            raise BusUnavailable(f"no JetStream stream answered for subject {subject}") from exc
        except nats.errors.MaxPayloadError as exc:
            raise PayloadTooLarge(f"the bus refused a message of {len(payload)} bytes") from exc
        except _NatsFailure as exc:
            raise BusUnavailable(f"no PubAck for {subject} within {self._publish_timeout}s: {exc!r}") from exc
        return PublishAck(stream=ack.stream, sequence=ack.seq, duplicate=bool(ack.duplicate))

    async def consumer(self, stream: str, durable: str, *, filter_subject: str, ack_wait_seconds: float) -> BusConsumer:
        """Create, update or bind the durable pull consumer `durable` on `stream` (idempotent).

        Explicit acks, deliver-all, no delivery limit, no cap on unacked messages. Instances with the same
        durable name (in this process or others) split the messages between them.
        """
        connection, js = self._require_js()
        config = js_api.ConsumerConfig(
            name=durable,
            durable_name=durable,
            deliver_policy=js_api.DeliverPolicy.ALL,
            ack_policy=js_api.AckPolicy.EXPLICIT,
            ack_wait=ack_wait_seconds,
            max_deliver=-1,
            max_ack_pending=-1,
            filter_subject=filter_subject,
        )
        await connection.wait_connected(self._connect_timeout)
        try:
            await js.add_consumer(stream, config=config, timeout=self._connect_timeout)  # pyright: ignore[reportUnknownMemberType]
            subscription = await js.pull_subscribe_bind(durable=durable, stream=stream)
        except nats.js.errors.APIError as exc:
            if exc.err_code == _ERR_CONSUMER_NOT_UNIQUE_ON_WORK_QUEUE:
                raise ValueError(
                    f"stream {stream} is a work queue: consumer {durable!r} would overlap another consumer's subjects"
                ) from exc
            raise _translate_api_error(exc, f"create consumer {durable} on {stream}") from exc
        except _NatsFailure as exc:
            raise BusUnavailable(f"could not create consumer {durable} on {stream}: {exc!r}") from exc
        return _NatsConsumer(connection, subscription, f"{stream}/{durable}")

    async def subscribe(self, subject: str) -> AsyncIterator[BusMessage]:
        """Yield messages published on `subject` from the first iteration on (live, not durable).

        Delivery is at-most-once: nothing is replayed, messages missed while disconnected or while the
        reader is too slow are lost. Ends when the bus closes; close the iterator to unsubscribe.
        """
        nc = self._require_connection().nc
        try:
            subscription = await nc.subscribe(subject)  # pyright: ignore[reportUnknownMemberType]
        except _NatsFailure as exc:
            raise BusUnavailable(f"could not subscribe to {subject}: {exc!r}") from exc
        try:
            async for msg in subscription.messages:
                yield LiveMessage(msg.subject, msg.data, dict(msg.headers or {}))
        finally:
            if not nc.is_closed:
                try:
                    await subscription.unsubscribe()
                except _NatsFailure as exc:
                    logger.debug("unsubscribe from %s failed: %s", subject, exc)

    async def ping(self) -> None:
        """Return after a JetStream API round trip; raise `BusUnavailable` when disconnected or too slow."""
        nc = self._require_connection().nc
        if not nc.is_connected:
            raise BusUnavailable("not connected to NATS (reconnecting)")
        try:
            await JetStreamManager(nc, timeout=self._connect_timeout).account_info()
        except _NatsFailure as exc:
            raise BusUnavailable(f"NATS JetStream did not answer a ping: {exc!r}") from exc

    async def backlog(self, stream: str) -> StreamBacklog:
        """The stream's message count, bytes and first message's time from one `STREAM.INFO` request.

        Waits at most the connect timeout, including the time to get a connection back; raises
        `BusUnavailable` otherwise, or when the stream does not exist.
        """
        answer = await self._api_request(
            f"$JS.API.STREAM.INFO.{stream}", b"", _stream_info_decoder, f"read the backlog of {stream}"
        )
        if answer.error is not None or answer.state is None:
            error = answer.error or _ApiError(description="no state in the answer")
            raise BusUnavailable(
                f"JetStream refused to read stream {stream}: code={error.code} err_code={error.err_code} "
                f"{error.description}"
            )
        state = answer.state
        return StreamBacklog(
            messages=state.messages,
            bytes=state.bytes,
            oldest_stored_at=state.first_ts if state.messages > 0 else None,
            last_sequence=state.last_seq,
        )

    async def consumer_backlog(self, stream: str, durable: str) -> ConsumerBacklog | None:
        """Where `durable` stands on `stream`: one `CONSUMER.INFO` request, and while messages wait for it one
        `STREAM.MSG.GET` of the first of them (for its stored time).

        Waits at most the connect timeout per request, including the time to get a connection back; raises
        `BusUnavailable` otherwise, or when the stream does not exist. None when the consumer does not exist.
        """
        action = f"read where consumer {durable} of {stream} stands"
        info = await self._api_request(f"$JS.API.CONSUMER.INFO.{stream}.{durable}", b"", _consumer_info_decoder, action)
        if info.error is not None:
            if info.error.err_code == _ERR_CONSUMER_NOT_FOUND:
                return None
            raise BusUnavailable(
                f"JetStream refused to {action}: code={info.error.code} err_code={info.error.err_code} "
                f"{info.error.description}"
            )
        delivered = info.delivered.stream_seq if info.delivered is not None else 0
        oldest: datetime | None = None
        if info.num_pending > 0:
            subject = (info.config.filter_subject if info.config is not None else None) or ">"
            request = json.dumps({"seq": delivered + 1, "next_by_subj": subject}).encode()
            first = await self._api_request(f"$JS.API.STREAM.MSG.GET.{stream}", request, _message_get_decoder, action)
            if first.error is not None and first.error.err_code != _ERR_NO_MESSAGE_FOUND:
                raise BusUnavailable(
                    f"JetStream refused to {action}: code={first.error.code} err_code={first.error.err_code} "
                    f"{first.error.description}"
                )
            if first.message is not None:
                oldest = first.message.time
        return ConsumerBacklog(
            undelivered=info.num_pending,
            oldest_undelivered_at=oldest,
            delivered_sequence=delivered,
            unacknowledged=info.num_ack_pending,
        )

    async def _api_request(
        self, subject: str, payload: bytes, decoder: msgspec.json.Decoder[_Answer], action: str
    ) -> _Answer:
        """One JetStream API request, its answer decoded; `BusUnavailable` when it is not answered in time or
        the answer cannot be read."""
        connection = self._require_connection()
        nc = connection.nc

        def send(timeout_seconds: float) -> Awaitable[Msg]:
            return nc.request(subject, payload, timeout=timeout_seconds)

        try:
            msg = await connection.answered(send, self._connect_timeout, retry_on_disconnect=True, action=action)
            return decoder.decode(msg.data)
        except _NatsFailure as exc:
            raise BusUnavailable(f"could not {action}: {exc!r}") from exc
        except msgspec.DecodeError as exc:
            raise BusUnavailable(f"unreadable answer to {subject} (trying to {action}): {exc}") from exc

    async def _connect(self) -> _Connection:
        nc = NATS()
        connection = _Connection(nc, self._publish_timeout)

        async def on_disconnected() -> None:
            connection.mark_disconnected()
            if not nc.is_closed:
                logger.warning("disconnected from NATS; reconnecting in the background")

        try:
            await asyncio.wait_for(
                nc.connect(
                    servers=self._servers,
                    name="mintlog",
                    connect_timeout=max(1, math.ceil(self._connect_timeout)),
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=_RECONNECT_WAIT_SECONDS,
                    error_cb=self._on_error,
                    disconnected_cb=on_disconnected,
                    reconnected_cb=self._on_reconnected,
                ),
                self._connect_timeout,
            )
        except BaseException as exc:
            await connection.close()  # stops the connect loop's background tasks
            if isinstance(exc, _NatsFailure):
                servers = ", ".join(_without_credentials(url) for url in self._servers)
                raise BusUnavailable(f"cannot connect to NATS at {servers}: {exc!r}") from exc
            raise
        logger.info("connected to NATS at %s", _connected_server(nc))
        return connection

    async def _ensure_stream(self, spec: StreamSpec, deadline: float) -> None:
        _, js = self._require_js()
        config = js_api.StreamConfig(
            name=spec.name,
            subjects=list(spec.subjects),
            retention=js_api.RetentionPolicy.WORK_QUEUE if spec.work_queue else js_api.RetentionPolicy.LIMITS,
            discard=js_api.DiscardPolicy.NEW,
            storage=js_api.StorageType.FILE,
            max_bytes=spec.max_bytes(self._stream_max_bytes),
            max_age=self._stream_max_age,
            duplicate_window=self._duplicate_window,
            num_replicas=self._replicas,
        )
        loop = asyncio.get_running_loop()
        while True:
            try:
                # Look first: re-adding an existing stream makes the server reserve its storage twice.
                existing = await _stream_config(js, spec.name)
                if existing is None:
                    try:
                        await js.add_stream(config)  # pyright: ignore[reportUnknownMemberType]
                        return
                    except nats.js.errors.BadRequestError as exc:
                        if exc.err_code != _ERR_STREAM_NAME_IN_USE:
                            raise
                elif _same_limits(existing, config):
                    return
                await js.update_stream(config)  # pyright: ignore[reportUnknownMemberType]
                logger.info("updated stream %s to the configured limits", spec.name)
                return
            except _NatsFailure as exc:
                # 503s, no responders and timeouts happen while JetStream (or a cluster leader) starts up.
                transient = isinstance(exc, nats.js.errors.ServiceUnavailableError) or not isinstance(
                    exc, nats.js.errors.APIError
                )
                if not transient or loop.time() >= deadline:
                    raise BusUnavailable(f"could not create or update stream {spec.name}: {exc}") from exc
                await asyncio.sleep(0.2)

    def _require_connection(self) -> _Connection:
        if self._connection is None or self._connection.nc.is_closed:
            raise BusUnavailable("the NATS event bus is not started or already closed")
        return self._connection

    def _require_js(self) -> tuple[_Connection, JetStreamContext]:
        connection = self._require_connection()
        assert self._js is not None
        return connection, self._js

    async def _on_error(self, exc: Exception) -> None:
        # While reconnecting, every failed attempt reports an error: log the first one of each outage loudly.
        reconnecting = self._connection is not None and not self._connection.nc.is_connected
        if reconnecting and self._outage_reported:
            logger.debug("NATS client error: %r", exc)
            return
        self._outage_reported = reconnecting
        logger.warning("NATS client error: %r", exc)

    async def _on_reconnected(self) -> None:
        self._outage_reported = False
        logger.info("reconnected to NATS at %s", _connected_server(self._connection.nc if self._connection else None))


def _without_credentials(url: str) -> str:
    """`url` without user and password, fit for logs and error messages."""
    parsed = urlsplit(url if "://" in url else f"nats://{url}")
    host = parsed.hostname or "?"
    return f"{parsed.scheme}://{host}:{parsed.port}" if parsed.port else f"{parsed.scheme}://{host}"


def _connected_server(nc: NATS | None) -> str:
    url = nc.connected_url if nc is not None else None
    return _without_credentials(url.geturl()) if url is not None else "?"


def _translate_api_error(exc: nats.js.errors.APIError, action: str) -> DependencyUnavailable | PayloadTooLarge:
    description = exc.description or ""
    lowered = description.lower()
    if exc.err_code in _FULL_ERROR_CODES or ("maximum" in lowered and "exceeded" in lowered):
        return BusFull(f"the stream refused the message ({action}): {description}")
    if exc.err_code == _ERR_MESSAGE_TOO_LARGE:
        return PayloadTooLarge(f"the stream refused the message ({action}): {description}")
    return BusUnavailable(f"JetStream refused to {action}: code={exc.code} err_code={exc.err_code} {description}")


class _Connection:
    """One nats-py client and what its requests need to ride out a reconnect."""

    def __init__(self, nc: NATS, settle_timeout_seconds: float) -> None:
        self.nc = nc
        self.settle_timeout_seconds = settle_timeout_seconds
        # Set (and replaced) at every disconnect, so requests in flight stop waiting for an answer.
        self._connection_lost = asyncio.Event()

    def mark_disconnected(self) -> None:
        self._connection_lost.set()
        self._connection_lost = asyncio.Event()

    async def wait_connected(self, timeout_seconds: float) -> float:
        """Wait for a live connection; return the time left of `timeout_seconds`, or raise BusUnavailable."""
        nc = self.nc
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_seconds
        while not nc.is_connected:
            if nc.is_closed:
                raise BusUnavailable("the NATS connection is closed")
            if loop.time() >= deadline:
                raise BusUnavailable(f"NATS unreachable for {timeout_seconds}s (reconnecting)")
            await asyncio.sleep(_CONNECTED_POLL_SECONDS)
        return max(deadline - loop.time(), 0.001)

    async def answered(
        self,
        send: Callable[[float], Awaitable[_Answer]],
        timeout_seconds: float,
        *,
        retry_on_disconnect: bool,
        action: str,
    ) -> _Answer:
        """Await `send(time_left)` on a live connection, within `timeout_seconds` in all.

        A request caught by a disconnect would otherwise wait for its whole timeout: it is abandoned at
        once and, when `retry_on_disconnect`, sent again after the reconnect. nats errors propagate.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_seconds
        while True:
            remaining = await self.wait_connected(deadline - loop.time())
            connection_lost = self._connection_lost
            attempt = asyncio.ensure_future(send(remaining))
            lost = asyncio.ensure_future(connection_lost.wait())
            try:
                done, _ = await asyncio.wait({attempt, lost}, return_when=asyncio.FIRST_COMPLETED)
            except BaseException:
                attempt.cancel()
                raise
            finally:
                lost.cancel()
            if attempt in done:
                return attempt.result()
            attempt.cancel()
            with contextlib.suppress(asyncio.CancelledError, *_NatsFailure):
                await attempt
            if not retry_on_disconnect:
                raise BusUnavailable(f"lost the NATS connection before the bus answered ({action})")
            logger.info("lost the NATS connection during %s; sending again after the reconnect", action)

    async def settle(self, msg: Msg, payload: bytes) -> None:
        """Send an ack/nak/term for `msg` on a live connection, without waiting for a confirmation.

        Waiting would cost a round trip per message, and after a server restart the server may not answer
        an ack at all (its consumer forgot the delivery), which would stall a consumer for a full timeout
        per message. A lost ack only means a redelivery, which at-least-once consumers absorb.
        """
        action = payload.split(b" ", 1)[0].decode()
        await self.wait_connected(self.settle_timeout_seconds)
        try:
            await self.nc.publish(msg.reply, payload)
        except _NatsFailure as exc:
            raise BusUnavailable(f"could not send {action} to the bus: {exc!r}") from exc

    async def close(self) -> None:
        """Close the client, dropping what it buffered during an outage (nothing can deliver it now)."""
        nc = self.nc
        if not nc.is_connected:
            # nats-py would write that buffer into the dead socket and fail half-way through close(),
            # leaving subscriptions open; what it holds (acks) only causes redeliveries when dropped.
            nc._pending.clear()  # pyright: ignore[reportPrivateUsage]
            nc._pending_data_size = 0  # pyright: ignore[reportPrivateUsage]
        await nc.close()


class _NatsConsumer:
    """A bound pull subscription of one durable consumer."""

    def __init__(self, connection: _Connection, subscription: JetStreamContext.PullSubscription, name: str) -> None:
        self._connection = connection
        self._subscription = subscription
        self._name = name
        self._closed = False

    async def fetch(self, max_messages: int, timeout_seconds: float) -> list[BusMessage]:
        """Up to `max_messages` messages, as soon as at least one is available, within `timeout_seconds`."""
        if self._closed:
            raise BusUnavailable(f"consumer {self._name} is closed")
        remaining = await self._connection.wait_connected(timeout_seconds)
        try:
            msgs = await self._subscription.fetch(batch=max_messages, timeout=remaining)
        except TimeoutError:  # nats-py raises both its own and asyncio's when no message came in time
            if not self._connection.nc.is_connected:
                raise BusUnavailable(f"lost the NATS connection while fetching from {self._name}") from None
            return []
        except nats.js.errors.APIError as exc:
            raise _translate_api_error(exc, f"fetch from {self._name}") from exc
        except _NatsFailure as exc:
            raise BusUnavailable(f"fetch from {self._name} failed: {exc!r}") from exc
        return [_NatsMessage(self._connection, msg) for msg in msgs]

    async def close(self) -> None:
        """Unsubscribe; the durable consumer stays on the server and keeps its unacked messages."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._subscription.unsubscribe()
        except _NatsFailure as exc:
            logger.debug("unsubscribe of consumer %s failed: %s", self._name, exc)


class _NatsMessage:
    """One delivery of a JetStream message; settling it twice is a no-op."""

    __slots__ = ("_connection", "_headers", "_msg", "_num_delivered", "_settled")

    def __init__(self, connection: _Connection, msg: Msg) -> None:
        self._connection = connection
        self._msg = msg
        self._headers = dict(msg.headers or {})
        try:
            self._num_delivered = msg.metadata.num_delivered
        except nats.errors.Error:  # not a JetStream delivery; cannot happen with a pull consumer
            self._num_delivered = 1
        self._settled = False

    @property
    def subject(self) -> str:
        return self._msg.subject

    @property
    def data(self) -> bytes:
        return self._msg.data

    @property
    def headers(self) -> dict[str, str]:
        return self._headers

    @property
    def num_delivered(self) -> int:
        return self._num_delivered

    async def ack(self) -> None:
        await self._settle(b"+ACK")

    async def nak(self, delay_seconds: float = 0.0) -> None:
        payload = b"-NAK"
        if delay_seconds > 0:
            payload += b" " + json.dumps({"delay": int(delay_seconds * 1_000_000_000)}).encode()
        await self._settle(payload)

    async def term(self) -> None:
        await self._settle(b"+TERM")

    async def _settle(self, payload: bytes) -> None:
        if self._settled:
            return
        await self._connection.settle(self._msg, payload)
        self._settled = True


async def _stream_config(js: JetStreamContext, name: str) -> js_api.StreamConfig | None:
    """The stream's current config, or None when it does not exist."""
    try:
        info = await js.stream_info(name)  # pyright: ignore[reportUnknownMemberType]
    except nats.js.errors.NotFoundError:
        return None
    return info.config


def _same_limits(current: js_api.StreamConfig, wanted: js_api.StreamConfig) -> bool:
    """True when every setting Mintlog manages already has the wanted value."""
    fields = (
        "subjects",
        "retention",
        "discard",
        "storage",
        "max_bytes",
        "max_age",
        "duplicate_window",
        "num_replicas",
    )
    return all(getattr(current, name) == getattr(wanted, name) for name in fields)
