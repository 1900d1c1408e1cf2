from __future__ import annotations

import gzip
import zlib
from collections.abc import AsyncIterator

import pytest

from mintlog.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from mintlog.roles.ingest.body import MAX_GZIP_MEMBERS, read_limited_body
from mintlog.roles.ingest.decoders.native import check_content_type


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


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "text/plain; charset=utf-8", "application/octet-stream"],
)
def test_the_types_clients_send_by_default_are_accepted_like_every_api_endpoint(content_type: str) -> None:
    check_content_type(content_type)  # curl -d sends form-urlencoded; the body is read as JSON anyway


@pytest.mark.parametrize(
    "content_type", ["multipart/form-data; boundary=x", "application/x-ndjson", "application/xml", "text/csv"]
)
def test_a_type_naming_another_format_is_415_saying_which_header_to_send(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType) as refused:
        check_content_type(content_type)
    assert refused.value.code == "unsupported_content_type"
    assert repr(content_type.split(";")[0]) in refused.value.detail
    assert "`Content-Type: application/json`" in refused.value.detail


async def test_every_gzip_member_is_read_as_one_stream() -> None:
    body = gzip.compress(b'{"events": [{"message": "one"},') + gzip.compress(b' {"message": "two"}]}')
    assert await read(body, "gzip") == b'{"events": [{"message": "one"}, {"message": "two"}]}'


async def test_the_decompressed_limit_holds_for_all_members_together() -> None:
    member = gzip.compress(b"x" * 6_000)
    assert len(await read(member, "gzip")) == 6_000
    with pytest.raises(PayloadTooLarge) as error:
        await read(member + member, "gzip")
    assert error.value.code == "decompressed_body_too_large"


@pytest.mark.parametrize(
    "trailer",
    [b"garbage", b"\x00" * 8, b"{}", b"\x1f"],
    ids=["text", "zero-padding", "json", "half-a-magic-number"],
)
async def test_bytes_after_a_gzip_member_are_refused(trailer: bytes) -> None:
    body = gzip.compress(b'{"events": [{"message": "x"}]}')
    with pytest.raises(BadRequest) as error:
        await read(body + trailer, "gzip")
    assert error.value.code == "trailing_data"
    assert f"{len(trailer)} bytes after the end of its gzip data (at byte {len(body)})" in error.value.detail


async def test_a_corrupt_second_gzip_member_is_a_bad_request() -> None:
    body = gzip.compress(b"{}") + b"\x1f\x8b not gzip at all"
    with pytest.raises(BadRequest) as error:
        await read(body, "gzip")
    assert error.value.code == "bad_encoding"


async def test_a_truncated_second_gzip_member_is_a_bad_request() -> None:
    body = gzip.compress(b"{}") + gzip.compress(b"x" * 1000)[:-8]
    with pytest.raises(BadRequest) as error:
        await read(body, "gzip")
    assert error.value.detail == "compressed body is truncated"


async def test_bytes_after_a_deflate_stream_are_refused() -> None:
    with pytest.raises(BadRequest) as error:
        await read(zlib.compress(b"abc") + zlib.compress(b"def"), "deflate")
    assert error.value.code == "trailing_data"


async def test_gzip_members_past_the_limit_are_refused() -> None:
    empty_member = gzip.compress(b"", mtime=0)
    within = empty_member * MAX_GZIP_MEMBERS + gzip.compress(b"{}")
    with pytest.raises(BadRequest) as error:
        await read(within, "gzip", limit=len(within) + 1)
    assert error.value.detail == f"body has more than {MAX_GZIP_MEMBERS} gzip members"
    assert await read(empty_member * (MAX_GZIP_MEMBERS - 1) + gzip.compress(b"{}"), "gzip", limit=100_000) == b"{}"
