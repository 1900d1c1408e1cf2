"""The Tantivy store's document layout: what it keeps on disk, and that nothing is lost by keeping less."""

from __future__ import annotations

import base64
import json
import math
import struct
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import cast

import msgspec
import pytest
import tantivy

from benchmarks.loggen import events, log_event
from mintlog.adapters.logstore import tantivy as tantivy_store_module
from mintlog.adapters.logstore import tantivy_schema
from mintlog.adapters.logstore.tantivy import IncompatiblePartitionError, TantivyLogStore
from mintlog.adapters.logstore.tantivy_schema import (
    DOCSTORE_BLOCK_BYTES,
    MESSAGE_TOKENIZER,
    build_legacy_schema,
    build_schema,
    docstore_compression,
    encode_document,
    message_analyzer,
    thousandths,
    to_utc,
)
from mintlog.domain.events import FieldValue, LogEvent
from mintlog.ports.aggregation import AggregateQuery, AggregateResult, MetricSpec
from mintlog.ports.logstore import SearchAfter, SearchQuery
from mintlog.query import parse

MiB = 1024 * 1024
NOON = datetime(2024, 3, 9, 12, tzinfo=UTC)


def make_event(
    event_id: str,
    *,
    timestamp: datetime = NOON,
    received_at: datetime | None = None,
    fields: dict[str, FieldValue] | None = None,
    **overrides: str,
) -> LogEvent:
    return LogEvent(
        id=event_id,
        tenant_id="acme",
        timestamp=timestamp,
        received_at=timestamp if received_at is None else received_at,
        service=overrides.get("service", "checkout"),
        level="info",
        message=overrides.get("message", "request served"),
        host="web-1",
        fields=fields or {},
        trace_id=overrides.get("trace_id"),
        span_id=overrides.get("span_id"),
        source=overrides.get("source", "http"),
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[TantivyLogStore]:
    store = TantivyLogStore(tmp_path / "index", writer_heap_bytes=16 * MiB)
    await store.start()
    yield store
    await store.close()


async def search_all(store: TantivyLogStore, query: str = "*") -> dict[str, LogEvent]:
    page = await store.search(SearchQuery("acme", node=parse(query), order="asc", size=100))
    return {event.id: event for event in page.events}


async def test_every_shape_of_event_comes_back_exactly(store: TantivyLogStore) -> None:
    minus_seven = timezone(timedelta(hours=-7))
    written = [
        make_event("received-later", received_at=NOON + timedelta(milliseconds=250)),
        make_event("received-earlier", received_at=NOON - timedelta(seconds=3, microseconds=7)),
        make_event(
            "received-with-offset", received_at=datetime(2024, 3, 9, 14, 0, 1, 5, tzinfo=timezone(timedelta(hours=2)))
        ),
        make_event(
            "naive", timestamp=datetime(2024, 3, 9, 12, 0, 0, 654_321), received_at=datetime(2024, 3, 9, 12, 0, 1)
        ),
        make_event("offset", timestamp=datetime(2024, 3, 9, 5, 0, 0, 1, tzinfo=minus_seven)),
        make_event(
            "everything",
            fields={
                "text": "ünïcode ✓",
                "count": 3,
                "ratio": -0.125,
                "ok": True,
                "gone": None,
                "big": 2**63 - 1,
                "mixed": ["a", 1, 2.5, False, None],
                "dotted.key": "x",
            },
            trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
            span_id="00f067aa0ba902b7",
            source="syslog",
            message="GET /api/v1/orders/42 → 200 in 1.5ms",
        ),
    ]
    await store.write(written)

    found = await search_all(store)

    assert found == {event.id: event for event in written}
    for event in written:  # equal instants are not enough: offsets and naive times stay as written
        assert found[event.id].timestamp.utcoffset() == event.timestamp.utcoffset()
        assert found[event.id].received_at.utcoffset() == event.received_at.utcoffset()
        assert found[event.id].tenant_id == "acme"


async def test_not_a_number_in_fields_is_kept(store: TantivyLogStore) -> None:
    await store.write([make_event("nan", fields={"value": math.nan, "inf": [math.inf, 1.0]})])

    kept = (await search_all(store))["nan"].fields

    assert isinstance(kept["value"], float)
    assert math.isnan(kept["value"])
    assert kept["inf"] == [math.inf, 1.0]


async def test_only_numbers_feed_metrics_and_every_value_stays_searchable(store: TantivyLogStore) -> None:
    await store.write(
        [
            make_event("int", fields={"size": 10, "tag": "a"}),
            make_event("list", fields={"size": [1, 2.5], "tag": ["a", "b"]}),
            make_event("text", fields={"size": "100", "tag": "c"}),
            make_event("bool", fields={"size": True, "tag": False}),
        ]
    )

    metrics = tuple(MetricSpec(op, op, "fields.size") for op in ("count", "sum", "min", "max"))
    result = await store.aggregate(AggregateQuery("acme", metrics=metrics))

    assert result.metrics == {"count": 3, "sum": 13.5, "min": 1.0, "max": 10.0}
    assert set(await search_all(store, "fields.size:100")) == {"text"}
    assert set(await search_all(store, "fields.size:>=2")) == {"int", "list", "text"}
    assert set(await search_all(store, "fields.tag:a")) == {"int", "list"}
    assert set(await search_all(store, "fields.tag:false")) == {"bool"}


async def test_a_cursor_inside_equal_timestamps_uses_the_time_column(store: TantivyLogStore) -> None:
    tied = [make_event(f"tie-{index}") for index in range(5)]
    await store.write([*tied, make_event("before", timestamp=NOON - timedelta(microseconds=1))])
    first = await store.search(SearchQuery("acme", size=2))
    assert [event.id for event in first.events] == ["tie-4", "tie-3"]

    rest = await store.search(SearchQuery("acme", size=10, after=SearchAfter.of(first.events[-1])))

    assert [event.id for event in rest.events] == ["tie-2", "tie-1", "tie-0", "before"]


async def test_partitions_keep_no_norms_no_time_terms_and_big_store_blocks(store: TantivyLogStore) -> None:
    await store.write([make_event("evt-1")])

    meta = json.loads(next(store.root.glob("acme/*/meta.json")).read_text())

    assert meta["index_settings"]["docstore_blocksize"] == DOCSTORE_BLOCK_BYTES
    assert meta["index_settings"]["docstore_compression"] == docstore_compression()
    options = {field["name"]: field["options"] for field in meta["schema"]}
    assert [name for name, option in options.items() if option.get("stored")] == ["event"]
    assert not any((option.get("indexing") or option).get("fieldnorms") for option in options.values())
    assert options["ts_us"]["indexed"] is False
    assert options["ts_us"]["fast"] is True
    assert options["fields"]["indexing"] is None
    assert options["fields"]["fast"] is True


def write_partition_directly(root: Path, schema: tantivy.Schema, written: list[LogEvent], *, decimals: bool) -> Path:
    """Write `written` into acme's 2024-03-09 partition with Tantivy alone (no store, Tantivy's default settings)."""
    path = root / "acme" / "2024-03-09"
    path.mkdir(parents=True)
    index = tantivy.Index(schema, path=str(path))
    index.register_tokenizer(MESSAGE_TOKENIZER, message_analyzer())
    writer = index.writer(16 * MiB, 1)
    for event in written:
        writer.add_json(encode_document(event, to_utc(event.timestamp), decimals=decimals))
    writer.commit()
    writer.wait_merging_threads()
    return path


async def test_a_partition_created_with_tantivys_default_settings_is_still_served(tmp_path: Path) -> None:
    """A crash between creating a partition and setting its block size leaves Tantivy's defaults: still valid."""
    path = write_partition_directly(tmp_path / "index", build_schema(), [make_event("evt-1")], decimals=True)
    store = TantivyLogStore(tmp_path / "index", writer_heap_bytes=16 * MiB)
    await store.start()
    try:
        await store.write([make_event("evt-2", timestamp=NOON + timedelta(seconds=1))])
        page = await store.search(SearchQuery("acme"))
    finally:
        await store.close()

    assert [found.id for found in page.events] == ["evt-2", "evt-1"]
    assert json.loads((path / "meta.json").read_text())["index_settings"]["docstore_blocksize"] == 16384


async def test_the_index_takes_at_most_half_the_raw_ndjson(store: TantivyLogStore) -> None:
    """Realistic events (the benchmark generator) cost less than half their NDJSON size on disk."""
    raw_bytes = 0
    batch: list[LogEvent] = []
    for index, raw in enumerate(events(40_000, start=NOON, span=timedelta(hours=1))):
        raw_bytes += len(msgspec.json.encode(raw)) + 1
        batch.append(log_event(raw, tenant_id="acme", event_id=f"evt-{index:08d}"))
        if len(batch) == 5_000:
            await store.write(batch)
            batch = []
    await store.close()  # waits for merges: the settled size

    disk_bytes = sum(path.stat().st_size for path in store.root.rglob("*") if path.is_file())

    assert disk_bytes <= 0.5 * raw_bytes


def store_bytes(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*.store"))


async def write_benchmark_events(store: TantivyLogStore, count: int) -> None:
    batch = [
        log_event(raw, tenant_id="acme", event_id=f"evt-{index:08d}")
        for index, raw in enumerate(events(count, start=NOON, span=timedelta(hours=1)))
    ]
    await store.write(batch)


async def test_new_partitions_compress_their_documents_with_zstd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the Tantivy `make install` builds, documents take at least a quarter less room than with LZ4."""
    if not docstore_compression().startswith("zstd"):
        pytest.skip("the installed Tantivy lacks zstd: `make install` builds one when a Rust toolchain is present")
    sizes: dict[str, int] = {}
    for compression in ("zstd(compression_level=9)", "lz4"):
        monkeypatch.setattr(tantivy_schema, "docstore_compression", lambda compression=compression: compression)
        store = TantivyLogStore(tmp_path / compression, writer_heap_bytes=16 * MiB)
        await store.start()
        try:
            await write_benchmark_events(store, 20_000)
            assert (await store.aggregate(AggregateQuery("acme"))).total == 20_000
        finally:
            await store.close()
        meta = json.loads(next((tmp_path / compression).glob("acme/*/meta.json")).read_text())
        assert meta["index_settings"]["docstore_compression"] == compression
        sizes[compression] = store_bytes(tmp_path / compression)

    assert sizes["zstd(compression_level=9)"] < 0.75 * sizes["lz4"], sizes


async def test_a_zstd_partition_the_installed_tantivy_cannot_read_is_refused_clearly(
    store: TantivyLogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.write([make_event("evt-1")])
    await store.close()

    def without_zstd(path: str) -> tantivy.Index:
        raise ValueError(
            "Meta file cannot be deserialized. unsupported variant `zstd`, please enable Tantivy's "
            "`zstd-compression` feature"
        )

    monkeypatch.setattr(tantivy.Index, "open", staticmethod(without_zstd))
    reopened = TantivyLogStore(store.root, writer_heap_bytes=16 * MiB)
    await reopened.start()
    try:
        with pytest.raises(IncompatiblePartitionError, match=r"compressed with zstd.*make install"):
            await reopened.search(SearchQuery("acme"))
    finally:
        await reopened.close()


MIXED_NUMBERS: list[FieldValue] = [0.001, 12.5, 7, -3.25, 0.0001, 2**60, 9_007_199_254_741, [1, 2.5, 1e-7], 20.09]
"""Thousandths (0.001, 12.5, 7, -3.25, 20.09, 1, 2.5) and numbers that are not (0.0001, 1e-7, 2**60, and
9,007,199,254,741, whose thousandths pass 2^53), alone and in one list."""


def flat_numbers(values: list[FieldValue]) -> list[int | float]:
    flat: list[int | float] = []
    for value in values:
        flat.extend(cast("list[int | float]", value) if isinstance(value, list) else [cast("int | float", value)])
    return flat


def numbers_in(document: str) -> tuple[dict[str, object], dict[str, object]]:
    parsed = json.loads(document)
    return parsed.get("field_decimals", {}), parsed.get("fields", {})


def test_numbers_that_are_whole_thousandths_are_indexed_as_integers() -> None:
    event = make_event("evt-1", fields={"ms": 20.09, "code": 200, "tiny": 0.0001, "huge": 2**60, "list": [1, 1e-7]})

    decimals, others = numbers_in(encode_document(event, NOON))
    legacy_decimals, legacy_others = numbers_in(encode_document(event, NOON, decimals=False))

    assert decimals == {"ms": 20_090, "code": 200_000, "list": [1_000]}
    assert others == {"tiny": 0.0001, "huge": 2**60, "list": [1e-7]}
    assert legacy_decimals == {}
    assert legacy_others == {"ms": 20.09, "code": 200, "tiny": 0.0001, "huge": 2**60, "list": [1, 1e-7]}
    assert [thousandths(number) for number in (0.1, 1.005, -2.5, 9_007_199_254_740, 9_007_199_254_741)] == [
        100,
        1_005,
        -2_500,
        9_007_199_254_740_000,  # at most 2**53 = 9,007,199,254,740,992 thousandths
        None,
    ]


async def aggregate_numbers(store: TantivyLogStore) -> AggregateResult:
    metrics = tuple(MetricSpec(op, op, "fields.n") for op in ("count", "sum", "min", "max"))
    percentiles = MetricSpec("p", "percentiles", "fields.n", percents=(50.0, 90.0))
    return await store.aggregate(AggregateQuery("acme", metrics=(*metrics, percentiles)))


def assert_summarizes(metrics: Mapping[str, object], numbers: list[int | float]) -> None:
    """Exact count, sum, minimum and maximum; percentiles within the store's 1 %."""
    assert metrics["count"] == len(numbers)
    assert metrics["sum"] == math.fsum(numbers) or math.isclose(cast("float", metrics["sum"]), math.fsum(numbers))
    assert metrics["min"] == min(numbers)
    assert metrics["max"] == max(numbers)
    ordered = sorted(numbers)
    for percent, key in ((50.0, "50.0"), (90.0, "90.0")):
        wanted = ordered[min(len(ordered) - 1, math.floor(percent / 100 * (len(ordered) - 1)))]
        found = cast("dict[str, float]", metrics["p"])[key]
        assert math.isclose(found, wanted, rel_tol=0.01), (percent, found, wanted)


async def test_metrics_read_both_number_columns_exactly(store: TantivyLogStore) -> None:
    """One day mixes the two columns in every leaf; the other day holds only thousandths."""
    first = [make_event(f"a-{index}", fields={"n": value}) for index, value in enumerate(MIXED_NUMBERS)]
    second_day = [20.5, 3, 4.125, 1000]
    second = [
        make_event(f"b-{index}", timestamp=NOON + timedelta(days=1), fields={"n": value})
        for index, value in enumerate(second_day)
    ]
    await store.write([*first, *second])

    assert_summarizes((await aggregate_numbers(store)).metrics, flat_numbers([*MIXED_NUMBERS, *second_day]))
    one_day = await store.aggregate(
        AggregateQuery(
            "acme",
            metrics=(MetricSpec("p", "percentiles", "fields.n", percents=(50.0,)),),
            start=NOON + timedelta(days=1),
        )
    )
    assert math.isclose(cast("dict[str, float]", one_day.metrics["p"])["50.0"], 4.125, rel_tol=0.01)


async def test_a_partition_of_the_legacy_layout_is_read_and_written_in_its_own_layout(tmp_path: Path) -> None:
    """A day created before `field_decimals` keeps every number in `fields`, and aggregates with newer days."""
    old = [make_event(f"old-{index}", fields={"n": value}) for index, value in enumerate(MIXED_NUMBERS[:4])]
    write_partition_directly(tmp_path / "index", build_legacy_schema(), old, decimals=False)
    store = TantivyLogStore(tmp_path / "index", writer_heap_bytes=16 * MiB)
    await store.start()
    try:
        late = [
            make_event(f"late-{index}", timestamp=NOON + timedelta(hours=1), fields={"n": value})
            for index, value in enumerate(MIXED_NUMBERS[4:])
        ]
        new_day = [make_event("next", timestamp=NOON + timedelta(days=1), fields={"n": 0.5})]
        await store.write([*late, *new_day])
        result = await aggregate_numbers(store)
        found = await store.search(SearchQuery("acme", node=parse("fields.n:>=12"), size=100))
    finally:
        await store.close()

    assert_summarizes(result.metrics, flat_numbers([*MIXED_NUMBERS, 0.5]))
    assert {event.id for event in found.events} == {"old-1", "late-1", "late-2", "late-4"}
    schemas = {
        meta.parent.name: {field["name"] for field in json.loads(meta.read_text())["schema"]}
        for meta in (tmp_path / "index" / "acme").glob("*/meta.json")
    }
    assert "field_decimals" not in schemas["2024-03-09"]
    assert "field_decimals" in schemas["2024-03-10"]


async def test_decimal_numbers_take_less_room_than_float_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The benchmark's events (a duration with 2 decimals, a status code) in the legacy layout and in this one."""
    fast_bytes: dict[str, int] = {}
    for layout in ("legacy", "decimals"):
        if layout == "legacy":
            monkeypatch.setattr(tantivy_store_module, "build_schema", build_legacy_schema)
        else:
            monkeypatch.undo()
        store = TantivyLogStore(tmp_path / layout, writer_heap_bytes=16 * MiB)
        await store.start()
        try:
            await write_benchmark_events(store, 20_000)
            result = await store.aggregate(
                AggregateQuery("acme", metrics=(MetricSpec("sum", "sum", "fields.duration_ms"),))
            )
        finally:
            await store.close()
        fast_bytes[layout] = sum(path.stat().st_size for path in (tmp_path / layout).rglob("*.fast"))
        assert result.total == 20_000

    assert fast_bytes["decimals"] < 0.85 * fast_bytes["legacy"], fast_bytes


async def test_floats_in_fields_are_stored_as_text_and_come_back_bit_for_bit(store: TantivyLogStore) -> None:
    floats = [20.09, -0.0, 0.1 + 0.2, 1e-7, 1e300, 5e-324, -2.5, math.inf]
    event = make_event("floats", fields={"one": 20.09, "many": [*floats, "text", 3, None], "nan": math.nan})
    await store.write([event])

    kept = (await search_all(store))["floats"].fields
    stored = base64.b64decode(json.loads(encode_document(event, NOON))["event"])

    assert b"20.09" in stored
    assert b"0.30000000000000004" in stored
    assert kept["one"] == 20.09
    many = cast("list[object]", kept["many"])
    assert [struct.pack("<d", value) for value in many[: len(floats)] if isinstance(value, float)] == [
        struct.pack("<d", value) for value in floats
    ]
    assert many[len(floats) :] == ["text", 3, None]
    assert isinstance(kept["nan"], float)
    assert math.isnan(kept["nan"])


def test_an_event_stored_with_binary_floats_still_reads() -> None:
    """Documents written before floats were stored as text hold MessagePack floats."""
    stored = msgspec.msgpack.encode(
        ["checkout", "web-1", {"ms": 20.09, "list": [1.5, "a"]}, "info", "done", "evt-1", 0]
    )

    event = tantivy_schema.decode_event(stored, tenant_id="acme", ts_us=1_700_000_000_000_000)

    assert event.fields == {"ms": 20.09, "list": [1.5, "a"]}
    assert (event.id, event.service, event.message) == ("evt-1", "checkout", "done")
