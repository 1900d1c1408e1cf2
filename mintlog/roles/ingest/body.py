"""Reading an ingest request body within limits: size before and after decompression, encodings.

Shared by every HTTP ingest protocol: a decoder (`mintlog.roles.ingest.decoders`) only sees the whole,
decompressed body.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

from mintlog.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

__all__ = ["MAX_GZIP_MEMBERS", "read_limited_body"]

_GZIP_MAGIC = b"\x1f\x8b"
_FIRST_CHUNK = 256

MAX_GZIP_MEMBERS = 1000
"""Most gzip members one body may have (each costs a decompressor; 5 MiB of empty members would be 260,000)."""


async def read_limited_body(
    chunks: AsyncIterator[bytes], *, content_encoding: str | None, content_length: str | None, max_bytes: int
) -> bytes:
    """The request body, decompressed, refusing anything over `max_bytes` on the wire or once decompressed.

    A gzip bomb stops at `max_bytes` of output: decompression never allocates more than that. A gzip body of
    several members is one stream (each member decompressed, the limit holding for the total); bytes after
    the compressed data that are not another gzip member are refused (400 `trailing_data`).
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
    """Decompress a whole body, refusing more than `max_bytes` of output in total.

    gzip: every member is read and the outputs are concatenated, as `gzip -d` does (RFC 1952 allows a file of
    several members), up to `MAX_GZIP_MEMBERS` members; anything after a member that is not another gzip
    member is refused (400 `trailing_data`), never ignored. deflate (one zlib stream) has nothing after its
    stream. Each member is fed in chunks that double in size from `_FIRST_CHUNK`, so that what follows a
    member is never copied whole: the work stays linear in the body's size.
    """
    wbits = zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS
    name = "gzip" if gzip else "deflate"
    view = memoryview(body)
    parts: list[bytes] = []
    produced = offset = members = 0
    while True:
        members += 1
        if members > MAX_GZIP_MEMBERS:
            raise BadRequest(f"body has more than {MAX_GZIP_MEMBERS} gzip members", code="bad_encoding")
        decompressor = zlib.decompressobj(wbits)
        chunk_size = _FIRST_CHUNK
        while not decompressor.eof and offset < len(body):
            chunk = view[offset : offset + chunk_size]
            try:
                output = decompressor.decompress(chunk, max_bytes - produced + 1)
            except zlib.error as exc:
                raise BadRequest(f"body is not valid {name} data: {exc}", code="bad_encoding") from exc
            produced += len(output)
            if produced > max_bytes:
                raise PayloadTooLarge(
                    f"decompressed body exceeds the limit of {max_bytes} bytes", code="decompressed_body_too_large"
                )
            parts.append(output)
            offset += len(chunk) - len(decompressor.unused_data)
            chunk_size *= 2
        if not decompressor.eof:
            raise BadRequest("compressed body is truncated", code="bad_encoding")
        if offset == len(body):
            return b"".join(parts)
        if not (gzip and body.startswith(_GZIP_MAGIC, offset)):
            raise BadRequest(
                f"body has {len(body) - offset} bytes after the end of its {name} data (at byte {offset})"
                + ("; only another gzip member may follow a member" if gzip else ""),
                code="trailing_data",
            )
