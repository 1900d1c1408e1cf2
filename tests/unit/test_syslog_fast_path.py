"""The fast reading of the usual RFC 5424 message (structured data cut at its quotes, a sender's layout read once)
gives exactly what the general reading gives, and leaves to it everything it does not read: escapes, repeated
parameters, elements without parameters, quotes in the message, malformed structured data."""

from __future__ import annotations

import random
from typing import Any

import pytest

from mintlog.domain.keys import generate_api_key
from mintlog.roles.ingest.decoders import syslog
from mintlog.roles.ingest.decoders.syslog import SyslogError, parse_syslog

KEY = generate_api_key().secret
OTHER_KEY = generate_api_key().secret


def _outcome(read: Any, frame: Any) -> tuple[Any, ...]:
    """What a reading gives, field order included: the event, key and format, or the refusal's reason and detail."""
    try:
        parsed = read(frame)
    except SyslogError as exc:
        return ("refused", exc.reason, str(exc))
    return ("read", parsed.event, list(parsed.event), list(parsed.event["fields"]), parsed.key, parsed.format)


def _general(frame: bytes) -> tuple[Any, ...]:
    return _outcome(syslog._parse_general, frame.decode("utf-8").rstrip("\r\n\x00"))  # pyright: ignore[reportPrivateUsage]


def test_a_sender_layout_read_again_gives_each_message_its_own_values() -> None:
    """The benchmark's message: the key element, then 7 parameters; the second message has the same layout."""
    template = (
        '<134>1 2026-12-06T22:57:18.744Z payments-6 payments - - [mintlog@32473 key="{key}"][app trace_id="{trace}" '
        'run="r1" user_id="u{user}" status="200" latency_ms="4.75" region="eu-west-1"] GET /api/payments 200 4.75ms'
    )
    first = parse_syslog(template.format(key=KEY, trace="a" * 32, user=1).encode())
    second = parse_syslog(template.format(key=OTHER_KEY, trace="b" * 32, user=2).encode())
    assert first.key == KEY
    assert second.key == OTHER_KEY
    assert second.format == "rfc5424"
    assert second.event == {
        "level": "info",
        "timestamp": "2026-12-06T22:57:18.744Z",
        "host": "payments-6",
        "service": "payments",
        "message": "GET /api/payments 200 4.75ms",
        "fields": {
            "syslog.facility": "local0",
            "syslog.severity": "info",
            "sd.app.trace_id": "b" * 32,
            "sd.app.run": "r1",
            "sd.app.user_id": "u2",
            "sd.app.status": "200",
            "sd.app.latency_ms": "4.75",
            "sd.app.region": "eu-west-1",
        },
    }
    assert first.event["fields"]["sd.app.trace_id"] == "a" * 32


FRAMES = [
    # read fast
    b'<14>1 - h app - - [app a="1" b="two words"] message',
    b'<14>1 - h app - - [app a="1"]',
    b'<14>1 - h app - - [app a="1"] ',
    b'<14>1 - h app 42 ID7 [app a="with ] inside" b="=" c=""] m',
    b'<14>1 - h app - - [app a="line\none"] m',
    b'<14>1 - h app - - [app a="1"] C:\\path\\file said \\"hi\\"',
    b'<14>1 - h app - - [app a="1"] say "hi" "there"',
    b'<14>1 - h app - - [a x="1"][a x="2"] later element wins',
    b'<14>1 - h app - - [a][b x="1"] an element without parameters first',
    b'<14>1 - h app - - [b x="1"][c][d][e y="2"] and between',
    b'<14>1 - h app - - [mintlog key="KEY1" other="kept"] m',
    b'<14>1 - h app - - [mintlog@1 key="KEY1"][app key="not the key"] m',
    b'<14>1 - h app - - [mintlogx key="KEY1"] a look-alike element',
    b"<14>1 - h app - - - KEY1 the key as first word",
    b'<14>1 - h app - - [app a="1"] KEY1 the key as first word',
    b'<14>1 - h app - - [app a="1"] \xef\xbb\xbfafter a BOM',
    b"<14>1 - h app - - -",
    b"<14>1 - h app - - - \xef\xbb\xbf",
    b"<0>1 - - - - - - emerg",
    b"<191>1 - - - - - - local7.debug",
    b"<013>1 - - - - - - a PRI with a leading zero",
    b'<14>1 - h app - - [app n23456789012345678901234567890123="1"] a 32-character name',
    # read fast up to where they are left to the general reading
    b'<14>1 - h app - - [app a="esc \\" q" b="2"] m',
    b'<14>1 - h app - - [app a="back\\\\slash"] m',
    b'<14>1 - h app - - [app a="kept \\n as is"] m',
    b'<14>1 - h app - - [app a="1" a="2" a="3"] repeated',
    b'<14>1 - h app - - [a x="0"][a x="1" x="2"] repeated after an element of the same id',
    b'<14>1 - h app - - [mintlog key="KEY1" key="KEY2"] repeated key',
    b'<14>1 - h app - - [mintlog key="KEY1"][mintlog@2 key="KEY2"] two',
    b'<14>1 - h app - - [app a="1"][b] an element without parameters last',
    b"<14>1 - h app - - [b] only an element without parameters",
    b'<14>1 - h app - - [app a="1"] [b y="2"] a space between elements',
    b"<192>1 - h app - - - a PRI over 191",
    b"<14>0 - h app - - - version 0",
    # malformed
    b'<14>1 - h app - - [app a="1"]no space',
    b'<14>1 - h app - - [app a="1"]"quoted"',
    b'<14>1 - h app - - [app a="1',
    b'<14>1 - h app - - [app a="1" b=',
    b'<14>1 - h app - - [app a="1" ]',
    b'<14>1 - h app - - [app  a="1"]',
    b'<14>1 - h app - - [app a="1"[b c="2"]',
    b"<14>1 - h app - - [app a=1]",
    b'<14>1 - h app - - [app a="1"',
    b'<14>1 - h app - - [app n234567890123456789012345678901234="1"] a 33-character name',
    b'<14>1 - h app - - [app\xc2\xa0x a="1"] a no-break space in the SD-ID',
    b'<14>1 - h app - - [ a="1"]',
    b'<14>1 - h app - - a="1"]',
    b"<14>1 - h app - - -no space",
    b"<14>1 - h app - - x",
]


@pytest.mark.parametrize("frame", FRAMES)
def test_the_fast_reading_gives_what_the_general_one_gives(frame: bytes) -> None:
    """Twice: the first reading learns the texts between values and the layout, the second uses them. (`KEY1` and
    `KEY2` stand for two keys, so that the test ids are the same in every process.)"""
    frame = frame.replace(b"KEY1", KEY.encode()).replace(b"KEY2", OTHER_KEY.encode())
    expected = _general(frame)
    assert _outcome(parse_syslog, frame) == expected
    assert _outcome(parse_syslog, frame) == expected


def test_a_known_layout_with_an_escape_in_a_value_is_still_unescaped() -> None:
    parse_syslog(b'<14>1 - h app - - [app a="1" b="2"] m')
    escaped = parse_syslog(b'<14>1 - h app - - [app a="x\\"" b="2"] m')
    assert escaped.event["fields"]["sd.app.a"] == 'x"'
    assert escaped.event["message"] == "m"
    with pytest.raises(SyslogError) as caught:
        parse_syslog(b'<14>1 - h app - - [app a="1" b="2"]m')
    assert caught.value.reason == "malformed"


_PIECES = ["[", "]", '"', "\\", "=", " ", "-", "a", "key", "mintlog", '="', '" ', '"]', "][", "] ", "\n", "\u00a0", "é"]


def _mutated(rng: random.Random) -> bytes:
    elements: list[str] = []
    for _ in range(rng.randint(0, 3)):
        element_id = rng.choice(["app", "mintlog", "mintlog@32473", "a"])
        names = [rng.choice(["key", "k", "run", "v"]) for _ in range(rng.choice([0, 1, 2, 5]))]
        values = [KEY if name == "key" else rng.choice(["", "1", "a b", "x]y", "é"]) for name in names]
        params = "".join(f' {name}="{value}"' for name, value in zip(names, values, strict=True))
        elements.append(f"[{element_id}{params}]")
    structured_data = "".join(elements) or "-"
    message = rng.choice(["", " m", ' a "q"'])
    text = f"<{rng.choice([14, 134, 191, 192])}>1 - h app - - {structured_data}{message}"
    for _ in range(rng.choice([0, 1, 1, 2])):
        at = rng.randint(0, len(text))
        text = text[:at] + rng.choice(_PIECES) + text[at + rng.choice([0, 1]) :]
    return text.encode()


def test_randomly_mutated_frames_are_read_as_the_general_reading_reads_them() -> None:
    rng = random.Random(16)
    for _ in range(3000):
        frame = _mutated(rng)
        assert _outcome(parse_syslog, frame) == _general(frame), frame


def test_what_is_remembered_stays_bounded() -> None:
    for number in range(syslog._SD_SEGMENTS_MAX + 10):  # pyright: ignore[reportPrivateUsage]
        frame = f'<14>1 - h app - - [app p{number}="{number}"][b q{number}="x"] m'.encode()
        assert parse_syslog(frame).event["fields"] == {
            "syslog.facility": "user",
            "syslog.severity": "info",
            f"sd.app.p{number}": str(number),
            f"sd.b.q{number}": "x",
        }
    assert len(syslog._sd_segments) <= syslog._SD_SEGMENTS_MAX  # pyright: ignore[reportPrivateUsage]
    assert len(syslog._sd_layouts) <= syslog._SD_LAYOUTS_MAX  # pyright: ignore[reportPrivateUsage]
