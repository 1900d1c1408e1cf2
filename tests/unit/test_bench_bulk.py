"""`benchmarks/opensearch_bulk.py`: an ingest body becomes the `_bulk` NDJSON of the same events."""

from __future__ import annotations

import json
from datetime import date

import pytest

from benchmarks.opensearch_bulk import bulk_ndjson, event_day, index_template

EVENTS = [
    {"timestamp": "2026-11-26T23:59:59.999Z", "service": "checkout", "message": "a", "fields": {"status": 200}},
    {"timestamp": "2026-11-27T01:30:00+02:00", "service": "payments", "message": "b"},  # 2026-11-26 in UTC
    {"timestamp": 1795737600000, "service": "auth", "message": "c", "fields": {"user": "u1"}},  # ms: 2026-11-27
    {"service": "search", "message": "no timestamp"},
]


def body(events: list[dict[str, object]]) -> bytes:
    return json.dumps({"events": events}).encode()


def test_one_create_action_per_event_then_the_same_event_in_its_daily_index() -> None:
    ndjson, count = bulk_ndjson(body(EVENTS), "bulkbench", fallback_day=date(2030, 1, 2))

    assert count == 4
    assert ndjson.endswith(b"\n")
    lines = [json.loads(line) for line in ndjson.decode().splitlines()]
    assert len(lines) == 8
    actions, documents = lines[0::2], lines[1::2]
    assert documents == EVENTS
    assert [action["create"]["_index"] for action in actions] == [
        "bulkbench-bench-2026.11.26",
        "bulkbench-bench-2026.11.26",
        "bulkbench-bench-2026.11.27",
        "bulkbench-bench-2030.01.02",
    ]
    assert all(list(action) == ["create"] and list(action["create"]) == ["_index"] for action in actions)


def test_tenant_is_part_of_the_index_name_as_in_mintlog() -> None:
    ndjson, _ = bulk_ndjson(body(EVENTS[:1]), "bb", tenant="acme")
    assert json.loads(ndjson.splitlines()[0]) == {"create": {"_index": "bb-acme-2026.11.26"}}


@pytest.mark.parametrize(
    ("stamp", "day"),
    [
        ("2026-11-27T00:00:00Z", date(2026, 11, 27)),
        ("2026-11-27T00:30:00+01:00", date(2026, 11, 26)),
        ("2026-11-27T10:00:00", date(2026, 11, 27)),  # naive: UTC
        (1795737600, date(2026, 11, 27)),  # seconds
        (1795737600_000_000, date(2026, 11, 27)),  # microseconds
        ("yesterday", date(2000, 1, 1)),
        (None, date(2000, 1, 1)),
        (True, date(2000, 1, 1)),
    ],
)
def test_event_day(stamp: object, day: date) -> None:
    assert event_day({"timestamp": stamp}, date(2000, 1, 1)) == day


def test_refuses_what_is_not_an_ingest_body_or_a_valid_prefix() -> None:
    with pytest.raises(ValueError, match="events"):
        bulk_ndjson(b"[1, 2]", "bulkbench")
    with pytest.raises(ValueError, match="prefix"):
        bulk_ndjson(body(EVENTS), "bulk-bench")


def test_template_is_one_shard_no_replica_and_default_mapping() -> None:
    template = index_template("bulkbench")
    assert template["index_patterns"] == ["bulkbench-*"]
    assert template["template"] == {"settings": {"index": {"number_of_shards": 1, "number_of_replicas": 0}}}
