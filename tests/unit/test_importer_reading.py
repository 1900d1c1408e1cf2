"""`mintlog import`'s reading and batching (pure, no network): files, formats, lines, events, batches, keys."""

from __future__ import annotations

import gzip
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from mintlog.importer.batching import ENVELOPE_BYTES, BatchLimits, batch_events, idempotency_key
from mintlog.importer.reading import (
    Encoded,
    Line,
    LineCounts,
    LineEncoder,
    Refused,
    SourceFile,
    detect_format,
    find_files,
    open_file,
    read_lines,
    time_reader,
)
from mintlog.parsing.timestamps import TimeContext

CONTEXT = TimeContext(received_at=datetime(2026, 12, 5, 12, 0, tzinfo=UTC))


def lines_of(data: bytes, cap: int = 1024) -> list[Line]:
    return list(read_lines(io.BytesIO(data), cap))


def encoder(
    file_format: str = "text",
    *,
    service: str | None = None,
    timestamps: str = "server",
    max_line_bytes: int = 1024,
    max_event_bytes: int = 4096,
    counts: LineCounts | None = None,
) -> LineEncoder:
    return LineEncoder(
        "ndjson" if file_format == "ndjson" else "text",
        service=service,
        reader=time_reader(timestamps),
        context=CONTEXT,
        max_line_bytes=max_line_bytes,
        max_event_bytes=max_event_bytes,
        counts=counts if counts is not None else LineCounts(),
    )


def events_of(enc: LineEncoder, data: bytes) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    for item in enc.encode(lines_of(data, enc.read_cap)):
        assert isinstance(item, Encoded), item
        found.append(json.loads(item.part))
    return found


# ------------------------------------------------------------------ lines


def test_lines_lose_lf_and_crlf_endings_and_keep_their_offsets() -> None:
    lines = lines_of(b"first\r\nsecond\n\nlast without ending")
    assert [(line.number, line.offset, line.data) for line in lines] == [
        (1, 0, b"first"),
        (2, 7, b"second"),
        (3, 14, b""),
        (4, 15, b"last without ending"),
    ]


def test_a_line_over_the_cap_is_cut_the_rest_dropped_and_the_next_line_read_whole() -> None:
    huge = b"x" * 10_000
    lines = lines_of(huge + b"\r\nnext\n", cap=100)
    assert lines[0].data == b"x" * 100
    assert lines[0].length == 10_000
    assert lines[0].cut
    assert (lines[1].data, lines[1].offset, lines[1].cut) == (b"next", 10_002, False)


def test_a_line_of_exactly_the_cap_is_whole() -> None:
    [line] = lines_of(b"y" * 100 + b"\r\n", cap=100)
    assert (len(line.data), line.length, line.cut) == (100, 100, False)


def test_gzip_is_streamed_by_its_magic_bytes_whatever_the_name_members_joined(tmp_path: Path) -> None:
    path = tmp_path / "app.log.1"  # no .gz suffix
    path.write_bytes(gzip.compress(b"one\ntwo\n") + gzip.compress(b"three\n"))
    [source], missing = find_files([str(path)])
    assert missing == []
    assert source.compressed
    raw, stream = open_file(source)
    with raw, stream:
        assert [line.data for line in read_lines(stream, 100)] == [b"one", b"two", b"three"]
        assert raw.tell() == source.size


# ------------------------------------------------------------------ files


def test_directories_are_searched_recursively_globs_expand_and_each_file_counts_once(tmp_path: Path) -> None:
    (tmp_path / "a" / "deep").mkdir(parents=True)
    for name in ("a/1.log", "a/deep/2.log", "a/deep/3.json", "b.log"):
        (tmp_path / name).write_text("x\n")
    files, missing = find_files(
        [str(tmp_path / "a"), str(tmp_path / "**" / "*.log"), str(tmp_path / "nothing*"), str(tmp_path / "gone.log")]
    )
    names = [source.path.relative_to(tmp_path).as_posix() for source in files]
    assert names == ["a/1.log", "a/deep/2.log", "a/deep/3.json", "b.log"]
    assert missing == [str(tmp_path / "nothing*"), str(tmp_path / "gone.log")]
    assert all(source.path.is_absolute() for source in files)


# ------------------------------------------------------------------ formats


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'\n\n{"msg": "a"}\n{"level": "warn", "message": "b"}\n', "ndjson"),
        (b'{"msg": "a"}\nplain line\n', "text"),
        (b"2026-03-05 10:12:01 INFO started\n", "text"),
        (b"[1, 2]\n", "text"),
        (b'{"broken": \n', "text"),
        (b"", "text"),
        (b"\n  \n", "text"),
    ],
)
def test_format_is_decided_by_the_first_non_blank_lines(content: bytes, expected: str) -> None:
    assert detect_format(lines_of(content)) == expected


def test_a_json_line_too_long_to_read_whole_still_counts_as_ndjson() -> None:
    content = b'{"message": "' + b"z" * 500 + b'"}\n{"msg": "b"}\n'
    assert detect_format(lines_of(content, cap=100)) == "ndjson"


# ------------------------------------------------------------------ events


def test_text_lines_become_messages_with_the_service_blank_lines_skipped() -> None:
    counts = LineCounts()
    events = events_of(encoder(service="web", counts=counts), b'GET / 200\n\n  \nsaid "hi"\n')
    assert events == [{"message": "GET / 200", "service": "web"}, {"message": 'said "hi"', "service": "web"}]
    assert (counts.lines, counts.blank) == (4, 2)


def test_invalid_utf8_is_replaced_and_counted_never_raised() -> None:
    counts = LineCounts()
    events = events_of(encoder(counts=counts), b"caf\xe9 ok\n\xff\xfe\n")
    assert events == [{"message": "caf\ufffd ok"}, {"message": "\ufffd\ufffd"}]
    assert counts.invalid_utf8 == 2


def test_a_long_text_line_is_truncated_on_a_character_boundary_and_marked() -> None:
    counts = LineCounts()
    line = "é" * 100  # 200 bytes
    [event] = events_of(encoder(max_line_bytes=51, counts=counts), line.encode() + b"\n")
    assert event["message"] == "é" * 25  # 50 bytes: the 26th character would need byte 52
    assert event["fields"] == {"import": {"truncated_from_bytes": 200}}
    assert counts.truncated == 1


def test_ndjson_objects_are_sent_as_written_and_get_the_service_only_when_they_name_none() -> None:
    content = (
        b'{"msg": "a", "service": "own"}\n'
        b'{"msg": "b", "service_name": "alias"}\n'
        b'{"msg": "c", "service": null}\n'
        b'{"msg": "d", "@timestamp": "2026-01-01T00:00:00Z"}\n'
    )
    events = events_of(encoder("ndjson", service="cli"), content)
    assert [event.get("service") for event in events] == ["own", None, "cli", "cli"]
    assert events[1]["service_name"] == "alias"
    assert events[3]["@timestamp"] == "2026-01-01T00:00:00Z"


def test_ndjson_lines_that_are_not_objects_are_sent_as_text_and_counted() -> None:
    counts = LineCounts()
    events = events_of(encoder("ndjson", counts=counts), b'{"msg": "a"}\nnot json\n[1]\n{"msg": "caf\xe9"}\n')
    assert events == [{"msg": "a"}, {"message": "not json"}, {"message": "[1]"}, {"msg": "caf\ufffd"}]
    assert (counts.not_json, counts.invalid_utf8) == (2, 1)


def test_an_ndjson_line_larger_than_a_batch_is_refused_with_its_line_number() -> None:
    counts = LineCounts()
    enc = encoder("ndjson", max_event_bytes=64, counts=counts)
    items = list(enc.encode(lines_of(b'{"msg": "' + b"q" * 200 + b'"}\n{"msg": "ok"}\n', enc.read_cap)))
    assert isinstance(items[0], Refused)
    assert items[0].line == 1
    assert "over the 64 bytes" in items[0].reason
    assert isinstance(items[1], Encoded)
    assert counts.too_large == 1


def test_client_side_timestamps_auto_use_the_pipelines_detection() -> None:
    counts = LineCounts()
    events = events_of(
        encoder(timestamps="auto", counts=counts),
        b"2026/03/05 10:12:01 [error] 1#1: upstream timed out\nno time here\n",
    )
    assert events[0]["timestamp"] == "2026-03-05T10:12:01Z"
    assert "timestamp" not in events[1]
    assert counts.timestamps_found == 1


def test_client_side_timestamps_with_a_strptime_format_read_the_leading_words() -> None:
    events = events_of(
        encoder(timestamps="%d.%m.%Y %H:%M:%S"), b"05.03.2026 10:12:01 disk full\n05.03.2026 noon\nshort\n"
    )
    assert events[0]["timestamp"] == "2026-03-05T10:12:01Z"
    assert "timestamp" not in events[1]
    assert "timestamp" not in events[2]


@pytest.mark.parametrize("spec", ["sometimes", "", "  "])
def test_a_timestamps_option_that_is_neither_mode_nor_format_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="--timestamps"):
        time_reader(spec)


# ------------------------------------------------------------------ batches and keys


def encoded(count: int, size: int = 20) -> list[Encoded | Refused]:
    return [
        Encoded(line=n + 1, offset=n * 100, part=msgspec.json.encode({"message": "m" * size})) for n in range(count)
    ]


def test_batches_hold_at_most_the_event_count() -> None:
    refused: list[Refused] = []
    batches = list(batch_events("/f", encoded(25), BatchLimits(max_events=10, max_bytes=1 << 20), refused))
    assert [batch.events for batch in batches] == [10, 10, 5]
    assert [batch.lines[0] for batch in batches] == [1, 11, 21]
    assert json.loads(batches[2].body) == {"events": [{"message": "m" * 20}] * 5}


def test_batch_bodies_fit_the_byte_limit_exactly() -> None:
    part = len(msgspec.json.encode({"message": "m" * 20}))
    max_bytes = ENVELOPE_BYTES + 3 * part + 2  # exactly three events and their two commas
    batches = list(batch_events("/f", encoded(7), BatchLimits(max_events=100, max_bytes=max_bytes), []))
    assert [batch.events for batch in batches] == [3, 3, 1]
    assert len(batches[0].body) == max_bytes
    assert all(len(batch.body) <= max_bytes for batch in batches)


def test_refused_items_take_no_room_and_are_handed_back() -> None:
    items = [*encoded(2), Refused(line=3, reason="too big"), *encoded(1)]
    refused: list[Refused] = []
    batches = list(batch_events("/f", items, BatchLimits(max_events=100, max_bytes=1 << 20), refused))
    assert [batch.events for batch in batches] == [3]
    assert refused == [Refused(line=3, reason="too big")]


def test_keys_are_deterministic_and_depend_on_path_offset_and_body() -> None:
    limits = BatchLimits(max_events=10, max_bytes=1 << 20)
    first = [batch.key for batch in batch_events("/logs/a.log", encoded(30), limits, [])]
    again = [batch.key for batch in batch_events("/logs/a.log", encoded(30), limits, [])]
    other_path = [batch.key for batch in batch_events("/logs/b.log", encoded(30), limits, [])]
    assert first == again
    assert len(set(first)) == 3
    assert set(first).isdisjoint(other_path)
    assert idempotency_key("/f", 0, b"x") != idempotency_key("/f", 1, b"x")
    assert idempotency_key("/f", 0, b"x") != idempotency_key("/f", 0, b"y")
    assert all(key.startswith("mintlog-import-") and len(key) <= 200 for key in first)


def test_halves_cover_the_batch_in_order_each_with_its_own_key() -> None:
    [batch] = batch_events("/f", encoded(5), BatchLimits(max_events=10, max_bytes=1 << 20), [])
    first, second = batch.halves()
    assert (first.lines, second.lines) == ((1, 2), (3, 4, 5))
    assert first.parts + second.parts == batch.parts
    assert len({batch.key, first.key, second.key}) == 3
    assert [half.key for half in batch.halves()] == [first.key, second.key]


def test_source_file_records_size_and_mtime(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    path.write_bytes(b"abc\n")
    [source], _ = find_files([str(path)])
    assert source == SourceFile(
        path=path.resolve(), size=4, modified=datetime.fromtimestamp(path.stat().st_mtime, UTC), compressed=False
    )
