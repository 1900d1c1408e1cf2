"""The opaque search cursor: where the next page starts, as a URL-safe string.

A cursor is `SearchAfter` (the last event's timestamp in microseconds and its id) plus the sort order it was
made for, in MessagePack, base64url without padding. It holds no tenant and no secret: it only says where to
continue, and the tenant always comes from the API key. A cursor from an `asc` search is refused by a
`desc` search (and vice versa) instead of silently restarting elsewhere.
"""

from __future__ import annotations

import base64
import binascii
from typing import Literal

import msgspec

from mintlog.errors import BadRequest
from mintlog.ports.logstore import SearchAfter

__all__ = ["decode_cursor", "encode_cursor"]

_VERSION = 1
_MAX_CURSOR_CHARS = 2048


class _Cursor(msgspec.Struct, array_like=True, frozen=True):
    version: int
    order: Literal["desc", "asc"]
    timestamp_us: int
    event_id: str


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_Cursor)


def encode_cursor(position: SearchAfter, order: Literal["desc", "asc"]) -> str:
    """The cursor continuing after `position` in `order`."""
    packed = _encoder.encode(_Cursor(_VERSION, order, position.timestamp_us, position.event_id))
    return base64.urlsafe_b64encode(packed).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, order: Literal["desc", "asc"]) -> SearchAfter:
    """The position a cursor continues after. Raises `BadRequest` (code `invalid_cursor`) for anything else."""
    if not cursor or len(cursor) > _MAX_CURSOR_CHARS:
        raise BadRequest("cursor is not a cursor returned by this API", code="invalid_cursor")
    try:
        packed = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = _decoder.decode(packed)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise BadRequest("cursor is not a cursor returned by this API", code="invalid_cursor") from None
    if decoded.version != _VERSION:
        raise BadRequest("cursor comes from another version of the API; start again without it", code="invalid_cursor")
    if decoded.order != order:
        raise BadRequest(
            f"cursor was made for sort {decoded.order!r}, not {order!r}; keep the sort while paging",
            code="invalid_cursor",
        )
    return SearchAfter(timestamp_us=decoded.timestamp_us, event_id=decoded.event_id)
