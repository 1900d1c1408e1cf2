"""The archive writer on fakes: buffering and flushing, object naming, the NDJSON gzip format, the manifest
digest, acks only after the object is written, and the verification of objects."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from isal import igzip

from mintlog.adapters.bus.memory import MemoryEventBus
from mintlog.domain.archive_keys import IGZIP_MAX_LEVEL
from mintlog.domain.events import RawBatch
from mintlog.domain.normalize import normalize_batch
from mintlog.domain.streams import encode_bus_message
from mintlog.errors import StoreUnavailable
from mintlog.metrics import Metrics
from mintlog.ports.archive import ArchiveObject
from mintlog.ports.blobstore import BlobInfo, BlobNotFound
from mintlog.roles.api.logs.archive import verify_object
from mintlog.roles.pipeline.archive import (
    ArchiveWriter,
    archive_hour,
    count_lines,
    object_key,
    pack_lines,
)
from mintlog.roles.pipeline.normalizer import NormalizerWorker
from mintlog.settings import ArchiveSettings, IngestSettings, PipelineSettings
from tests.fakes import FakeClock as Clock

NOW = datetime(2026, 11, 27, 13, 45, 12, tzinfo=UTC)
PIPELINE = PipelineSettings(ack_wait_seconds=30, max_deliveries=3)


class MemoryBlobs:
    """A blob store in a dict; `fail` makes every put raise `StoreUnavailable`."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.fail = False
        self.puts = 0

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None: ...

    async def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        if self.fail:
            raise StoreUnavailable("blob store down")
        self.puts += 1
        self.objects[key] = data

    async def get(self, key: str) -> bytes:
        try:
            return self.objects[key]
        except KeyError:
            raise BlobNotFound(key) from None

    async def list(self, prefix: str, *, after: str | None = None, limit: int = 1000) -> Sequence[BlobInfo]:
        keys = sorted(key for key in self.objects if key.startswith(prefix) and key > (after or ""))
        return [BlobInfo(key, len(self.objects[key])) for key in keys[:limit]]

    async def delete(self, key: str) -> None:
        self.objects.pop(key, None)


class MemoryManifest:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], ArchiveObject] = {}

    async def record(self, entry: ArchiveObject) -> None:
        self.rows[(entry.tenant_id, entry.key)] = entry

    async def list_objects(
        self, tenant_id: str, *, start: datetime, end: datetime, after: str | None = None, limit: int = 100
    ) -> Sequence[ArchiveObject]:
        raise NotImplementedError

    async def objects_before(self, tenant_id: str, day: date, *, limit: int = 100) -> Sequence[ArchiveObject]:
        raise NotImplementedError

    async def forget(self, tenant_id: str, keys: Sequence[str]) -> int:
        raise NotImplementedError


class FakeMessage:
    def __init__(self, data: bytes = b"", num_delivered: int = 1) -> None:
        self.data = data
        self.subject = "logs.raw.t1"
        self.headers: dict[str, str] = {}
        self.num_delivered = num_delivered
        self.outcome: str | None = None
        self.nak_delay: float | None = None

    async def ack(self) -> None:
        self.outcome = "ack"

    async def nak(self, delay_seconds: float = 0.0) -> None:
        self.outcome, self.nak_delay = "nak", delay_seconds

    async def term(self) -> None:
        self.outcome = "term"


def batch(batch_id: str, messages: list[str], *, tenant: str = "t1", received_at: datetime = NOW) -> RawBatch:
    return RawBatch(
        batch_id=batch_id,
        tenant_id=tenant,
        received_at=received_at,
        source="http",
        events=[
            {"message": message, "level": "ERROR", "service": "svc", "timestamp": f"2026-11-27T13:0{i}:00Z"}
            for i, message in enumerate(messages)
        ],
    )


def normalized(raw: RawBatch) -> list[Any]:
    return normalize_batch(raw, default_service="unknown", default_host="unknown")


@pytest.fixture
def blobs() -> MemoryBlobs:
    return MemoryBlobs()


@pytest.fixture
def manifest() -> MemoryManifest:
    return MemoryManifest()


@pytest.fixture
async def bus() -> AsyncIterator[MemoryEventBus]:
    memory_bus = MemoryEventBus()
    await memory_bus.start()
    yield memory_bus
    await memory_bus.close()


def writer(
    bus: MemoryEventBus,
    blobs: MemoryBlobs,
    manifest: MemoryManifest,
    clock: Clock | None = None,
    **settings: Any,
) -> ArchiveWriter:
    return ArchiveWriter(
        bus=bus,
        blobs=blobs,
        manifest=manifest,
        settings=ArchiveSettings(**settings),
        pipeline=PIPELINE,
        metrics=Metrics(),
        monotonic=clock or Clock(),
        clock=lambda: NOW,
        retry_delay_seconds=0.5,
    )


def lines_of(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in gzip.decompress(data).splitlines()]


def test_objects_are_named_by_tenant_receive_day_hour_and_first_event_id() -> None:
    hour = archive_hour(datetime(2026, 11, 27, 15, 59, 59, 999999, tzinfo=UTC) + timedelta(hours=-2))
    assert hour == datetime(2026, 11, 27, 13, tzinfo=UTC)
    assert object_key("acme", hour, "01JD-00000") == "archive/acme/2026-11-27/13/01JD-00000.ndjson.gz"


def test_packing_is_gzip_ndjson_deterministic_and_counted() -> None:
    lines = [b'{"id":"a"}\n', b'{"id":"b"}\n']
    first, second = pack_lines(lines), pack_lines(list(lines))
    assert first.data == second.data  # no timestamp in the gzip header: a rewrite is byte-identical
    assert first.sha256 == hashlib.sha256(first.data).hexdigest()
    assert first.event_count == 2 == count_lines(first.data)
    assert gzip.decompress(first.data) == b'{"id":"a"}\n{"id":"b"}\n'


@pytest.mark.parametrize("level", range(1, 10))
def test_every_gzip_level_packs_the_same_lines_into_plain_deterministic_gzip(level: int) -> None:
    lines = [
        b'{"id":"%05d","event":{"message":"GET /api/orders 200 %d.%02dms"}}\n' % (n, n % 97, n % 100)
        for n in range(2000)
    ]
    packed = pack_lines(lines, level)
    assert packed.data[:4] == b"\x1f\x8b\x08\x00"  # one gzip member, deflate, no flags (no name, no extra)
    assert packed.data[4:8] == b"\x00\x00\x00\x00"  # mtime 0
    assert gzip.decompress(packed.data) == b"".join(lines)
    assert pack_lines(list(lines), level).data == packed.data
    assert len(packed.data) < len(b"".join(lines)) / 4


def test_the_fast_levels_compress_with_igzip_and_the_others_with_zlib() -> None:
    lines = [b'{"id":"%05d"}\n' % n for n in range(5000)]
    joined = b"".join(lines)
    assert pack_lines(lines, IGZIP_MAX_LEVEL).data == igzip.compress(joined, compresslevel=IGZIP_MAX_LEVEL, mtime=0)
    assert pack_lines(lines, 6).data == gzip.compress(joined, compresslevel=6, mtime=0)


async def test_a_full_buffer_is_flushed_and_only_then_its_message_is_acked(
    bus: MemoryEventBus, blobs: MemoryBlobs, manifest: MemoryManifest
) -> None:
    archive = writer(bus, blobs, manifest, max_bytes=1024)
    raw = batch("b1", ["x" * 600, "y" * 600])
    message = FakeMessage()
    await archive.add(message, raw, normalized(raw))
    assert message.outcome == "ack"
    [(key, data)] = blobs.objects.items()
    assert key == "archive/t1/2026-11-27/13/b1-00000.ndjson.gz"
    lines = lines_of(data)
    assert [line["id"] for line in lines] == ["b1-00000", "b1-00001"]
    # The raw event exactly as accepted, with its normalized time and the receive time.
    assert lines[0]["event"] == raw.events[0]
    assert lines[0]["timestamp"] == "2026-11-27T13:00:00Z"
    assert lines[0]["received_at"] == "2026-11-27T13:45:12Z"
    assert lines[0]["source"] == "http"
    row = manifest.rows[("t1", key)]
    assert (row.day, row.hour, row.event_count, row.bytes) == (date(2026, 11, 27), 13, 2, len(data))
    assert row.sha256 == hashlib.sha256(data).hexdigest()
    assert (row.first_event_at, row.last_event_at) == (
        datetime(2026, 11, 27, 13, 0, tzinfo=UTC),
        datetime(2026, 11, 27, 13, 1, tzinfo=UTC),
    )


async def test_small_batches_wait_for_the_age_limit_and_share_one_object(
    bus: MemoryEventBus, blobs: MemoryBlobs, manifest: MemoryManifest
) -> None:
    clock = Clock()
    archive = writer(bus, blobs, manifest, clock, max_age_seconds=5)
    messages = [FakeMessage(), FakeMessage()]
    for message, raw in zip(messages, [batch("b2", ["two"]), batch("b1", ["one", "uno"])], strict=True):
        await archive.add(message, raw, normalized(raw))
    clock.now += 4.9
    await archive.flush_due()
    assert blobs.objects == {}
    assert [message.outcome for message in messages] == [None, None]
    clock.now += 0.1
    await archive.flush_due()
    assert [message.outcome for message in messages] == ["ack", "ack"]
    [(key, data)] = blobs.objects.items()
    assert key.endswith("/13/b1-00000.ndjson.gz")  # sorted by event id: the smallest names the object
    assert [line["id"] for line in lines_of(data)] == ["b1-00000", "b1-00001", "b2-00000"]


async def test_tenants_and_receive_hours_go_to_separate_objects(
    bus: MemoryEventBus, blobs: MemoryBlobs, manifest: MemoryManifest
) -> None:
    archive = writer(bus, blobs, manifest)
    raws = [
        batch("a1", ["a"], tenant="acme"),
        batch("a2", ["b"], tenant="acme", received_at=NOW + timedelta(minutes=20)),
        batch("g1", ["c"], tenant="globex"),
    ]
    for raw in raws:
        await archive.add(FakeMessage(), raw, normalized(raw))
    await archive.flush_all()
    assert sorted(blobs.objects) == [
        "archive/acme/2026-11-27/13/a1-00000.ndjson.gz",
        "archive/acme/2026-11-27/14/a2-00000.ndjson.gz",
        "archive/globex/2026-11-27/13/g1-00000.ndjson.gz",
    ]


async def test_a_redelivered_batch_is_archived_once_and_a_rewrite_is_identical(
    bus: MemoryEventBus, blobs: MemoryBlobs, manifest: MemoryManifest
) -> None:
    archive = writer(bus, blobs, manifest)
    raw = batch("b1", ["one", "two"])
    first, again = FakeMessage(), FakeMessage(num_delivered=2)
    await archive.add(first, raw, normalized(raw))
    await archive.add(again, raw, normalized(raw))  # redelivered while the first delivery still waits
    await archive.flush_all()
    [(key, data)] = blobs.objects.items()
    assert len(lines_of(data)) == 2
    assert (first.outcome, again.outcome) == ("ack", "ack")
    # After a crash before the ack, the same batch grouped alone rewrites the same key with the same bytes.
    await archive.add(FakeMessage(num_delivered=3), raw, normalized(raw))
    await archive.flush_all()
    assert blobs.objects == {key: data}
    assert len(manifest.rows) == 1


async def test_a_failed_write_naks_every_message_and_records_nothing(
    bus: MemoryEventBus, blobs: MemoryBlobs, manifest: MemoryManifest
) -> None:
    archive = writer(bus, blobs, manifest)
    blobs.fail = True
    messages = [FakeMessage(), FakeMessage(num_delivered=9)]
    for message, raw in zip(messages, [batch("b1", ["one"]), batch("b2", ["two"])], strict=True):
        await archive.add(message, raw, normalized(raw))
    await archive.flush_all()
    # An outage never dead-letters (even past max_deliveries): the messages come back later.
    assert [message.outcome for message in messages] == ["nak", "nak"]
    assert manifest.rows == {}
    assert archive.buffered_events == 0


def test_the_age_limit_stays_below_the_ack_wait(
    bus: MemoryEventBus, blobs: MemoryBlobs, manifest: MemoryManifest
) -> None:
    assert writer(bus, blobs, manifest, max_age_seconds=600).max_age_seconds == 15.0
    assert writer(bus, blobs, manifest, max_age_seconds=3).max_age_seconds == 3.0


async def test_the_normalizer_acks_a_raw_batch_only_once_it_is_archived(
    bus: MemoryEventBus, blobs: MemoryBlobs, manifest: MemoryManifest
) -> None:
    archive = writer(bus, blobs, manifest, max_age_seconds=0.2)
    worker = NormalizerWorker(
        bus=bus, settings=PIPELINE, limits=IngestSettings(), metrics=Metrics(), grace_seconds=2, archive=archive
    )
    raw = batch("b9", ["one", "two", "three"])
    await bus.publish("logs.raw.t1", encode_bus_message(raw), msg_id="b9:0")
    await archive.start()
    await worker.start()
    try:
        for _ in range(200):
            if blobs.objects:
                break
            await asyncio.sleep(0.02)
    finally:
        await worker.stop()
        await archive.stop()
    [(key, data)] = blobs.objects.items()
    assert key == "archive/t1/2026-11-27/13/b9-00000.ndjson.gz"
    assert [line["event"]["message"] for line in lines_of(data)] == ["one", "two", "three"]
    # Acked: a new consumer on the work queue finds nothing to redeliver.
    consumer = await bus.consumer("LOGS_RAW", "pipeline", filter_subject="logs.raw.>", ack_wait_seconds=0.1)
    await asyncio.sleep(0.2)
    assert await consumer.fetch(10, 0.2) == []
    await consumer.close()


def entry_for(key: str, data: bytes, count: int) -> ArchiveObject:
    return ArchiveObject(
        tenant_id="t1",
        key=key,
        day=date(2026, 11, 27),
        hour=13,
        event_count=count,
        bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        first_event_at=NOW,
        last_event_at=NOW,
        created_at=NOW,
    )


async def test_verification_finds_missing_tampered_and_miscounted_objects(blobs: MemoryBlobs) -> None:
    packed = pack_lines([b'{"id":"a"}\n', b'{"id":"b"}\n'])
    blobs.objects["good"] = blobs.objects["tampered"] = blobs.objects["miscounted"] = packed.data
    good = entry_for("good", packed.data, 2)
    assert await verify_object(blobs, good) == (None, 2)
    blobs.objects["tampered"] = packed.data[:-1] + bytes([packed.data[-1] ^ 1])
    problem, _ = await verify_object(blobs, entry_for("tampered", packed.data, 2))
    assert problem is not None
    assert (problem.problem, problem.expected_sha256, problem.actual_sha256) == (
        "digest_mismatch",
        packed.sha256,
        hashlib.sha256(blobs.objects["tampered"]).hexdigest(),
    )
    problem, _ = await verify_object(blobs, entry_for("miscounted", packed.data, 3))
    assert problem is not None
    assert (problem.problem, problem.expected_event_count, problem.actual_event_count) == ("count_mismatch", 3, 2)
    problem, found = await verify_object(blobs, entry_for("gone", packed.data, 2))
    assert problem is not None
    assert (problem.problem, problem.actual_sha256, found) == ("missing", None, 0)
