"""The bounded per-client buffer of a tail: order, skipping when full, and where the `dropped` marker goes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mintlog.domain.events import LogEvent
from mintlog.roles.api.logs.tail_buffer import Dropped, TailBuffer

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def event(number: int) -> LogEvent:
    return LogEvent(
        id=f"e{number:03d}",
        tenant_id="t1",
        timestamp=NOW,
        received_at=NOW,
        service="api",
        level="info",
        message=f"event {number}",
        host="h1",
    )


def drain(buffer: TailBuffer) -> list[str]:
    """Everything the client would get now: event ids and `dropped:N` markers."""
    taken: list[str] = []
    while (item := buffer.take()) is not None:
        taken.append(f"dropped:{item.count}" if isinstance(item, Dropped) else item.id)
    return taken


def test_events_come_out_in_arrival_order() -> None:
    buffer = TailBuffer(capacity=5)
    assert all(buffer.offer(event(number)) for number in range(3))
    assert drain(buffer) == ["e000", "e001", "e002"]
    assert buffer.take() is None


def test_a_full_buffer_skips_new_events_and_reports_them_once_the_client_catches_up() -> None:
    buffer = TailBuffer(capacity=2)
    accepted = [buffer.offer(event(number)) for number in range(5)]
    assert accepted == [True, True, False, False, False]
    assert drain(buffer) == ["e000", "e001", "dropped:3"]
    assert drain(buffer) == []  # reported once


def test_the_dropped_marker_sits_at_the_gap_when_events_arrive_after_it() -> None:
    buffer = TailBuffer(capacity=2)
    for number in range(4):  # e002 and e003 are skipped
        buffer.offer(event(number))
    assert buffer.take() == event(0)  # the client reads one: room for one more
    assert buffer.offer(event(4))
    assert not buffer.offer(event(5))  # full again
    assert drain(buffer) == ["e001", "dropped:2", "e004", "dropped:1"]


def test_the_buffer_never_holds_more_than_its_capacity_of_events() -> None:
    buffer = TailBuffer(capacity=3)
    for round_number in range(10):
        for number in range(5):
            buffer.offer(event(round_number * 10 + number))
        buffer.take()
    events = [item for item in drain(buffer) if not item.startswith("dropped")]
    assert len(events) == 3


def test_a_closed_buffer_refuses_events_and_drains_what_it_holds() -> None:
    buffer = TailBuffer(capacity=3)
    buffer.offer(event(1))
    buffer.close()
    assert not buffer.offer(event(2))
    assert buffer.closed
    assert drain(buffer) == ["e001"]


async def test_wait_wakes_up_for_an_event_or_a_close_and_times_out_otherwise() -> None:
    buffer = TailBuffer(capacity=3)
    assert not await buffer.wait(0)
    buffer.offer(event(1))
    assert await buffer.wait(0)
    buffer.take()
    buffer.close()
    assert await buffer.wait(0)


def test_a_buffer_holds_at_least_one_event() -> None:
    with pytest.raises(ValueError, match="at least one"):
        TailBuffer(capacity=0)
