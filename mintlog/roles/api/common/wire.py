"""Reading the bodies of the management API, and the wire types every area shares (times, time zones).

Request bodies forbid unknown members, so a read-only member (`id` in a PATCH, `created_at`, `key`, …) or a
`tenant_id` is refused with 422 naming it, never ignored or obeyed. Malformed JSON is a 400; well-formed JSON
of the wrong shape is a 422 `validation_failed` with the member's path in `field`.

No value the management API stores or looks up may hold a NUL character (U+0000): PostgreSQL text cannot hold
one, so the rule is the same on every database. In a body (`\\u0000` in a string or a member name) it is a 422
`validation_failed` naming the member (`decode_body`); in a path parameter it names nothing, 404 `not_found`;
in a query parameter it is a 400 `invalid_parameter` naming it (`refuse_nul_in_parameters`, run by the API's
admission once the caller is admitted).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, TypeVar, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from litestar.connection import ASGIConnection
from litestar.params import QueryParameter
from msgspec import Meta

from mintlog.domain.timeexpr import parse_time_expression
from mintlog.errors import BadRequest, NotFound, PayloadTooLarge, UnprocessableEntity

__all__ = [
    "MAX_BODY_BYTES",
    "FromParameter",
    "TimeExpression",
    "TimeZoneName",
    "ToParameter",
    "check_time_zone",
    "decode_body",
    "invalid_field",
    "read_body",
    "refuse_nul_in_parameters",
    "time_parameter",
]

MAX_BODY_BYTES = 64 * 1024

TimeZoneName = Annotated[str, Meta(min_length=1, max_length=64, description="An IANA time zone, e.g. Europe/Berlin.")]
TimeExpression = Annotated[
    str,
    Meta(
        description="An RFC 3339 time (`2026-11-27T13:00:00Z`; UTC without an offset) or a time relative to now "
        "(`now`, `now-15m`, `now+1h`; units ms, s, m, h, d, w).",
        extra_json_schema={
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "string", "pattern": "^now([+-][0-9]{1,9}(ms|s|m|h|d|w))?$"},
            ],
        },
    ),
]
"""A time in a request, as `mintlog.domain.timeexpr.parse_time_expression` reads it."""
FromParameter = Annotated[
    TimeExpression | None, QueryParameter(name="from", required=False, description="The start (inclusive).")
]
ToParameter = Annotated[TimeExpression | None, QueryParameter(name="to", required=False, description="The end.")]

# Members a client may read but never write: naming one gets a clearer message than "unknown".
_READ_ONLY = frozenset(
    {
        "id",
        "tenant_id",
        "created_at",
        "updated_at",
        "deleted_at",
        "key",
        "key_hash",
        "prefix",
        "revoked_at",
        "last_used_at",
        "rotated_from",
        "status",
    }
)
_T = TypeVar("_T")
_UNKNOWN_FIELD = re.compile(r"unknown field `([^`]*)`")
_MISSING_FIELD = re.compile(r"missing required field `([^`]*)`")
_AT_PATH = re.compile(r" - at `\$\.?([^`]*)`$")
_NUL = "\x00"
# How JSON writes a NUL character (a raw control byte is malformed JSON): a body without it holds none.
_JSON_NUL = b"\\u0000"


def _validation_problem(message: str) -> UnprocessableEntity:
    unknown = _UNKNOWN_FIELD.search(message)
    missing = _MISSING_FIELD.search(message)
    at_path = _AT_PATH.search(message)
    prefix = at_path.group(1) + "." if at_path and at_path.group(1) else ""
    if unknown:
        field = prefix + unknown.group(1)
        reason = "is read-only" if unknown.group(1) in _READ_ONLY else "is not a known member"
        detail = f"`{field}` {reason}; remove it"
    elif missing:
        field = prefix + missing.group(1)
        detail = f"`{field}` is required"
    else:
        field = at_path.group(1) if at_path else ""
        detail = _AT_PATH.sub("", message) + (f" at `{field}`" if field else "")
    return UnprocessableEntity(f"invalid body: {detail}", code="validation_failed", extra={"field": field})


async def read_body(chunks: AsyncIterator[bytes], *, max_bytes: int = MAX_BODY_BYTES) -> bytes:
    """The request body, or a 413 `body_too_large` as soon as it exceeds `max_bytes` (read no further)."""
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > max_bytes:
            raise PayloadTooLarge(f"the body exceeds {max_bytes} bytes", code="body_too_large")
    return bytes(body)


def decode_body(body: bytes, decoder: msgspec.json.Decoder[_T], *, empty: _T | None = None) -> _T:
    """Decode a write body. An empty body is `empty` when given, else a 400 `empty_body`; malformed JSON is a
    400 `malformed_json`; a member of the wrong type, out of bounds, unknown or read-only is a 422
    `validation_failed` whose `field` names it (`""` for the body itself)."""
    if not body.strip():
        if empty is not None:
            return empty
        raise BadRequest("the body is empty; send a JSON object", code="empty_body")
    try:
        decoded = decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise _validation_problem(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}", code="malformed_json") from None
    except UnicodeDecodeError as exc:
        raise BadRequest(f"body is not valid UTF-8: {exc.reason}", code="malformed_json") from None
    if _JSON_NUL in body:
        field = _member_with_nul(msgspec.to_builtins(decoded))
        if field is not None:
            where = f"`{field}`" if field else "a member name"
            raise invalid_field(field, f"{where} holds a NUL character (\\u0000), which no stored value may hold")
    return decoded


def _member_with_nul(value: object) -> str | None:
    """The path of the first string of `value` (a decoded body) holding a NUL character, as `field` names it;
    a member name with one is its object's path. None when there is none. Iterative: bodies may nest deeply."""
    pending: list[tuple[str, object]] = [("", value)]
    while pending:
        path, item = pending.pop()
        if isinstance(item, str):
            if _NUL in item:
                return path
        elif isinstance(item, dict):
            members = cast("dict[object, object]", item)
            if any(_NUL in str(name) for name in members):
                return path
            named = [(f"{path}.{name}" if path else str(name), member) for name, member in members.items()]
            pending.extend(reversed(named))  # popped in document order
        elif isinstance(item, list):
            entries = cast("list[object]", item)
            pending.extend(reversed([(f"{path}[{index}]", entry) for index, entry in enumerate(entries)]))
    return None


def time_parameter(name: str, value: str | None, now: datetime) -> datetime | None:
    """The time a `TimeExpression` query parameter names (None when absent); a 400 `invalid_time` naming the
    parameter when it is neither form or out of range."""
    if value is None:
        return None
    try:
        return parse_time_expression(value, now)
    except ValueError as exc:
        raise BadRequest(f"`{name}`: {exc}", code="invalid_time") from None


def check_time_zone(name: str) -> str:
    """`name` when it is an IANA zone this process knows, else a 422 on `time_zone`."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise invalid_field(
            "time_zone", f"`time_zone` must be an IANA time zone such as Europe/Berlin or UTC, got {name!r}"
        ) from None
    return name


def invalid_field(field: str, detail: str) -> UnprocessableEntity:
    """A 422 `validation_failed` about one member, for checks msgspec cannot express."""
    return UnprocessableEntity(f"invalid body: {detail}", code="validation_failed", extra={"field": field})


def refuse_nul_in_parameters(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """A 404 `not_found` when a path parameter holds a NUL character (no id holds one), a 400
    `invalid_parameter` naming the query parameter whose name or value holds one."""
    for name, value in connection.path_params.items():
        if isinstance(value, str) and _NUL in value:
            raise NotFound(f"no object has the {name} {value!r}: ids never hold a NUL character")
    for name, value in connection.query_params.items():
        if _NUL in name or (isinstance(value, str) and _NUL in value):
            raise BadRequest(
                f"query parameter `{name}` holds a NUL character (%00), which no value may hold",
                code="invalid_parameter",
                extra={"parameter": name},
            )
