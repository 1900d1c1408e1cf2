"""Cursor pagination of the management lists: `limit` and an opaque `cursor` in, a `Page` out.

A cursor is the sort key of the last item of a page, base64url-encoded JSON. It is opaque to clients (its
format may change) and carries no authority: a list is always filtered by the caller's tenant first, so a
forged cursor can only move within what the caller may see anyway.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, Protocol, TypeVar, cast

import msgspec
from litestar import Request
from litestar.handlers.base import BaseRouteHandler
from litestar.params import QueryParameter

from mintlog.errors import BadRequest

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "Cursor",
    "Limit",
    "Page",
    "TimeWindow",
    "decode_cursor",
    "decode_time_cursor",
    "encode_cursor",
    "encode_time_cursor",
    "parse_limit",
    "refuse_undeclared_parameters",
    "refuse_unknown_parameters",
    "time_page",
]

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

Limit = Annotated[
    str | None,
    QueryParameter(
        name="limit", required=False, description=f"Items per page, 1-{MAX_LIMIT} (default {DEFAULT_LIMIT})."
    ),
]
"""The `limit` query parameter of a list (`parse_limit` reads it)."""
Cursor = Annotated[
    str | None, QueryParameter(name="cursor", required=False, description="The `next_cursor` of the previous page.")
]
"""The `cursor` query parameter of a list."""

_T = TypeVar("_T")
_V = TypeVar("_V")
_DIGITS = re.compile(r"[0-9]{1,6}")
_encoder = msgspec.json.Encoder()
_string_decoder = msgspec.json.Decoder(list[str])
_time_decoder = msgspec.json.Decoder(tuple[datetime, str])


class Page(msgspec.Struct, Generic[_T], frozen=True, kw_only=True):
    """One page of a list; pass `next_cursor` as `cursor` for the next one (null on the last page)."""

    items: list[_T]
    next_cursor: str | None


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
    if len(values) != 1 or "\x00" in values[0]:  # no sort key holds NUL (nor can PostgreSQL compare one)
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
    if at.tzinfo is None or "\x00" in item_id:
        raise _invalid_cursor()
    return at, item_id


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A page of a list ordered by (time, id): how many items, and after which (None: from the start)."""

    size: int
    after: tuple[datetime, str] | None

    @classmethod
    def of(cls, request: Request[Any, Any, Any], limit: str | None, cursor: str | None) -> TimeWindow:
        """The window a list request asks for: a 400 for a query parameter the route does not declare
        (`refuse_undeclared_parameters`), then for a bad `limit` or `cursor`."""
        refuse_undeclared_parameters(request)
        return cls(size=parse_limit(limit), after=decode_time_cursor(cursor))

    @property
    def fetch(self) -> int:
        """How many items to read: one more than the page, to tell whether another page follows."""
        return self.size + 1

    def page(self, found: Sequence[_Item], view: Callable[[_Item], _V]) -> Page[_V]:
        """The page of `found` (read with `limit=fetch`, ordered by (created_at, id)), each item as `view`
        shows it, and the cursor of the next page."""
        items, next_cursor = time_page(found, self.size)
        return Page(items=[view(item) for item in items], next_cursor=next_cursor)


_DECLARED_OPT = "declared_query_parameters"


def declared_parameters(handler: BaseRouteHandler) -> frozenset[str]:
    """The query parameters a route declares (as `QueryParameter`s), as they are sent (kept in its `opt`)."""
    found = handler.opt.get(_DECLARED_OPT)
    if not isinstance(found, frozenset):
        found = frozenset(
            definition.kwarg_definition.name or name
            for name, definition in handler.parsed_fn_signature.parameters.items()
            if isinstance(definition.kwarg_definition, QueryParameter)
        )
        handler.opt[_DECLARED_OPT] = found
    return cast("frozenset[str]", found)


def refuse_undeclared_parameters(request: Request[Any, Any, Any]) -> None:
    """`refuse_unknown_parameters` with the query parameters the request's route declares: what the OpenAPI
    document lists is exactly what the route accepts."""
    refuse_unknown_parameters(request.query_params, declared_parameters(request.route_handler))


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
