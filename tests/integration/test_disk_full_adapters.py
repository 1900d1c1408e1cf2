"""The embedded adapters on a real full disk (a small tmpfs and a ballast file): each reports the refusal as an
outage the pipeline retries (never as a rejected batch), and works again, storing everything once, when the
space is back.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mintlog.adapters.blob.filesystem import FilesystemBlobStore
from mintlog.adapters.db.sql import SqlMetadataStore
from mintlog.adapters.logstore.tantivy import TantivyLogStore
from mintlog.domain.events import LogEvent
from mintlog.domain.tenants import Tenant
from mintlog.errors import DatabaseUnavailable, DependencyUnavailable, StoreDiskFailure
from mintlog.ports.logstore import SearchQuery
from tests.tmpfs import fill, mounted_tmpfs

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
NOON = datetime(2024, 3, 9, 12, tzinfo=UTC)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with mounted_tmpfs(tmp_path / "disk", 32 * MiB) as mount_point:
        yield mount_point


@pytest.fixture
async def index(disk: Path) -> AsyncIterator[TantivyLogStore]:
    store = TantivyLogStore(disk / "index", writer_heap_bytes=16 * MiB)
    await store.start()
    yield store
    await store.close()


def events(first: int, count: int, *, tenants: tuple[str, ...] = ("acme",), days: int = 1) -> list[LogEvent]:
    return [
        LogEvent(
            id=f"evt-{tenant}-{number:06d}-{day}",
            tenant_id=tenant,
            timestamp=NOON + timedelta(days=day),
            received_at=NOON,
            service="disk",
            level="info",
            message=f"event {number} " + os.urandom(100).hex(),
            host="web-1",
        )
        for number in range(first, first + count)
        for tenant in tenants
        for day in range(days)
    ]


async def test_a_tantivy_write_the_full_disk_refuses_is_an_outage_until_one_succeeds(
    index: TantivyLogStore, disk: Path
) -> None:
    searcher = TantivyLogStore(index.root, writer_heap_bytes=16 * MiB)  # like the parent of the indexing child
    await searcher.start()
    try:
        await index.write(events(0, 100))
        fill(disk / "ballast")
        batch = events(1000, 300, tenants=("acme", "globex"), days=2)  # four partitions, three of them new

        for _attempt in range(3):  # the first attempt and the retries meet a writer in whatever state it was left
            with pytest.raises(StoreDiskFailure, match="No space left on device"):
                await index.write(batch)
        for store in (index, searcher):
            with pytest.raises(StoreDiskFailure):
                await store.ping()
        assert (await searcher.search(SearchQuery("acme"))).total == 100  # reads still work

        (disk / "ballast").unlink()
        await index.write(batch)

        for store in (index, searcher):
            await store.ping()
        await index.write(batch)  # a redelivery of what was stored stores nothing twice
        assert (await searcher.search(SearchQuery("acme"))).total == 100 + 600
        assert (await searcher.search(SearchQuery("globex"))).total == 600
        assert not list(index.root.glob(".disk-probe-*"))
    finally:
        await searcher.close()


async def test_a_blob_put_the_full_disk_refuses_is_an_outage_and_leaves_nothing(disk: Path) -> None:
    blobs = FilesystemBlobStore(disk / "objects")
    await blobs.start()
    fill(disk / "ballast")

    with pytest.raises(DependencyUnavailable, match="No space left on device"):  # the archive retries it
        await blobs.put("archive/acme/2024-03-09/12/evt-1.ndjson.gz", b"x" * MiB)

    assert [path for path in (disk / "objects").rglob("*") if path.is_file()] == []  # no temp file left
    (disk / "ballast").unlink()
    await blobs.put("archive/acme/2024-03-09/12/evt-1.ndjson.gz", b"x" * MiB)
    assert await blobs.get("archive/acme/2024-03-09/12/evt-1.ndjson.gz") == b"x" * MiB


async def test_a_sqlite_write_the_full_disk_refuses_is_database_unavailable(disk: Path) -> None:
    metadata = SqlMetadataStore(f"sqlite+aiosqlite:///{disk / 'mintlog.db'}")
    await metadata.start()
    try:
        fill(disk / "ballast")
        # Answered 503 with Retry-After, never 500, and saying why (not "unreachable").
        with pytest.raises(DatabaseUnavailable, match=r"the metadata database's disk is full \(database or disk"):
            await metadata.create_tenant(Tenant(id="refused", name="refused", created_at=NOON))

        (disk / "ballast").unlink()
        await metadata.create_tenant(Tenant(id="after", name="after", created_at=NOON))
        assert await metadata.get_tenant("after") is not None
    finally:
        await metadata.close()
