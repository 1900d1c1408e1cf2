"""`benchmarks/ceiling.py`: events, bodies and bytes decoded are counted right."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from benchmarks.ceiling import measure_decode, measure_decode_typed

Measure = Callable[[list[bytes], int, float], dict[str, Any]]

TWO = json.dumps({"events": [{"message": "a"}, {"message": "b", "fields": {"n": 1}}]}).encode()
THREE = json.dumps({"events": [{"service": "s", "message": str(n)} for n in range(3)]}).encode()


@pytest.mark.parametrize("measure", [measure_decode, measure_decode_typed])
def test_zero_seconds_decodes_exactly_the_first_body(measure: Measure) -> None:
    result = measure([TWO, THREE], 999, 0.0)
    assert result["bodies"] == 1
    assert result["events"] == 2
    assert result["events_per_s"] == pytest.approx(2 / result["seconds"])
    assert result["mib_per_s"] == pytest.approx(len(TWO) / result["seconds"] / 2**20)


@pytest.mark.parametrize("measure", [measure_decode, measure_decode_typed])
def test_round_robin_counts_each_body_s_own_events(measure: Measure) -> None:
    result = measure([TWO, THREE], 999, 0.02)
    decoded = result["bodies"]
    assert decoded > 2
    assert result["events"] == (decoded // 2) * 5 + (2 if decoded % 2 else 0)
    assert result["bytes_per_event"] == pytest.approx(
        ((decoded // 2) * (len(TWO) + len(THREE)) + (len(TWO) if decoded % 2 else 0)) / result["events"]
    )
    assert result["events_per_s"] == pytest.approx(result["events"] / result["seconds"])


def test_bodies_without_an_events_list() -> None:
    assert measure_decode([b"[1, 2, 3, 4]"], 999, 0.0)["events"] == 4
    assert measure_decode([b'"x"'], 7, 0.0)["events"] == 7


def test_no_bodies_is_an_error() -> None:
    with pytest.raises(ValueError, match="no bodies"):
        measure_decode([], 500, 0.0)
