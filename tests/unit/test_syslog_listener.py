"""The syslog listener with a fake ingest entry and key lookup, over loopback sockets: batching per tenant,
drops counted by reason, TCP reading paused while the bus refuses (nothing lost), UDP drops counted, and a
graceful stop that publishes what it holds."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mintlog.domain.keys import generate_api_key
from mintlog.domain.tenants import IngestTimePolicy, Principal
from mintlog.errors import BusUnavailable, ConfigError, DependencyUnavailable, TooManyRequests, Unauthorized
from mintlog.metrics import Metrics
from mintlog.roles.ingest.service import Accepted, IdempotentRequest
from mintlog.roles.ingest.syslog.listener import SyslogListener
from mintlog.settings import SyslogSettings
from tests.e2e.harness import free_port

KEY_A = generate_api_key().secret
KEY_B = generate_api_key().secret
READ_ONLY_KEY = generate_api_key().secret
UNKNOWN_KEY = generate_api_key().secret


class FakeIntake:
    """`IngestService.accept`: records batches; refuses with `refusal` while it is set."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, list[dict[str, Any]]]] = []
        self.refusal: Exception | None = None
        self.refused = 0

    async def accept(
        self,
        tenant_id: str,
        events: list[Any],
        *,
        source: str,
        idempotency: IdempotentRequest | None,
        time_policy: IngestTimePolicy | None = None,
    ) -> Accepted:
        assert source == "syslog"
        assert idempotency is None
        if self.refusal is not None:
            self.refused += 1
            raise self.refusal
        self.batches.append((tenant_id, list(events)))
        return Accepted(b"{}", False)

    def messages(self, tenant_id: str | None = None) -> list[str]:
        return [event["message"] for tenant, events in self.batches for event in events if tenant_id in (None, tenant)]


class FakeKeys:
    async def authenticate(self, secret: str | None) -> Principal:
        principals = {
            KEY_A: Principal(tenant_id="acme", key_id="a", key_prefix="mlk_a", scopes=frozenset({"ingest:logs"})),
            KEY_B: Principal(tenant_id="beta", key_id="b", key_prefix="mlk_b", scopes=frozenset({"ingest:logs"})),
            READ_ONLY_KEY: Principal(
                tenant_id="acme", key_id="r", key_prefix="mlk_r", scopes=frozenset({"search:logs"})
            ),
        }
        if secret not in principals:
            raise Unauthorized("missing or invalid API key")
        return principals[secret]


class Harness:
    def __init__(self, listener: SyslogListener, intake: FakeIntake, metrics: Metrics, settings: SyslogSettings):
        self.listener = listener
        self.intake = intake
        self.metrics = metrics
        self.settings = settings
        self.writers: list[asyncio.StreamWriter] = []

    def dropped(self, transport: str, reason: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "mintlog_syslog_dropped_total", {"transport": transport, "reason": reason}
        )
        return value or 0.0

    def received(self, transport: str) -> float:
        value = self.metrics.registry.get_sample_value("mintlog_syslog_messages_total", {"transport": transport})
        return value or 0.0

    async def tcp(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.settings.tcp_port)
        self.writers.append(writer)
        return reader, writer

    async def close(self) -> None:
        await self.listener.stop()
        for writer in self.writers:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def udp(self, *messages: bytes) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for message in messages:
                sender.sendto(message, ("127.0.0.1", self.settings.udp_port))


async def eventually(predicate: Any, timeout_seconds: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_seconds
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def line(key: str, text: str, pri: int = 14) -> bytes:
    return f"<{pri}>Dec  5 10:00:00 host app: {key} {text}\n".encode()


@pytest.fixture
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    overrides: dict[str, Any] = getattr(request, "param", {})
    settings = SyslogSettings(
        tcp_port=free_port(),
        udp_port=free_port(),
        batch_events=overrides.get("batch_events", 10),
        flush_interval_ms=overrides.get("flush_interval_ms", 10),
        max_pending_events=overrides.get("max_pending_events", 100),
        max_frame_bytes=1024,
    )
    intake, metrics = FakeIntake(), Metrics()
    listener = SyslogListener(
        settings,
        service=intake,
        authenticator=FakeKeys(),
        metrics=metrics,
        max_events_per_batch=10_000,
        shutdown_grace_seconds=overrides.get("grace", 2.0),
    )
    await listener.start()
    opened = Harness(listener, intake, metrics, settings)
    try:
        yield opened
    finally:
        await opened.close()


async def test_messages_are_batched_per_tenant_in_order(harness: Harness) -> None:
    _, writer = await harness.tcp()
    writer.write(b"".join(line(KEY_A if n % 3 else KEY_B, f"m{n}") for n in range(25)))
    await writer.drain()
    await eventually(lambda: len(harness.intake.messages()) == 25)
    assert harness.intake.messages("acme") == [f"m{n}" for n in range(25) if n % 3]
    assert harness.intake.messages("beta") == [f"m{n}" for n in range(25) if not n % 3]
    assert all(len(events) <= 10 for _, events in harness.intake.batches)


async def test_unusable_messages_are_counted_by_reason(harness: Harness) -> None:
    _, writer = await harness.tcp()
    writer.write(
        b"<14>app: no key at all\n"
        + line(UNKNOWN_KEY, "unknown key")
        + line(READ_ONLY_KEY, "key without ingest:logs")
        + b"<14>app: caf\xe9\n"
        + b"<14>1 - h app - - [broken\n"
        + line(KEY_A, "x" * 2000)
        + line(KEY_A, "good")
    )
    await writer.drain()
    await eventually(lambda: harness.intake.messages() == ["good"])
    assert harness.dropped("tcp", "unauthenticated") == 1
    assert harness.dropped("tcp", "invalid_key") == 2
    assert harness.dropped("tcp", "invalid_utf8") == 1
    assert harness.dropped("tcp", "malformed") == 1
    assert harness.dropped("tcp", "oversized") == 1
    assert harness.received("tcp") == 7


async def test_lost_framing_closes_the_connection(harness: Harness) -> None:
    reader, writer = await harness.tcp()
    writer.write(b"1234567890123 <14>no such length\n")
    assert await asyncio.wait_for(reader.read(), 5) == b""
    assert harness.dropped("tcp", "framing_lost") == 1


@pytest.mark.parametrize("harness", [{"max_pending_events": 50, "batch_events": 10}], indirect=True)
@pytest.mark.parametrize(
    "refusal",
    [BusUnavailable("bus down"), TooManyRequests("quota", code="ingest_quota_exceeded")],
    ids=["bus", "quota"],
)
async def test_tcp_stops_reading_while_the_bus_refuses_and_loses_nothing(harness: Harness, refusal: Exception) -> None:
    harness.intake.refusal = refusal
    total = 30_000
    _, writer = await harness.tcp()
    writer.write(b"".join(line(KEY_A, f"m{n}") for n in range(total)))
    await eventually(lambda: harness.intake.refused >= 2)
    with pytest.raises(DependencyUnavailable):
        await harness.listener.ping()  # /readyz says so while batches are refused

    # Reading stopped: what was read stays put while the sender's data waits in the socket buffers.
    held = harness.received("tcp")
    await asyncio.sleep(0.3)
    assert harness.received("tcp") == held < total
    assert harness.intake.messages() == []

    harness.intake.refusal = None
    await writer.drain()
    await eventually(lambda: len(harness.intake.messages()) == total, timeout_seconds=20)
    assert harness.intake.messages() == [f"m{n}" for n in range(total)]
    assert harness.dropped("tcp", "unavailable") == harness.dropped("tcp", "quota") == 0
    await harness.listener.ping()


async def test_udp_drops_are_counted_while_the_bus_refuses(harness: Harness) -> None:
    harness.intake.refusal = BusUnavailable("bus down")
    harness.udp(*(line(KEY_A, f"u{n}") for n in range(5)))
    await eventually(lambda: harness.dropped("udp", "unavailable") == 5)
    harness.intake.refusal = None
    harness.udp(line(KEY_A, "after"), b"<14>app: " + b"z" * 2000)
    await eventually(lambda: harness.intake.messages() == ["after"])
    assert harness.dropped("udp", "oversized") == 1


@pytest.mark.parametrize("harness", [{"flush_interval_ms": 60_000, "batch_events": 1000}], indirect=True)
async def test_stop_publishes_what_it_holds(harness: Harness) -> None:
    _, writer = await harness.tcp()
    writer.write(b"".join(line(KEY_A, f"held{n}") for n in range(3)))
    await writer.drain()
    await eventually(lambda: harness.received("tcp") == 3)
    await asyncio.sleep(0.05)
    assert harness.intake.messages() == []  # waiting for the batch to fill
    await harness.listener.stop()
    assert harness.intake.messages() == ["held0", "held1", "held2"]


@pytest.mark.parametrize("harness", [{"grace": 0.3}], indirect=True)
async def test_stop_counts_what_the_bus_still_refuses_at_the_end_of_the_grace(harness: Harness) -> None:
    harness.intake.refusal = BusUnavailable("bus down")
    _, writer = await harness.tcp()
    writer.write(line(KEY_A, "never stored"))
    await writer.drain()
    await eventually(lambda: harness.intake.refused >= 1)
    await harness.listener.stop()
    assert harness.dropped("tcp", "shutdown") == 1


async def test_a_tls_port_without_a_certificate_stops_the_start() -> None:
    listener = SyslogListener(
        SyslogSettings(tls_port=free_port()),
        service=FakeIntake(),
        authenticator=FakeKeys(),
        metrics=Metrics(),
        max_events_per_batch=10_000,
        shutdown_grace_seconds=1.0,
    )
    with pytest.raises(ConfigError, match="MINTLOG_SYSLOG__TLS_CERT_FILE"):
        await listener.start()
    await listener.stop()


async def test_no_port_no_listener() -> None:
    listener = SyslogListener(
        SyslogSettings(),
        service=FakeIntake(),
        authenticator=FakeKeys(),
        metrics=Metrics(),
        max_events_per_batch=10_000,
        shutdown_grace_seconds=1.0,
    )
    assert not listener.enabled
    assert listener.readiness_checks() == {}
    await listener.start()
    await listener.stop()


class GatedIntake(FakeIntake):
    """`FakeIntake` whose `accept` waits until `release` lets one more batch through."""

    def __init__(self) -> None:
        super().__init__()
        self._gate = asyncio.Semaphore(0)

    def release(self, batches: int = 1) -> None:
        for _ in range(batches):
            self._gate.release()

    async def accept(
        self,
        tenant_id: str,
        events: list[Any],
        *,
        source: str,
        idempotency: IdempotentRequest | None,
        time_policy: IngestTimePolicy | None = None,
    ) -> Accepted:
        await self._gate.acquire()
        return await super().accept(tenant_id, events, source=source, idempotency=idempotency, time_policy=time_policy)


async def test_tcp_reading_resumes_once_half_the_pending_room_is_free_while_batches_are_still_published() -> None:
    settings = SyslogSettings(tcp_port=free_port(), batch_events=10, flush_interval_ms=10, max_pending_events=50)
    intake, metrics = GatedIntake(), Metrics()
    listener = SyslogListener(
        settings,
        service=intake,
        authenticator=FakeKeys(),
        metrics=metrics,
        max_events_per_batch=10_000,
        shutdown_grace_seconds=2.0,
    )
    await listener.start()
    harness = Harness(listener, intake, metrics, settings)
    try:
        _, writer = await harness.tcp()
        writer.write(b"".join(line(KEY_A, f"a{n}") for n in range(60)))
        await writer.drain()
        await eventually(lambda: harness.received("tcp") >= settings.max_pending_events)
        writer.write(b"".join(line(KEY_A, f"b{n}") for n in range(60)))
        await asyncio.sleep(0.2)
        held = int(harness.received("tcp"))
        assert held < 120  # reading stopped: max_pending_events messages wait

        # Let batches of 10 through until fewer than half of max_pending_events wait in the queue: reading
        # resumes then, before everything held is published (the next batch is blocked in `accept`).
        intake.release((held - settings.max_pending_events // 2) // 10 + 1)
        await eventually(lambda: harness.received("tcp") > held)
        assert len(intake.messages()) < held

        intake.release(100)
        await eventually(lambda: len(intake.messages()) == 120)
        assert intake.messages() == [f"a{n}" for n in range(60)] + [f"b{n}" for n in range(60)]
    finally:
        intake.release(100)
        await harness.close()
