"""RFC 6587 framing of a TCP syslog stream, detected per message, fed in arbitrary pieces."""

from __future__ import annotations

import pytest

from mintlog.roles.ingest.syslog.framing import FrameReader, FramingLost


def reader(max_frame_bytes: int = 64) -> tuple[FrameReader, list[int]]:
    oversized: list[int] = []
    return FrameReader(max_frame_bytes=max_frame_bytes, on_oversized=lambda: oversized.append(1)), oversized


def octet(message: bytes) -> bytes:
    return str(len(message)).encode() + b" " + message


STREAM = (
    octet(b"<14>1 - h a - - - first")
    + b"<14>second\n"
    + octet(b"<14>third with\nnewline inside")
    + b"<14>fourth ends with NUL\x00"
    + b"\r\n"
    + b"2026-12-05T10:00:00Z host app: fifth, no PRI\r\n"
)
MESSAGES = [
    b"<14>1 - h a - - - first",
    b"<14>second",
    b"<14>third with\nnewline inside",
    b"<14>fourth ends with NUL",
    b"2026-12-05T10:00:00Z host app: fifth, no PRI\r",
]


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 1000])
def test_mixed_framing_in_any_pieces(piece: int) -> None:
    frames_reader, oversized = reader()
    frames: list[bytes] = []
    for start in range(0, len(STREAM), piece):
        frames.extend(frames_reader.feed(STREAM[start : start + piece]))
    assert frames == MESSAGES
    assert oversized == []


def test_oversized_octet_counted_message_is_skipped_and_the_stream_stays_in_step() -> None:
    frames_reader, oversized = reader(max_frame_bytes=10)
    frames = frames_reader.feed(octet(b"x" * 30)[:20])
    frames += frames_reader.feed(octet(b"x" * 30)[20:] + octet(b"<1>ok"))
    assert frames == [b"<1>ok"]
    assert oversized == [1]


def test_oversized_newline_message_is_thrown_away_up_to_its_end() -> None:
    frames_reader, oversized = reader(max_frame_bytes=10)
    frames = frames_reader.feed(b"<1>" + b"y" * 20)
    frames += frames_reader.feed(b"y" * 1000)
    frames += frames_reader.feed(b"yyy\n<1>after\n<1>" + b"z" * 12 + b"\n")
    assert frames == [b"<1>after"]
    assert oversized == [1, 1]


@pytest.mark.parametrize("data", [b"1234567890 x", b"0 ", b"99999999999999999999"])
def test_lost_framing(data: bytes) -> None:
    frames_reader, _ = reader()
    with pytest.raises(FramingLost):
        frames_reader.feed(data)


def test_finish_returns_a_last_line_without_newline_but_not_a_cut_octet_counted_message() -> None:
    frames_reader, _ = reader()
    assert frames_reader.feed(b"<14>last line") == []
    assert frames_reader.finish() == b"<14>last line"
    cut, _ = reader()
    assert cut.feed(b"20 <14>cut sho") == []
    assert cut.finish() is None
