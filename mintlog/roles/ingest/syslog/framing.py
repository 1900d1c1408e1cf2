"""Cutting a TCP syslog stream into messages (RFC 6587), the framing detected per message.

A message that starts with a digit is octet-counted (`MSG-LEN SP SYSLOG-MSG`, §3.4.1); any other is
non-transparent framing (§3.4.2): it ends at a LF or a NUL (Python's `SysLogHandler` ends its TCP messages
with a NUL and no LF). Memory stays bounded by `max_frame_bytes`:
- an octet-counted message longer than `max_frame_bytes` is skipped (its bytes read and thrown away) and
  counted as oversized; the stream stays in step;
- a LF-terminated message longer than `max_frame_bytes` is thrown away up to its end and counted;
- a message length of more than 9 digits, or `0`, means the framing is lost: `FramingLost` is raised and the
  connection must be closed. Digits followed by anything but a space start a newline-framed message (a line
  without PRI that starts with its timestamp).
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["FrameReader", "FramingLost"]

_MAX_LENGTH_DIGITS = 9
_DELIMITERS = b"\n\x00"
_OCTET_COUNT = re.compile(rb"\d{1,9} ")


class FramingLost(Exception):
    """The stream cannot be cut into messages any more (close the connection)."""


class FrameReader:
    """Incremental RFC 6587 deframer of one connection: `feed` bytes, get whole messages back."""

    def __init__(self, *, max_frame_bytes: int, on_oversized: Callable[[], None]) -> None:
        self._max = max_frame_bytes
        self._on_oversized = on_oversized
        self._buffer = bytearray()
        self._skip = 0
        """Bytes of an oversized octet-counted message still to throw away."""
        self._discarding = False
        """Throwing away an oversized newline-framed message up to its delimiter."""

    def feed(self, data: bytes) -> list[bytes]:
        """The messages completed by `data` (without framing), in order; raises `FramingLost`."""
        frames: list[bytes] = []
        buffer = self._buffer
        buffer += data
        position = 0
        length = len(buffer)
        while position < length:
            if self._skip:
                skipped = min(self._skip, length - position)
                self._skip -= skipped
                position += skipped
                continue
            if self._discarding:
                end = _find_delimiter(buffer, position)
                if end < 0:
                    position = length
                    break
                self._discarding = False
                position = end + 1
                continue
            first = buffer[position]
            if first in _DELIMITERS or first == 0x0D or first == 0x20:  # blank lines between messages
                position += 1
                continue
            if 0x30 <= first <= 0x39:
                digits_end = position + 1
                while digits_end < length and 0x30 <= buffer[digits_end] <= 0x39:
                    digits_end += 1
                if digits_end - position > _MAX_LENGTH_DIGITS:
                    raise FramingLost("an octet-counted message length has more than 9 digits")
                if digits_end == length:
                    break  # the length is not complete yet
                if buffer[digits_end] == 0x20:
                    size = int(buffer[position:digits_end])
                    if size == 0:
                        raise FramingLost("an octet-counted message of length 0")
                    start = digits_end + 1
                    if size > self._max:
                        self._on_oversized()
                        self._skip = size
                        position = start
                        continue
                    if length - start < size:
                        break
                    frames.append(bytes(buffer[start : start + size]))
                    position = start + size
                    continue
                # Digits not followed by a space: a newline-framed message without PRI (`2026-12-05 ...`).
            end = _find_delimiter(buffer, position)
            if end < 0:
                if length - position > self._max:
                    self._on_oversized()
                    self._discarding = True
                    position = length
                break
            if end - position > self._max:
                self._on_oversized()
            else:
                frames.append(bytes(buffer[position:end]))
            position = end + 1
        del buffer[:position]
        return frames

    def finish(self) -> bytes | None:
        """At the end of the stream: the last newline-framed message if it came without its delimiter, else
        None (an octet-counted message cut short is not a message)."""
        rest = bytes(self._buffer).strip(b"\r\n\x00 ")
        self._buffer.clear()
        if not rest or self._skip or self._discarding or _OCTET_COUNT.match(rest) or len(rest) > self._max:
            return None
        return rest


def _find_delimiter(buffer: bytearray, start: int) -> int:
    newline = buffer.find(b"\n", start)
    nul = buffer.find(b"\x00", start, newline if newline >= 0 else len(buffer))
    return nul if nul >= 0 else newline
