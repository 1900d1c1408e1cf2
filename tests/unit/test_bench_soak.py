"""The soak's NATS consumer lag and window p99 (`benchmarks/soak.py`)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from benchmarks.soak import consumer_lag, window_p99_ms


@dataclass
class _Info:
    num_pending: int | None
    num_ack_pending: int | None


class _FakeJetStream:
    def __init__(self, infos: dict[tuple[str, str], _Info]) -> None:
        self.infos = infos
        self.asked: list[tuple[str, str]] = []

    async def consumer_info(self, stream: str, durable: str) -> _Info:
        self.asked.append((stream, durable))
        if (stream, durable) not in self.infos:
            raise LookupError("consumer not found")
        return self.infos[(stream, durable)]


async def test_consumer_lag_adds_pending_and_unacked_of_both_durable_consumers() -> None:
    js = _FakeJetStream({("LOGS_RAW", "pipeline"): _Info(1200, 300), ("LOGS_PARSED", "indexer"): _Info(None, 40)})
    assert await consumer_lag(js) == {"LOGS_RAW/pipeline": 1500, "LOGS_PARSED/indexer": 40}
    assert js.asked == [("LOGS_RAW", "pipeline"), ("LOGS_PARSED", "indexer")]


async def test_consumer_lag_is_minus_one_when_a_consumer_cannot_be_read() -> None:
    js = _FakeJetStream({("LOGS_RAW", "pipeline"): _Info(5, 0)})
    assert await consumer_lag(js) == {"LOGS_RAW/pipeline": 5, "LOGS_PARSED/indexer": -1}


def test_window_p99_in_milliseconds() -> None:
    assert window_p99_ms([0.010] * 99 + [0.500]) == pytest.approx(500.0)
    assert window_p99_ms([0.0123]) == pytest.approx(12.3)
    assert window_p99_ms([]) is None
