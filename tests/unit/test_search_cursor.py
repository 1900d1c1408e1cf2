"""The opaque search cursor: it round-trips, and anything else is a clear 400."""

from __future__ import annotations

import base64
from typing import Literal

import msgspec
import pytest

from mintlog.errors import BadRequest
from mintlog.ports.logstore import SearchAfter
from mintlog.roles.api.common.cursor import decode_cursor, encode_cursor


@pytest.mark.parametrize("order", ["desc", "asc"])
@pytest.mark.parametrize(
    "position",
    [SearchAfter(0, "a"), SearchAfter(1_732_000_000_123_456, "01JD7Z-00042"), SearchAfter(-5, "é/?&=")],
)
def test_a_cursor_round_trips_and_is_url_safe(position: SearchAfter, order: Literal["desc", "asc"]) -> None:
    cursor = encode_cursor(position, order)

    assert decode_cursor(cursor, order) == position
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!!!",
        "x" * 3000,
        base64.urlsafe_b64encode(b"\x93\x01\x02\x03").decode(),
        base64.urlsafe_b64encode(msgspec.msgpack.encode([1, "sideways", 5, "id"])).decode(),
        base64.urlsafe_b64encode(msgspec.msgpack.encode([9, "desc", 5, "id"])).decode(),
    ],
)
def test_anything_but_a_cursor_is_invalid_cursor(cursor: str) -> None:
    with pytest.raises(BadRequest) as raised:
        decode_cursor(cursor, "desc")

    assert raised.value.code == "invalid_cursor"


def test_a_cursor_keeps_its_sort_order() -> None:
    cursor = encode_cursor(SearchAfter(10, "evt"), "asc")

    with pytest.raises(BadRequest, match="sort 'asc'"):
        decode_cursor(cursor, "desc")
