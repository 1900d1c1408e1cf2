"""`pairs_and_numbers`, the indexer's one-pass form of `field_pairs` plus the numeric columns, must give
exactly what the reference definitions give, whatever the fields hold."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from mintlog.query.values import MAX_VALUE_TEXT_BYTES, field_pairs, pairs_and_numbers


def reference_numbers(fields: dict[str, Any]) -> dict[str, Any]:
    """The numbers of `fields` as the Tantivy store defines them: ints and finite floats, never bools."""

    def number(value: object) -> int | float | None:
        if isinstance(value, bool):
            return None
        if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
            return value
        return None

    numbers: dict[str, Any] = {}
    for key, value in fields.items():
        if isinstance(value, list):
            kept = [n for n in map(number, value) if n is not None]  # pyright: ignore[reportUnknownArgumentType]
            if kept:
                numbers[key] = kept
        elif (n := number(value)) is not None:
            numbers[key] = n
    return numbers


CASES: list[dict[str, Any]] = [
    {},
    {"user": "u1", "status": 200, "latency_ms": 12.5, "ok": True, "gone": None},
    {"a=b": "c", "back\\slash": "x", "=": 1},
    {"big": 1e300, "small": 1e-7, "nan": math.nan, "inf": -math.inf, "neg": -0.0},
    {"list": [1, 1, "1", 2.5, True, None, math.nan, "x", "x"], "empty": [], "bools": [True, False]},
    {"long": "é" * (MAX_VALUE_TEXT_BYTES // 2 + 10), "huge_int": 10**40},
]


@pytest.mark.parametrize("fields", CASES)
def test_same_as_the_reference_definitions(fields: dict[str, Any]) -> None:
    pairs, numbers = pairs_and_numbers(fields)
    assert pairs == field_pairs(fields)
    assert numbers == reference_numbers(fields)


def test_same_on_random_fields() -> None:
    rng = random.Random(7)
    scalars: list[Any] = [0, -3, 7, 2.25, 1e21, math.inf, True, False, None, "", "v", "a=b", "x" * 3000]
    for _ in range(2000):
        fields: dict[str, Any] = {}
        for _ in range(rng.randint(0, 6)):
            key = rng.choice(["k", "a=b", "c\\d", "status", "user.id", "ü"]) + str(rng.randint(0, 3))
            if rng.random() < 0.2:
                fields[key] = [rng.choice(scalars) for _ in range(rng.randint(0, 4))]
            else:
                fields[key] = rng.choice(scalars)
        pairs, numbers = pairs_and_numbers(fields)
        assert pairs == field_pairs(fields), fields
        assert numbers == reference_numbers(fields), fields


def test_many_distinct_keys_keep_the_prefix_cache_bounded_and_right() -> None:
    for index in range(10_000):
        fields = {f"key{index}=x": index}
        assert pairs_and_numbers(fields) == (field_pairs(fields), {f"key{index}=x": index})
