"""Reading an ingest request body within limits: size before and after decompression, encodings."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

from mintlog.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

__all__ = ["check_content_type", "read_limited_body"]

_JSON_TYPES = ("application/json", "text/json")


def check_content_type(content_type: str | None) -> None:
    """Accept JSON (`application/json`, `*/*+json`) or no type at all; anything else is 415."""
    if not content_type:
        return
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in _JSON_TYPES or media_type.endswith("+json"):
        return
    raise UnsupportedMediaType(
        f"Content-Type {media_type!r} is not accepted; send application/json", code="unsupported_content_type"
    )


async def read_limited_body(
    chunks: AsyncIterator[bytes], *, content_encoding: str | None, content_length: str | None, max_bytes: int
) -> bytes:
    """The request body, decompressed, refusing anything over `max_bytes` on the wire or once decompressed.

    A gzip bomb stops at `max_bytes` of output: decompression never allocates more than that.
    """
    encoding = (content_encoding or "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip", "deflate"):
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding!r} is not accepted; use gzip or none",
            code="unsupported_content_encoding",
        )
    if content_length is not None and content_length.isdigit() and int(content_length) > max_bytes:
        raise PayloadTooLarge(f"body is {content_length} bytes; the limit is {max_bytes}", code="body_too_large")

    received = 0
    parts: list[bytes] = []
    async for chunk in chunks:
        received += len(chunk)
        if received > max_bytes:
            raise PayloadTooLarge(f"body exceeds the limit of {max_bytes} bytes", code="body_too_large")
        parts.append(chunk)
    body = b"".join(parts)
    if encoding == "identity":
        return body
    return _decompress(body, gzip=encoding != "deflate", max_bytes=max_bytes)


def _decompress(body: bytes, *, gzip: bool, max_bytes: int) -> bytes:
    decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS)
    try:
        output = decompressor.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise BadRequest(f"body is not valid {'gzip' if gzip else 'deflate'} data: {exc}", code="bad_encoding") from exc
    if len(output) > max_bytes or decompressor.unconsumed_tail:
        raise PayloadTooLarge(
            f"decompressed body exceeds the limit of {max_bytes} bytes", code="decompressed_body_too_large"
        )
    if not decompressor.eof:
        raise BadRequest("compressed body is truncated", code="bad_encoding")
    return output
