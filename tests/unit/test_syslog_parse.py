"""Syslog messages → events: RFC 5424 (the RFC's own examples), RFC 3164 and the variants real senders write,
and the API key taken out of structured data or the message's first word."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from mintlog.domain.keys import generate_api_key
from mintlog.domain.normalize import normalize_event
from mintlog.parsing.text import TextParsing
from mintlog.roles.ingest.decoders.syslog import SyslogError, parse_syslog

KEY = generate_api_key().secret


def test_rfc5424_example_1_without_structured_data() -> None:
    """RFC 5424 §6.5, example 1 (with its BOM before the message)."""
    parsed = parse_syslog(
        b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - "
        b"\xef\xbb\xbf'su root' failed for lonvick on /dev/pts/8"
    )
    assert parsed.format == "rfc5424"
    assert parsed.key is None
    assert parsed.event == {
        "level": "fatal",
        "timestamp": "2003-10-11T22:14:15.003Z",
        "host": "mymachine.example.com",
        "service": "su",
        "message": "'su root' failed for lonvick on /dev/pts/8",
        "fields": {"syslog.facility": "auth", "syslog.severity": "crit", "syslog.msgid": "ID47"},
    }


def test_rfc5424_nil_values_and_procid() -> None:
    """RFC 5424 §6.5, example 2: a PROCID and a timestamp with an offset; `-` fields are left out."""
    parsed = parse_syslog(
        b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts."
    )
    assert parsed.event["timestamp"] == "2003-08-24T05:14:15.000003-07:00"
    assert parsed.event["host"] == "192.0.2.1"
    assert parsed.event["service"] == "myproc"
    assert parsed.event["level"] == "info"  # 165 = local4.notice
    assert parsed.event["fields"] == {"syslog.facility": "local4", "syslog.severity": "notice", "syslog.procid": "8710"}
    assert parsed.event["message"] == "%% It's time to make the do-nuts."

    nil = parse_syslog(b"<14>1 - - - - - - only a message")
    assert nil.event == {
        "level": "info",
        "message": "only a message",
        "fields": {"syslog.facility": "user", "syslog.severity": "info"},
    }


def test_rfc5424_structured_data_becomes_fields_and_the_key_is_taken_out() -> None:
    """RFC 5424 §6.5 examples 3 and 4, plus a Mintlog key element, escapes and a repeated parameter."""
    parsed = parse_syslog(
        b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
        b'[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]'
        + f'[mintlog@32473 key="{KEY}"]'.encode()
        + b'[examplePriority@32473 class="high" note="say \\"hi\\" \\\\ [x\\]" class="low"]'
        + b" An application event log entry..."
    )
    assert parsed.key == KEY
    assert parsed.event["message"] == "An application event log entry..."
    assert parsed.event["fields"] == {
        "syslog.facility": "local4",
        "syslog.severity": "notice",
        "syslog.msgid": "ID47",
        "sd.exampleSDID@32473.iut": "3",
        "sd.exampleSDID@32473.eventSource": "Application",
        "sd.exampleSDID@32473.eventID": "1011",
        "sd.examplePriority@32473.class": ["high", "low"],
        "sd.examplePriority@32473.note": 'say "hi" \\ [x]',
    }
    assert KEY not in str(parsed.event)


def test_mintlog_element_keeps_its_other_parameters() -> None:
    parsed = parse_syslog(f'<14>1 - h app - - [mintlog key="{KEY}" env="prod"]'.encode())
    assert parsed.key == KEY
    assert parsed.event["fields"]["sd.mintlog.env"] == "prod"
    assert parsed.event["message"] == ""


def test_structured_data_values_keep_what_is_not_an_escape() -> None:
    """Only `\\"`, `\\\\` and `\\]` are escapes; any other backslash stays, as does a newline inside an
    octet-counted message's value; a repeated `key` is taken once (its first value) and none of it is stored."""
    parsed = parse_syslog(
        b'<14>1 - h app - - [id a="C:\\dir\\x" b="two\nlines" c="" d="\\\\\\"q"]'
        + f'[mintlog@1 key="{KEY}" key="second"] m'.encode()
    )
    assert parsed.key == KEY
    assert parsed.event["fields"] == {
        "syslog.facility": "user",
        "syslog.severity": "info",
        "sd.id.a": "C:\\dir\\x",
        "sd.id.b": "two\nlines",
        "sd.id.c": "",
        "sd.id.d": '\\"q',
    }
    assert parsed.event["message"] == "m"


def test_a_key_element_read_again_gives_the_same_key_and_fields_every_time() -> None:
    """A sender's key element is the same text in every message (the parser remembers it): each message still
    gets its own fields, whatever the elements around it."""
    other_key = generate_api_key().secret
    frames = [f'<14>1 - h app - - [mintlog@32473 key="{KEY}" env="prod"][app n="{n}"] m{n}'.encode() for n in range(3)]
    first, second, third = (parse_syslog(frame) for frame in frames)
    first.event["fields"]["sd.mintlog@32473.env"] = "changed by a later stage"
    assert (second.key, third.key) == (KEY, KEY)
    assert third.event["fields"] == {
        "syslog.facility": "user",
        "syslog.severity": "info",
        "sd.mintlog@32473.env": "prod",
        "sd.app.n": "2",
    }
    # Two key elements: the last one's key counts, as for any message.
    both = parse_syslog(
        f'<14>1 - h app - - [mintlog@32473 key="{KEY}" env="prod"][mintlog key="{other_key}"] m'.encode()
    )
    assert both.key == other_key
    assert both.event["fields"]["sd.mintlog@32473.env"] == "prod"


def test_sd_names_of_32_characters_are_read_and_longer_ones_refused() -> None:
    name = "n" * 32
    parsed = parse_syslog(f'<14>1 - h app - - [{name} {name}="v"] m'.encode())
    assert parsed.event["fields"][f"sd.{name}.{name}"] == "v"
    for frame in (f'<14>1 - h app - - [{name}x a="v"] m', f'<14>1 - h app - - [id {name}x="v"] m'):
        with pytest.raises(SyslogError) as caught:
            parse_syslog(frame.encode())
        assert caught.value.reason == "malformed"


@pytest.mark.parametrize(
    "frame",
    [
        b"<14>1 - h app - - [unterminated",
        b'<14>1 - h app - - [id a="no end]',
        b"<14>1 - h app - - [id a=unquoted]",
        b"<14>1 - h app - - nosd message",
        b'<14>1 - h app - - [id a="1"]glued',
        b'<14>1 - h app - - [id a="ends in a backslash\\"]',
        b'<14>1 - h app - - [id a="1"b="2"]',
        b'<14>1 - h app - - [id a="1" ]',
    ],
)
def test_malformed_rfc5424_is_refused(frame: bytes) -> None:
    with pytest.raises(SyslogError) as caught:
        parse_syslog(frame)
    assert caught.value.reason == "malformed"


@pytest.mark.parametrize(
    ("frame", "event"),
    [
        (  # RFC 3164 §5.4, example 1
            b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
            {
                "level": "fatal",
                "timestamp": "Oct 11 22:14:15",
                "host": "mymachine",
                "service": "su",
                "message": "'su root' failed for lonvick on /dev/pts/8",
                "fields": {"syslog.facility": "auth", "syslog.severity": "crit"},
            },
        ),
        (  # RFC 3164 §5.4, example 2: no tag, a day padded with a space
            b"<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!",
            {
                "level": "info",
                "timestamp": "Feb 5 17:32:18",
                "host": "10.0.0.99",
                "message": "Use the BFG!",
                "fields": {"syslog.facility": "user", "syslog.severity": "notice"},
            },
        ),
        (  # tag[pid]
            b"<30>Dec  5 14:00:00 web01 sshd[1234]: Accepted publickey",
            {
                "level": "info",
                "timestamp": "Dec 5 14:00:00",
                "host": "web01",
                "service": "sshd",
                "message": "Accepted publickey",
                "fields": {"syslog.facility": "daemon", "syslog.severity": "info", "syslog.procid": "1234"},
            },
        ),
        (  # no hostname (what a local logger writes)
            b"<11>Dec  5 14:00:00 cron[77]: job failed",
            {
                "level": "error",
                "timestamp": "Dec 5 14:00:00",
                "service": "cron",
                "message": "job failed",
                "fields": {"syslog.facility": "user", "syslog.severity": "err", "syslog.procid": "77"},
            },
        ),
        (  # RFC 3339 timestamp in the 3164 layout (rsyslog's RSYSLOG_ForwardFormat)
            b"<15>2026-12-05T14:00:00.123456+01:00 web01 app: debugging",
            {
                "level": "debug",
                "timestamp": "2026-12-05T14:00:00.123456+01:00",
                "host": "web01",
                "service": "app",
                "message": "debugging",
                "fields": {"syslog.facility": "user", "syslog.severity": "debug"},
            },
        ),
        (  # Cisco: the year in the timestamp, a `:` after it, no host, no tag
            b"<189>Dec 5 2026 14:00:00: %SYS-5-CONFIG_I: Configured from console",
            {
                "level": "info",
                "timestamp": "2026-12-05 14:00:00",
                "message": "%SYS-5-CONFIG_I: Configured from console",
                "fields": {"syslog.facility": "local7", "syslog.severity": "notice"},
            },
        ),
        (  # Python's SysLogHandler: no timestamp, no host, a NUL at the end
            b"<12>pyapp: careful\x00",
            {
                "level": "warn",
                "service": "pyapp",
                "message": "careful",
                "fields": {"syslog.facility": "user", "syslog.severity": "warning"},
            },
        ),
        (  # no PRI at all: no level or facility of its own
            b"Dec  5 14:00:00 host app: plain line\n",
            {"timestamp": "Dec 5 14:00:00", "host": "host", "service": "app", "message": "plain line", "fields": {}},
        ),
        (  # a PRI out of range is not a PRI
            b"<999>text",
            {"message": "<999>text", "fields": {}},
        ),
    ],
)
def test_rfc3164_and_its_variants(frame: bytes, event: dict[str, object]) -> None:
    parsed = parse_syslog(frame)
    assert parsed.format == "rfc3164"
    assert parsed.event == event
    assert parsed.key is None


def test_the_key_as_the_first_word_of_a_3164_message() -> None:
    parsed = parse_syslog(f"<14>Dec  5 14:00:00 web01 app[9]: {KEY} payment done".encode())
    assert parsed.key == KEY
    assert parsed.event["message"] == "payment done"
    # A word that only looks like a key (bad checksum) is message text, not a key.
    fake = "mlk_" + "A" * 38
    parsed = parse_syslog(f"<14>app: {fake} hello".encode())
    assert parsed.key is None
    assert parsed.event["message"] == f"{fake} hello"


def test_a_5424_message_without_the_key_element_may_carry_it_as_first_word() -> None:
    parsed = parse_syslog(f"<14>1 - h app - - - {KEY} hello".encode())
    assert (parsed.key, parsed.event["message"]) == (KEY, "hello")


@pytest.mark.parametrize(
    ("frame", "reason"), [(b"<14>app: caf\xe9", "invalid_utf8"), (b" \r\n", "empty"), (b"\x00", "empty")]
)
def test_unusable_frames(frame: bytes, reason: str) -> None:
    with pytest.raises(SyslogError) as caught:
        parse_syslog(frame)
    assert caught.value.reason == reason


def test_a_3164_time_is_a_wall_time_in_the_tenant_zone_and_gets_its_year() -> None:
    """The pipeline reads the timestamp the decoder passes on: `Dec 31 23:30:00` received on January 1st in
    Europe/Paris is from the year before, an hour earlier in UTC."""
    event = parse_syslog(b"<14>Dec 31 23:30:00 host app: new year").event
    normalized = normalize_event(
        event,
        tenant_id="t",
        event_id="e",
        received_at=datetime(2027, 1, 1, 0, 10, tzinfo=UTC),
        source="syslog",
        default_service="unknown",
        default_host="unknown",
        parsing=TextParsing(zone=ZoneInfo("Europe/Paris")),
    )
    assert normalized.timestamp == datetime(2026, 12, 31, 22, 30, tzinfo=UTC)
    assert (normalized.level, normalized.service, normalized.host) == ("info", "app", "host")
