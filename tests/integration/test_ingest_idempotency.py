"""`Idempotency-Key` in the production shape: external NATS JetStream, PostgreSQL and Redis as the cache, a
"restart" being a new runtime built by `bootstrap` on the same services.

The records live in PostgreSQL, so a Redis restarted without persistence (`--save ''`) loses nothing of them.
The shared test NATS holds the fixed streams of every test, so a test on it uses a tenant of its own and
counts and purges only that tenant's subject; the lost-PubAck test freezes a private nats-server instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import nats
import nats.js.errors
import pytest

from mintlog.domain.events import RawBatch, event_id
from mintlog.domain.streams import decode_raw_batch
from mintlog.errors import BusUnavailable, UnprocessableEntity
from mintlog.launch.bootstrap import bootstrap
from mintlog.roles.ingest.role import IngestRole
from mintlog.roles.ingest.service import IngestService
from mintlog.runtime import Runtime
from mintlog.settings import load_settings
from tests.distributed.cluster import NatsServer, RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

OpenService = Callable[[str, str], Awaitable[IngestService]]
BATCH = json.dumps({"events": [{"message": "paid"}, {"message": "shipped"}]}).encode()


@pytest.fixture
async def open_service(tmp_path: Path, postgres_database_url: str) -> AsyncIterator[OpenService]:
    """Restarts Mintlog's ingest on the given NATS and Redis: closes the runtime opened before, if any, opens a
    new one and returns its ingest service."""
    running: list[tuple[Runtime, IngestService]] = []

    async def close_running() -> None:
        while running:
            runtime, service = running.pop()
            await service.close()
            await runtime.close()

    async def restart(nats_url: str, redis_url: str) -> IngestService:
        await close_running()
        settings = load_settings(
            {
                "MINTLOG_DATA_DIR": str(tmp_path / "data"),
                "MINTLOG_NATS__URL": nats_url,
                "MINTLOG_NATS__PUBLISH_TIMEOUT_SECONDS": "1",
                "MINTLOG_NATS__STREAM_MAX_BYTES": str(64 * 1024 * 1024),
                "MINTLOG_NATS__STREAM_MAX_AGE_SECONDS": "3600",
                "MINTLOG_DATABASE__URL": postgres_database_url,
                "MINTLOG_CACHE__URL": redis_url,
            },
            env_file=None,
        )
        runtime = bootstrap(settings)
        await runtime.open()
        service = IngestRole(runtime).service
        running.append((runtime, service))
        return service

    yield restart
    await close_running()


async def raw_batches(nats_url: str, tenant: str, *, purge: bool = False) -> list[RawBatch]:
    """The messages JetStream holds on `logs.raw.{tenant}` (read without consuming them)."""
    connection = await nats.connect(nats_url, connect_timeout=5)
    try:
        js = connection.jetstream()
        subject = f"logs.raw.{tenant}"
        info = await js.stream_info("LOGS_RAW", subjects_filter=subject)  # pyright: ignore[reportUnknownMemberType]
        batches: list[RawBatch] = []
        if info.state.subjects:
            first = await js.get_msg("LOGS_RAW", subject=subject, seq=1)  # pyright: ignore[reportUnknownMemberType]
            seq = first.seq or 0
            while True:
                assert first.data is not None
                batches.append(decode_raw_batch(first.data))
                try:
                    first = await js.get_msg("LOGS_RAW", subject=subject, seq=seq + 1, next=True)  # pyright: ignore[reportUnknownMemberType]
                except nats.js.errors.NotFoundError:
                    break
                seq = first.seq or 0
        if purge:
            await js.purge_stream("LOGS_RAW", subject=subject)  # pyright: ignore[reportUnknownMemberType]
        return batches
    finally:
        await connection.close()


async def test_a_retry_after_a_restart_of_mintlog_and_redis_is_replayed_and_a_reused_key_refused(
    open_service: OpenService, nats_url: str, tmp_path: Path
) -> None:
    tenant = f"idem{secrets.token_hex(4)}"
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    try:
        first, replayed = await (await open_service(nats_url, redis.url)).ingest(
            tenant, BATCH, idempotency_key="order-42"
        )
        assert not replayed
        redis.kill9()
        redis.start()
        restarted = await open_service(nats_url, redis.url)
        with pytest.raises(UnprocessableEntity) as refused:
            await restarted.ingest(tenant, b'{"events": [{"message": "other"}]}', idempotency_key="order-42")
        assert refused.value.code == "idempotency_key_reused"
        assert await restarted.ingest(tenant, BATCH, idempotency_key="order-42") == (first, True)
    finally:
        redis.stop()
        stored = await raw_batches(nats_url, tenant, purge=True)
    assert [batch.batch_id for batch in stored] == [json.loads(first)["batch_id"]]


async def test_a_lost_puback_then_a_bus_restart_then_a_retry_republishes_the_same_events(
    open_service: OpenService, tmp_path: Path, redis_url: str
) -> None:
    server = NatsServer(tmp_path / "nats")
    server.start()
    try:
        service = await open_service(server.url, redis_url)
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            with pytest.raises(BusUnavailable):
                await service.ingest("acme", BATCH, idempotency_key="invoice-7")
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        await asyncio.sleep(0.5)
        (stored,) = await raw_batches(server.url, "acme", purge=True)  # stored anyway; purged as if consumed

        server.kill9()  # the restarted server no longer knows the msg id of the purged message
        server.start()
        answer, replayed = await (await open_service(server.url, redis_url)).ingest(
            "acme", BATCH, idempotency_key="invoice-7"
        )
        assert not replayed
        (republished,) = await raw_batches(server.url, "acme")
        assert json.loads(answer)["batch_id"] == stored.batch_id
        assert (republished.batch_id, republished.received_at, republished.events) == (
            stored.batch_id,
            stored.received_at,
            stored.events,
        )
        assert event_id(republished.batch_id, republished.first_index) == event_id(stored.batch_id, 0)
        assert await (await open_service(server.url, redis_url)).ingest("acme", BATCH, idempotency_key="invoice-7") == (
            answer,
            True,
        )
        assert len(await raw_batches(server.url, "acme")) == 1
    finally:
        server.stop()
