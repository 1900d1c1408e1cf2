"""The key rules every blob store adapter enforces, so a key valid on one adapter is valid on all."""

from __future__ import annotations

__all__ = ["MAX_KEY_BYTES", "MAX_SEGMENT_CHARS", "RESERVED_SEGMENT_PREFIX", "check_key", "check_limit", "check_prefix"]

MAX_KEY_BYTES = 1024
"""S3's limit on a key's length."""

MAX_SEGMENT_CHARS = 200
"""Longest `/`-separated segment: a file name (255 bytes on most filesystems) with room for a temp-file prefix."""

RESERVED_SEGMENT_PREFIX = ".mintlog-tmp-"
"""Segments starting with this are the filesystem adapter's in-progress writes, never keys."""


def _printable_ascii(text: str) -> bool:
    return all(" " <= char <= "~" for char in text)


def check_key(key: str) -> str:
    """Return `key` when it is a valid object key; raise `ValueError` saying why it is not.

    A key is 1 to 1024 characters of printable ASCII, `/`-separated segments of 1 to 200 characters, none
    of them `.` or `..` or starting with `.mintlog-tmp-`, and no leading or trailing `/`.
    """
    if not key:
        raise ValueError("a blob key must not be empty")
    if len(key) > MAX_KEY_BYTES:
        raise ValueError(f"a blob key must be at most {MAX_KEY_BYTES} characters")
    if not _printable_ascii(key):
        raise ValueError(f"a blob key must be printable ASCII: {key!r}")
    if key.startswith("/"):
        raise ValueError(f"a blob key must be relative (no leading '/'): {key!r}")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise ValueError(f"a blob key must not have empty, '.' or '..' segments: {key!r}")
        if len(segment) > MAX_SEGMENT_CHARS:
            raise ValueError(f"a blob key's segments must be at most {MAX_SEGMENT_CHARS} characters: {key!r}")
        if segment.startswith(RESERVED_SEGMENT_PREFIX):
            raise ValueError(f"a blob key's segments must not start with {RESERVED_SEGMENT_PREFIX!r}: {key!r}")
    return key


def check_prefix(prefix: str) -> str:
    """Return `prefix` when it can start a key (empty, or printable ASCII without a leading `/` or `..`)."""
    if not prefix:
        return prefix
    if len(prefix) > MAX_KEY_BYTES:
        raise ValueError(f"a blob prefix must be at most {MAX_KEY_BYTES} characters")
    if not _printable_ascii(prefix):
        raise ValueError(f"a blob prefix must be printable ASCII: {prefix!r}")
    if prefix.startswith("/"):
        raise ValueError(f"a blob prefix must be relative (no leading '/'): {prefix!r}")
    if any(segment in (".", "..") for segment in prefix.split("/")[:-1]):
        raise ValueError(f"a blob prefix must not have '.' or '..' segments: {prefix!r}")
    return prefix


def check_limit(limit: int) -> int:
    """Return `limit` when it is at least 1; raise `ValueError` otherwise."""
    if limit < 1:
        raise ValueError(f"a blob listing limit must be at least 1, not {limit}")
    return limit
