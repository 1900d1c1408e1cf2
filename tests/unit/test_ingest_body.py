from __future__ import annotations

import gzip
import zlib
from collections.abc import AsyncIterator

import pytest

from mintlog.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from mintlog.roles.ingest.body import check_content_type, read_limited_body


async def chunks(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def read(data: bytes, encoding: str | None = None, length: str | None = None, limit: int = 10_000) -> bytes:
    return await read_limited_body(chunks(data), content_encoding=encoding, content_length=length, max_bytes=limit)


async def test_plain_body_within_the_limit_is_returned() -> None:
    assert await read(b'{"events": []}') == b'{"events": []}'


async def test_declared_length_over_the_limit_is_refused_before_reading() -> None:
    with pytest.raises(PayloadTooLarge):
        await read(b"x", length="10001")


async def test_streamed_body_over_the_limit_is_refused() -> None:
    with pytest.raises(PayloadTooLarge):
        await read(b"x" * 10_001)


async def test_gzip_body_is_decompressed() -> None:
    assert await read(gzip.compress(b'{"events": [1]}'), "gzip") == b'{"events": [1]}'


async def test_deflate_body_is_decompressed() -> None:
    assert await read(zlib.compress(b"abc"), "deflate") == b"abc"


async def test_gzip_bomb_stops_at_the_limit() -> None:
    bomb = gzip.compress(b"0" * 50_000_000)
    assert len(bomb) < 100_000
    with pytest.raises(PayloadTooLarge) as error:
        await read(bomb, "gzip", limit=100_000)
    assert error.value.code == "decompressed_body_too_large"


async def test_corrupt_gzip_is_a_bad_request() -> None:
    with pytest.raises(BadRequest):
        await read(b"\x1f\x8b not gzip at all", "gzip")


async def test_truncated_gzip_is_a_bad_request() -> None:
    with pytest.raises(BadRequest):
        await read(gzip.compress(b"x" * 1000)[:-8], "gzip")


async def test_unknown_encoding_is_415() -> None:
    with pytest.raises(UnsupportedMediaType):
        await read(b"{}", "br")


@pytest.mark.parametrize(
    "content_type",
    [None, "", "application/json", "application/json; charset=utf-8", "application/vnd.x+json"],
)
def test_json_content_types_are_accepted(content_type: str | None) -> None:
    check_content_type(content_type)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_other_content_types_are_415(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType):
        check_content_type(content_type)
