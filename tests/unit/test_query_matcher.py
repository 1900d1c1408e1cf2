"""The tail matcher's own promises: exact number edges, value shapes, time handling, speed; and time windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest
import tantivy

from mintlog.adapters.logstore.tantivy_schema import build_schema
from mintlog.domain.events import FieldValue, LogEvent
from mintlog.query import QuerySyntaxError, TimeWindow, parse, time_window
from mintlog.query.matcher import to_matcher
from mintlog.query.tantivy import to_tantivy

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def make_event(
    *,
    fields: dict[str, FieldValue] | None = None,
    message: str = "request served",
    timestamp: datetime = NOW,
    trace_id: str | None = None,
) -> LogEvent:
    return LogEvent(
        id="e1",
        tenant_id="acme",
        timestamp=timestamp,
        received_at=NOW,
        service="api",
        level="error",
        message=message,
        host="web-1",
        trace_id=trace_id,
        fields=fields or {},
    )


def matches(query: str, item: LogEvent) -> bool:
    return to_matcher(parse(query), NOW)(item)


@pytest.mark.parametrize(
    ("query", "value", "expected"),
    [
        ("fields.x:>0.1", 0.1, False),
        ("fields.x:>=0.1", 0.1, True),
        ("fields.x:<0.30000000000000004", 0.1 + 0.2, False),
        ("fields.x:<=0.30000000000000004", 0.1 + 0.2, True),
        ("fields.x:0.3", 0.1 + 0.2, False),
        ("fields.x:<0.10000000000000000001", 0.1, True),
        ("fields.x:>0.09999999999999999999", 0.1, True),
        ("fields.x:[1 TO 1]", 1.0, True),
        ("fields.x:{0 TO 2}", 1, True),
        ("fields.x:{0.5 TO 1.5}", 1, True),
        ("fields.x:{1 TO 2}", 1, False),
        ("fields.x:>9007199254740992", 9007199254740993, True),
        ("fields.x:>9007199254740992", 9007199254740992.0, False),
        ("fields.x:1", True, False),
        ("fields.x:true", True, True),
        ("fields.x:true", "true", True),
        ("fields.x:[0 TO 1]", True, False),
        ("fields.x:1", "1.000", True),
        ('fields.x:"1"', "1.000", False),
        ('fields.x:"1"', 1, True),
        ('fields.x:"1.0"', 1.0, True),
        ("fields.x:1e0", "1e0", True),
        ("fields.x:>0", "1e3", False),
        ("fields.x:>0", " 5", False),
        ("_exists_:fields.x", float("nan"), False),
        ("_exists_:fields.x", None, False),
        ("_exists_:fields.x", [], False),
        ("_exists_:fields.x", [None], False),
        ("_exists_:fields.x", "", True),
        ("_exists_:fields.x", [None, 0], True),
        ("fields.x:2", [1, 2, 3], True),
        ("fields.x:>5", [1, 2, 3], False),
        ("fields.x:a*", ["b", "abc"], True),
        ("fields.x:tru?", True, True),
        ("fields.x:5*", 500.5, True),
        ("-fields.x:5", None, True),
    ],
)
def test_field_values_compare_as_documented(query: str, value: FieldValue, expected: bool) -> None:
    assert matches(query, make_event(fields={"x": value})) is expected


def test_a_long_string_is_compared_by_its_first_8192_bytes() -> None:
    long_value = "é" * 5000  # 10000 bytes: its index text is the first 4096 characters

    assert matches("fields.x:é*", make_event(fields={"x": long_value}))
    assert not matches(f'fields.x:"{"é" * 2000}"', make_event(fields={"x": long_value}))
    assert matches("_exists_:fields.x", make_event(fields={"x": long_value}))
    assert matches("fields.x:>400", make_event(fields={"x": "500." + "0" * 3000}))


def test_naive_and_offset_timestamps_are_compared_in_utc() -> None:
    naive = make_event(timestamp=datetime(2026, 11, 26, 11, 30))
    offset = make_event(timestamp=datetime(2026, 11, 26, 13, 30, tzinfo=timezone(timedelta(hours=2))))

    assert matches("timestamp:>now-1h", naive)
    assert matches("timestamp:[2026-11-26T11:30:00Z TO 2026-11-26T11:30:00Z]", offset)
    assert not matches("timestamp:{2026-11-26T11:30:00Z TO *]", offset)


def test_relative_times_are_fixed_when_the_matcher_is_made() -> None:
    tail = to_matcher(parse("timestamp:>now-1m"), NOW)

    assert tail(make_event(timestamp=NOW - timedelta(seconds=30)))
    assert not tail(make_event(timestamp=NOW - timedelta(seconds=90)))


def test_an_out_of_range_relative_time_is_refused_when_compiling() -> None:
    node = parse("timestamp:>now-5000w")

    with pytest.raises(QuerySyntaxError) as caught:
        to_matcher(node, datetime(1, 2, 1, tzinfo=UTC))

    assert caught.value.position == 11


@pytest.mark.parametrize(
    ("query", "message", "expected"),
    [
        ("reset", "Connection RESET by peer", True),
        ("reset", "resetting", False),
        ("reset", "re_set", False),
        ("re_set", "re-set", True),
        ('"reset by"', "reset, by", True),
        ('"reset by"', "reset x by", False),
        ('"by reset"', "reset by", False),
        ('"a b"', "a " + "x" * 300 + " b", False),
        ('"a b"', "a " + "é" * 200 + " b", False),
        ('"a b"', "é a b", True),
        ("größe", "GRÖSSE Größe", True),
        ("strasse", "straße", False),
        ("ⅻ", "Ⅻ", True),
        ("İSTANBUL", "İstanbul", True),
        ("x" * 255, "x" * 255, True),
        ("x" * 255, "x" * 256, False),
    ],
)
def test_full_text_follows_the_index_analyzer(query: str, message: str, expected: bool) -> None:
    assert matches(query, make_event(message=message)) is expected


def test_keyword_fields_are_exact_and_trace_id_may_be_absent() -> None:
    item = make_event(trace_id="4bf92f35")

    assert matches("service:api host:web-1 level:error", item)
    assert not matches("service:Api", item)
    assert matches("trace_id:4bf9*", item)
    assert not matches("trace_id:4bf9*", make_event())
    assert matches("-_exists_:trace_id", make_event())


def test_the_common_filter_selects_every_matching_event_of_a_large_batch() -> None:
    # Its speed is measured by benchmarks/bench_query.py (docs/benchmarks.md), not asserted here.
    info = msgspec.structs.replace(make_event(), level="info")
    events = [make_event(), make_event(fields={"status": 500}), info] * 10_000
    predicate = to_matcher(parse("level:error AND service:api"), NOW)

    assert sum(1 for item in events if predicate(item)) == 20_000


def test_tantivy_refuses_fields_queries_on_a_schema_without_field_pairs() -> None:
    assert isinstance(to_tantivy(parse("fields.status:500"), build_schema(), NOW), tantivy.Query)
    builder = tantivy.SchemaBuilder()
    for name in ("service", "level", "host"):
        builder.add_text_field(name, tokenizer_name="raw", index_option="basic")
    builder.add_text_field("message", index_option="position")
    without_pairs = builder.build()

    assert isinstance(to_tantivy(parse("level:error timeout"), without_pairs, NOW), tantivy.Query)
    with pytest.raises(ValueError, match="field_pairs"):
        to_tantivy(parse("fields.status:500"), without_pairs, NOW)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("timeout", TimeWindow()),
        ("timestamp:>now-1h", TimeWindow(NOW - timedelta(hours=1), None)),
        ("timestamp:[now-2h TO now-1h] level:error", TimeWindow(NOW - timedelta(hours=2), NOW - timedelta(hours=1))),
        ("timestamp:>now-2h AND timestamp:<now-1h", TimeWindow(NOW - timedelta(hours=2), NOW - timedelta(hours=1))),
        ("timestamp:>now-1h OR timestamp:<now-3h", TimeWindow()),
        (
            "timestamp:[now-3h TO now-2h] OR timestamp:[now-1h TO now]",
            TimeWindow(NOW - timedelta(hours=3), NOW),
        ),
        ("NOT timestamp:>now-1h", TimeWindow()),
        ("timestamp:>now AND timestamp:<now-1h", None),
        ("blob " + "x" * 300, None),
    ],
)
def test_the_time_window_bounds_every_matching_event(query: str, expected: TimeWindow | None) -> None:
    assert time_window(parse(query), NOW) == expected
