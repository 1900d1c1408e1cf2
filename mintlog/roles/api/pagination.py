"""Cursor pagination of the management lists: `limit` and an opaque `cursor` in, `next_cursor` out.

A cursor is the sort key of the last item of a page, base64url-encoded JSON. It is opaque to clients (its
format may change) and carries no authority: a list is always filtered by the caller's tenant first, so a
forged cursor can only move within what the caller may see anyway.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol, TypeVar

import msgspec

from mintlog.errors import BadRequest

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "decode_cursor",
    "decode_time_cursor",
    "encode_cursor",
    "encode_time_cursor",
    "parse_limit",
    "refuse_unknown_parameters",
    "time_page",
]

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

_DIGITS = re.compile(r"[0-9]{1,6}")
_encoder = msgspec.json.Encoder()
_string_decoder = msgspec.json.Decoder(list[str])
_time_decoder = msgspec.json.Decoder(tuple[datetime, str])


def _invalid_cursor() -> BadRequest:
    return BadRequest("`cursor` is not a cursor this list returned", code="invalid_cursor")


def parse_limit(limit: str | None) -> int:
    """The page size: `DEFAULT_LIMIT` when absent; a 400 `invalid_limit` unless an integer in 1..`MAX_LIMIT`."""
    if limit is None:
        return DEFAULT_LIMIT
    if not _DIGITS.fullmatch(limit) or not 1 <= int(limit) <= MAX_LIMIT:
        raise BadRequest(f"`limit` must be an integer from 1 to {MAX_LIMIT}, got {limit!r}", code="invalid_limit")
    return int(limit)


def encode_cursor(value: str) -> str:
    """The cursor after an item whose sort key is one string."""
    return base64.urlsafe_b64encode(_encoder.encode([value])).decode().rstrip("=")


def _decode(cursor: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise _invalid_cursor() from None


def decode_cursor(cursor: str | None) -> str | None:
    """The sort key `encode_cursor` encoded; None for no cursor; a 400 `invalid_cursor` for anything else."""
    if cursor is None:
        return None
    try:
        values = _string_decoder.decode(_decode(cursor))
    except msgspec.DecodeError:
        raise _invalid_cursor() from None
    if len(values) != 1:
        raise _invalid_cursor()
    return values[0]


def encode_time_cursor(at: datetime, item_id: str) -> str:
    """The cursor after an item sorted by (time, id)."""
    return base64.urlsafe_b64encode(_encoder.encode((at, item_id))).decode().rstrip("=")


class _TimeOrdered(Protocol):
    @property
    def created_at(self) -> datetime: ...

    @property
    def id(self) -> str: ...


_Item = TypeVar("_Item", bound=_TimeOrdered)


def time_page(found: Sequence[_Item], size: int) -> tuple[list[_Item], str | None]:
    """The first `size` items of `found` (read with `limit=size + 1`, ordered by (created_at, id)) and the
    cursor of the next page, None when there is none."""
    page = list(found[:size])
    return page, encode_time_cursor(page[-1].created_at, page[-1].id) if len(found) > size else None


def decode_time_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    """The (time, id) `encode_time_cursor` encoded; None for no cursor; a 400 `invalid_cursor` otherwise."""
    if cursor is None:
        return None
    try:
        at, item_id = _time_decoder.decode(_decode(cursor))
    except msgspec.DecodeError:
        raise _invalid_cursor() from None
    if at.tzinfo is None:
        raise _invalid_cursor()
    return at, item_id


def refuse_unknown_parameters(query: Mapping[str, object], allowed: frozenset[str]) -> None:
    """A 400 `unknown_parameter` naming the first query parameter not in `allowed` (a `tenant_id` among
    them): a filter the endpoint does not support is refused, never silently ignored."""
    for name in query:
        if name not in allowed:
            raise BadRequest(
                f"unknown query parameter `{name}`; this endpoint accepts {', '.join(sorted(allowed)) or 'none'}",
                code="unknown_parameter",
                extra={"parameter": name},
            )
