"""Behaviour of `TantivyLogStore` that the `LogStore` contract does not cover: layout, limits, errors."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import tantivy

from mintlog.adapters.logstore import tantivy_partitions
from mintlog.adapters.logstore.tantivy import EventEncodingError, IncompatiblePartitionError, TantivyLogStore
from mintlog.domain.events import LogEvent
from mintlog.errors import StoreUnavailable
from mintlog.ports.logstore import SearchQuery

MiB = 1024 * 1024
NOON = datetime(2024, 3, 9, 12, tzinfo=UTC)


def make_event(
    event_id: str, *, tenant_id: str = "acme", timestamp: datetime = NOON, message: str = "request served"
) -> LogEvent:
    return LogEvent(
        id=event_id,
        tenant_id=tenant_id,
        timestamp=timestamp,
        received_at=timestamp,
        service="checkout",
        level="info",
        message=message,
        host="web-1",
    )


def partition_dirs(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.glob("*/*") if path.is_dir())


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[TantivyLogStore]:
    store = TantivyLogStore(tmp_path / "index", writer_heap_bytes=16 * MiB)
    await store.start()
    yield store
    await store.close()


async def test_each_tenant_and_utc_day_is_one_directory(store: TantivyLogStore) -> None:
    plus_two = timezone(timedelta(hours=2))
    await store.write(
        [
            make_event("late-local", timestamp=datetime(2024, 3, 10, 1, 30, tzinfo=plus_two)),  # 03-09 23:30Z
            make_event("early-utc", timestamp=datetime(2024, 3, 10, 0, 0, tzinfo=UTC)),
            make_event("other-tenant", tenant_id="globex", timestamp=NOON),
        ]
    )

    assert partition_dirs(store.root) == ["acme/2024-03-09", "acme/2024-03-10", "globex/2024-03-09"]


async def test_a_tenant_id_cannot_escape_the_root(store: TantivyLogStore, tmp_path: Path) -> None:
    await store.write([make_event("evt-1", tenant_id="../evil"), make_event("evt-2", tenant_id="a/b")])

    assert sorted(path.name for path in tmp_path.iterdir()) == ["index"]
    assert partition_dirs(store.root) == ["%2E%2E%2Fevil/2024-03-09", "a%2Fb/2024-03-09"]
    page = await store.search(SearchQuery("../evil"))
    assert [event.id for event in page.events] == ["evt-1"]


async def test_search_opens_only_the_partitions_overlapping_the_range(store: TantivyLogStore) -> None:
    await store.write([make_event(f"evt-{day}", timestamp=NOON + timedelta(days=day)) for day in range(5)])

    page = await store.search(SearchQuery("acme", start=NOON + timedelta(days=1), end=NOON + timedelta(days=3)))
    everything = await store.search(SearchQuery("acme", order="asc"))

    assert page.partitions == ["acme/2024-03-12", "acme/2024-03-11", "acme/2024-03-10"]
    assert [event.id for event in page.events] == ["evt-2", "evt-1"]
    assert everything.partitions == [f"acme/2024-03-{day:02d}" for day in range(9, 14)]


async def test_open_writers_and_readers_stay_within_their_limits(tmp_path: Path) -> None:
    store = TantivyLogStore(tmp_path, writer_heap_bytes=16 * MiB, max_open_writers=2, max_open_readers=3)
    await store.start()
    try:
        for tenant_number in range(6):
            tenant = f"tenant-{tenant_number}"
            await store.write(
                [make_event("evt", tenant_id=tenant, timestamp=NOON + timedelta(days=day)) for day in range(2)]
            )
            await store.search(SearchQuery(tenant))
            stats = store.stats()
            assert stats.open_writers <= 2
            assert stats.open_readers <= 3 + 2
        for tenant_number in range(6):
            assert (await store.search(SearchQuery(f"tenant-{tenant_number}"))).total == 2
    finally:
        await store.close()
    assert store.stats().open_writers == 0


def test_the_writer_heap_must_be_one_tantivy_accepts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="writer_heap_bytes"):
        TantivyLogStore(tmp_path, writer_heap_bytes=1 * MiB)


async def test_a_store_serves_only_between_start_and_close(tmp_path: Path) -> None:
    store = TantivyLogStore(tmp_path / "index", writer_heap_bytes=16 * MiB)
    with pytest.raises(StoreUnavailable):
        await store.ping()
    with pytest.raises(StoreUnavailable):
        await store.write([make_event("evt-1")])

    await store.start()
    await store.start()
    await store.ping()
    await store.close()
    await store.close()

    with pytest.raises(StoreUnavailable):
        await store.search(SearchQuery("acme"))


async def test_ping_fails_when_the_root_is_gone(store: TantivyLogStore) -> None:
    shutil.rmtree(store.root)

    with pytest.raises(StoreUnavailable):
        await store.ping()


async def test_tantivy_errors_become_store_unavailable(store: TantivyLogStore) -> None:
    await store.write([make_event("evt-1")])  # keeps the partition's writer open
    intruder = TantivyLogStore(store.root, writer_heap_bytes=16 * MiB)
    await intruder.start()
    try:
        with pytest.raises(StoreUnavailable, match="write"):
            await intruder.write([make_event("evt-2")])
        await store.close()
        await intruder.write([make_event("evt-2")])
        assert (await intruder.search(SearchQuery("acme"))).total == 2
    finally:
        await intruder.close()


async def test_commits_of_another_process_become_visible(store: TantivyLogStore) -> None:
    reader = TantivyLogStore(store.root, writer_heap_bytes=16 * MiB)
    await reader.start()
    try:
        await store.write([make_event("evt-1")])
        assert (await reader.search(SearchQuery("acme"))).total == 1
        await store.write([make_event("evt-2", timestamp=NOON + timedelta(seconds=1))])
        assert [event.id for event in (await reader.search(SearchQuery("acme"))).events] == ["evt-2", "evt-1"]
    finally:
        await reader.close()


async def test_utc_offsets_and_naive_timestamps_come_back_as_written(store: TantivyLogStore) -> None:
    plus_five = timezone(timedelta(hours=5, minutes=30))
    offset = make_event("offset", timestamp=datetime(2024, 3, 9, 17, 30, 0, 123_456, tzinfo=plus_five))
    naive = make_event("naive", timestamp=datetime(2024, 3, 9, 12, 0, 0, 654_321))
    await store.write([offset, naive])

    page = await store.search(SearchQuery("acme"))

    assert page.events == [naive, offset]
    assert page.events[1].timestamp.utcoffset() == timedelta(hours=5, minutes=30)


async def test_timestamps_outside_tantivys_date_range_are_kept_exactly(store: TantivyLogStore) -> None:
    ancient = make_event("ancient", timestamp=datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=UTC))
    far = make_event("far", timestamp=datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC))
    await store.write([ancient, far, make_event("now")])

    page = await store.search(SearchQuery("acme", end=datetime(2000, 1, 1, tzinfo=UTC)))
    everything = await store.search(SearchQuery("acme"))

    assert page.events == [ancient]
    assert [event.id for event in everything.events] == ["far", "now", "ancient"]


async def test_an_event_that_cannot_be_encoded_keeps_its_partition_unchanged(store: TantivyLogStore) -> None:
    good = make_event("good")
    broken = make_event("broken", message="lone surrogate \ud800")

    with pytest.raises(EventEncodingError, match="broken"):
        await store.write([good, broken])
    assert (await store.search(SearchQuery("acme"))).total == 0

    await store.write([good])
    assert (await store.search(SearchQuery("acme"))).events == [good]


async def test_an_event_without_a_tenant_is_rejected_before_anything_is_written(
    store: TantivyLogStore,
) -> None:
    with pytest.raises(ValueError, match="tenant_id"):
        await store.write([make_event("good"), make_event("orphan", tenant_id="")])

    assert (await store.search(SearchQuery("acme"))).total == 0
    assert (await store.search(SearchQuery(""))).total == 0


async def test_searches_during_writes_and_writer_recycling_never_fail(tmp_path: Path) -> None:
    store = TantivyLogStore(tmp_path, writer_heap_bytes=16 * MiB, max_open_writers=1, max_open_readers=1)
    await store.start()
    tenants = ("acme", "globex", "initech")
    written: dict[str, int] = dict.fromkeys(tenants, 0)
    writing = True

    async def search_until_done(tenant: str) -> None:
        while writing:
            seen = written[tenant]  # every write that returned before the search started
            assert (await store.search(SearchQuery(tenant, size=1))).total >= seen

    searchers = [asyncio.create_task(search_until_done(tenant)) for tenant in tenants * 2]
    try:
        for round_number in range(8):
            for tenant in tenants:
                await store.write(
                    [
                        make_event(
                            f"evt-{round_number}-{index}", tenant_id=tenant, timestamp=NOON + timedelta(days=index % 2)
                        )
                        for index in range(10)
                    ]
                )
                written[tenant] += 10
    finally:
        writing = False
        await asyncio.gather(*searchers)
        await store.close()


async def test_a_partition_with_an_older_layout_is_refused_clearly(store: TantivyLogStore) -> None:
    """A partition made before `field_pairs` existed would silently miss `fields.*` hits: it is refused."""
    old_layout = tantivy.SchemaBuilder()
    old_layout.add_text_field("id", stored=True, fast=True, tokenizer_name="raw", index_option="basic")
    old_layout.add_integer_field("ts_us", indexed=True, fast=True)
    path = store.root / "acme" / "2024-03-09"
    path.mkdir(parents=True)
    old_index = tantivy.Index(old_layout.build(), path=str(path))
    writer = old_index.writer(16 * MiB, 1)
    writer.add_json('{"id": "old", "ts_us": 0}')
    writer.commit()
    writer.wait_merging_threads()

    with pytest.raises(IncompatiblePartitionError, match="recreate the data directory"):
        await store.search(SearchQuery("acme"))
    with pytest.raises(IncompatiblePartitionError):
        await store.write([make_event("new")])
    await store.write([make_event("other-day", timestamp=NOON + timedelta(days=1))])
    page = await store.search(SearchQuery("acme", start=NOON + timedelta(days=1)))
    assert [event.id for event in page.events] == ["other-day"]


def open_indexes(store: TantivyLogStore) -> list[tantivy.Index]:
    """The `tantivy.Index` objects of the partitions `store` has open."""
    partitions = store._partitions._open.values()  # pyright: ignore[reportPrivateUsage]
    return [partition.index for partition in partitions]


def distinct(objects: Sequence[object]) -> int:
    return len({id(item) for item in objects})  # all alive in `objects`, so no id is reused


async def test_a_reader_opens_a_partition_afresh_after_many_reloads_and_keeps_seeing_every_commit(
    store: TantivyLogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each reload of one `tantivy.Index` keeps native memory until the index is dropped, so a search
    process reopens a writer-less partition every `RELOADS_BEFORE_REOPEN` reloads; searches never miss a
    commit across the reopen, and the writing process's own partition (with its writer) is never reopened."""
    monkeypatch.setattr(tantivy_partitions, "RELOADS_BEFORE_REOPEN", 2)
    reader = TantivyLogStore(store.root, writer_heap_bytes=16 * MiB)
    await reader.start()
    try:
        reader_indexes: list[tantivy.Index] = []
        writer_indexes: list[tantivy.Index] = []
        for written in range(1, 8):
            await store.write([make_event(f"evt-{written}", timestamp=NOON + timedelta(seconds=written))])
            assert (await reader.search(SearchQuery("acme"))).total == written
            assert (await store.search(SearchQuery("acme"))).total == written
            reader_indexes.extend(open_indexes(reader))
            writer_indexes.extend(open_indexes(store))
        assert distinct(reader_indexes) >= 3  # opened once, then afresh after every second reload
        assert distinct(writer_indexes) == 1
    finally:
        await reader.close()


def open_writers(store: TantivyLogStore) -> list[tantivy.IndexWriter]:
    """The `tantivy.IndexWriter` objects `store` has open."""
    partitions = store._partitions._open.values()  # pyright: ignore[reportPrivateUsage]
    return [partition.writer for partition in partitions if partition.writer is not None]


async def test_a_writer_is_recycled_after_many_commits_and_no_event_is_lost_or_indexed_twice(
    store: TantivyLogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tantivy's directory keeps ~1.3 KB per commit of a writer until the writer and its index are dropped,
    so a writer is closed and its partition opened afresh every `COMMITS_BEFORE_RECYCLE` commits; the
    writes on either side of each recycle all stay searchable, and a redelivered event is still stored
    once."""
    monkeypatch.setattr(tantivy_partitions, "COMMITS_BEFORE_RECYCLE", 3)
    monkeypatch.setattr(tantivy_partitions, "merge_in_flight", lambda path: False)
    writers: list[tantivy.IndexWriter] = []
    indexes: list[tantivy.Index] = []
    for written in range(1, 11):
        await store.write([make_event(f"evt-{written}", timestamp=NOON + timedelta(seconds=written))])
        writers.extend(open_writers(store))
        indexes.extend(open_indexes(store))
        assert (await store.search(SearchQuery("acme"))).total == written
    assert len(writers) == 7  # writes 3, 6 and 9 recycle right after their commit: no writer left open
    assert distinct(writers) == 4  # writes 1-3, 4-6, 7-9, 10
    assert distinct(indexes) == 4
    await store.write([make_event("evt-4", timestamp=NOON + timedelta(seconds=4))])  # redelivered
    page = await store.search(SearchQuery("acme", size=100))
    assert sorted(event.id for event in page.events) == sorted(f"evt-{written}" for written in range(1, 11))


async def test_a_writer_recycle_waits_for_a_merge_in_flight_up_to_twice_the_limit(
    store: TantivyLogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing a writer waits for its merges, so while a merge is writing the recycle is put off, commit by
    commit, but never past twice `COMMITS_BEFORE_RECYCLE`."""
    monkeypatch.setattr(tantivy_partitions, "COMMITS_BEFORE_RECYCLE", 3)
    merging = [True]
    monkeypatch.setattr(tantivy_partitions, "merge_in_flight", lambda path: merging[0])
    first_writers: list[tantivy.IndexWriter] = []
    for written in range(1, 7):
        await store.write([make_event(f"evt-{written}", timestamp=NOON + timedelta(seconds=written))])
        first_writers.extend(open_writers(store))
    assert len(first_writers) == 5  # put off at 3, 4 and 5; recycled at 6
    assert distinct(first_writers) == 1
    for written in range(7, 10):
        await store.write([make_event(f"evt-{written}", timestamp=NOON + timedelta(seconds=written))])
    assert open_writers(store) != []  # merging: the new writer's third commit did not recycle it
    merging[0] = False
    await store.write([make_event("evt-10", timestamp=NOON + timedelta(seconds=10))])
    assert open_writers(store) == []  # the merge is done: recycled at its fourth commit
    assert (await store.search(SearchQuery("acme"))).total == 10


async def test_a_merge_is_in_flight_while_the_partition_holds_segment_files_meta_json_does_not_list(
    store: TantivyLogStore,
) -> None:
    await store.write([make_event("evt-1")])
    (partition_path,) = [path for path in store.root.glob("*/*") if path.is_dir()]
    assert not tantivy_partitions.merge_in_flight(partition_path)
    stray = partition_path / "0123456789abcdef0123456789abcdef.idx"  # what a merge's new segment starts as
    stray.write_bytes(b"")
    assert tantivy_partitions.merge_in_flight(partition_path)
    stray.unlink()
    (partition_path / "meta.json").rename(partition_path / "meta.json.away")
    assert tantivy_partitions.merge_in_flight(partition_path)  # cannot tell: put the recycle off
