"""Levels and timestamps from plain text, tenant time zones, extraction rules and typed logfmt values, as a
user sees them on the normalized event."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mintlog.domain.events import LogEvent, RawBatch
from mintlog.domain.extraction_rules import ExtractionRuleSpec
from mintlog.domain.normalize import NormalizeStats, normalize_batch, normalize_event
from mintlog.parsing.logfmt import typed_text_value
from mintlog.parsing.rules import RuleError, compile_rule
from mintlog.parsing.text import TextParsing
from mintlog.settings import IngestSettings

RECEIVED_AT = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


def normalize(raw: dict[str, Any], parsing: TextParsing | None = None, received_at: datetime = RECEIVED_AT) -> LogEvent:
    return normalize_event(
        raw,
        tenant_id="acme",
        event_id="b1-00000",
        received_at=received_at,
        source="http",
        default_service="svc",
        default_host="host",
        parsing=parsing or TextParsing(),
    )


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


DETECTED: list[tuple[str, str, str, datetime, str]] = [
    (
        "2015-10-18 18:01:47,978 ERROR [main] o.a.h.MRAppMaster: x",
        "error",
        "header",
        utc(2015, 10, 18, 18, 1, 47, 978000),
        "iso8601",
    ),
    (
        "2024/03/05 10:12:01 [crit] 1234#1234: *5 open() failed",
        "fatal",
        "bracket",
        utc(2024, 3, 5, 10, 12, 1),
        "yyyy/MM/dd HH:mm:ss",
    ),
    ("E1203 14:05:22.123456   12345 file.cc:123] boom", "error", "glog", utc(2025, 12, 3, 14, 5, 22, 123456), "glog"),
    (
        "<34>Oct 11 22:14:15 mymachine su: 'su root' failed",
        "fatal",
        "syslog_pri",
        utc(2025, 10, 11, 22, 14, 15),
        "rfc3164",
    ),
    (
        "03-17 16:13:38.811  1702  2395 W WindowManager: slow",
        "warn",
        "android",
        utc(2026, 3, 17, 16, 13, 38, 811000),
        "MM-dd HH:mm:ss.SSS",
    ),
    (
        "081109 203615 148 INFO dfs.DataNode$PacketResponder: done",
        "info",
        "header",
        utc(2008, 11, 9, 20, 36, 15),
        "yyMMdd HHmmss",
    ),
    (
        "17/06/09 20:10:40 WARN storage.BlockManager: slow",
        "warn",
        "header",
        utc(2017, 6, 9, 20, 10, 40),
        "yy/MM/dd HH:mm:ss",
    ),
    (
        "2024-03-05T10:12:01Z level=warn component=x free text",
        "warn",
        "key_value",
        utc(2024, 3, 5, 10, 12, 1),
        "iso8601",
    ),
    (
        "[Tue Mar 05 10:12:01.123456 2024] [core:error] [pid 1:tid 2] AH00128: x",
        "error",
        "bracket",
        utc(2024, 3, 5, 10, 12, 1, 123456),
        "ctime",
    ),
    (
        "Dec 10 06:55:46 LabSZ sshd[24200]: error: Received disconnect",
        "error",
        "message_start",
        utc(2025, 12, 10, 6, 55, 46),
        "rfc3164",
    ),
    (
        "1:M 05 Mar 2024 10:12:01.123 # WARNING overcommit_memory",
        "warn",
        "redis",
        utc(2024, 3, 5, 10, 12, 1, 123000),
        "dd MMM yyyy HH:mm:ss",
    ),
    ("1700000000123 ERROR worker-1 boom", "error", "header", utc(2023, 11, 14, 22, 13, 20, 123000), "epoch"),
]


@pytest.mark.parametrize(
    ("line", "level", "source", "moment", "time_format"), DETECTED, ids=[case[0][:30] for case in DETECTED]
)
def test_level_and_timestamp_are_detected_and_say_why(
    line: str, level: str, source: str, moment: datetime, time_format: str
) -> None:
    event = normalize({"message": line})

    assert (event.level, event.timestamp) == (level, moment)
    assert event.fields == {"detected.level_source": source, "detected.time_format": time_format}
    assert event.received_at == RECEIVED_AT
    assert event.message == line


PROSE = [
    "no error found",
    "2024-03-05 10:00:00 no error found",
    "2026/03/26 18:07:58 critical section held for 3 ms",
    "[10.30 16:49:06] chrome.exe - proxy:5070 open through proxy, retry after error 10061",
    "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; warning issued",
    "Error reading file",  # no timestamp: a Capitalized word at the start is prose
    '127.0.0.1 - - [10/Oct/2026:13:55:36 -0700] "GET /api?level=ERROR HTTP/1.1" 500 12',
    "we saw a WARNING banner",
]


@pytest.mark.parametrize("line", PROSE)
def test_a_level_word_in_prose_is_not_a_level(line: str) -> None:
    event = normalize({"message": line})

    assert event.level == "info"
    assert "detected.level_source" not in event.fields


def test_an_explicit_level_and_timestamp_win_over_the_text() -> None:
    event = normalize(
        {"message": "2015-10-18 18:01:47,978 ERROR [main] x", "level": "debug", "timestamp": "2026-01-01T00:00:00Z"}
    )

    assert (event.level, event.timestamp) == ("debug", utc(2026, 1, 1))
    assert event.fields == {}


def test_a_logfmt_level_wins_over_a_level_word_in_its_message() -> None:
    event = normalize({"message": 'level=info msg="ERROR: not really"'})

    assert event.level == "info"
    assert "detected.level_source" not in event.fields


def test_only_what_is_missing_is_detected() -> None:
    event = normalize({"message": "2015-10-18 18:01:47,978 ERROR [main] x", "level": "warn"})

    assert (event.level, event.timestamp) == ("warn", utc(2015, 10, 18, 18, 1, 47, 978000))
    assert event.fields == {"detected.time_format": "iso8601"}


def test_detected_fields_never_overwrite_the_events_own() -> None:
    event = normalize({"message": "[error] x", "fields": {"detected.level_source": "mine"}})

    assert event.level == "error"
    assert event.fields == {"detected.level_source": "mine"}


def test_detection_can_be_switched_off() -> None:
    event = normalize({"message": "2015-10-18 18:01:47,978 ERROR x"}, TextParsing(detect=False))

    assert (event.level, event.timestamp, event.fields) == ("info", RECEIVED_AT, {})


def test_a_syslog_date_is_from_last_year_when_it_would_be_more_than_a_day_ahead() -> None:
    new_year = utc(2027, 1, 1, 0, 0, 5)

    assert normalize({"message": "Dec 31 23:59:58 host app: x"}, received_at=new_year).timestamp == utc(
        2026, 12, 31, 23, 59, 58
    )
    assert normalize({"message": "Jan  1 00:00:30 host app: x"}, received_at=new_year).timestamp == utc(
        2027, 1, 1, 0, 0, 30
    )


def test_zone_less_times_are_wall_times_in_the_tenants_zone() -> None:
    berlin = TextParsing(zone=BERLIN)
    later = utc(2026, 12, 1)  # the times must not be in the future of their arrival

    summer = normalize({"message": "2026-07-01 12:00:00 INFO x"}, berlin, later)
    winter = normalize({"message": "2026-01-15 12:00:00 INFO x"}, berlin, later)
    explicit = normalize({"message": "m", "timestamp": "2026-07-01 12:00:00"}, berlin, later)
    with_offset = normalize({"message": "2026-07-01T12:00:00Z INFO x"}, berlin, later)

    assert summer.timestamp == utc(2026, 7, 1, 10)
    assert winter.timestamp == utc(2026, 1, 15, 11)
    assert explicit.timestamp == utc(2026, 7, 1, 10)
    assert with_offset.timestamp == utc(2026, 7, 1, 12)


def test_daylight_saving_edges_in_the_tenants_zone() -> None:
    berlin = TextParsing(zone=BERLIN)

    later = utc(2026, 12, 1)  # the times must not be in the future of their arrival
    repeated = normalize({"message": "2026-10-25 02:30:00 INFO x"}, berlin, later)  # clocks go back at 03:00
    skipped = normalize({"message": "2026-03-29 02:30:00 INFO x"}, berlin, later)  # clocks jump from 02:00 to 03:00

    assert repeated.timestamp == utc(2026, 10, 25, 0, 30)  # the first 02:30, still summer time
    assert skipped.timestamp == utc(2026, 3, 29, 1, 30)  # the offset before the change


LOGFMT_VALUES: list[tuple[str, object]] = [
    ("12", 12),
    ("-3", -3),
    ("0", 0),
    ("0.25", 0.25),
    ("1.50", 1.5),
    ("007", "007"),
    ("1e3", "1e3"),
    ("+1", "+1"),
    ("12ms", "12ms"),
    ("0x1f", "0x1f"),
    ("99999999999999999999", "99999999999999999999"),
    ("-", "-"),
    ("", ""),
]


@pytest.mark.parametrize(("text", "value"), LOGFMT_VALUES)
def test_unquoted_plain_numbers_become_numbers(text: str, value: object) -> None:
    assert typed_text_value(text) == value
    assert type(typed_text_value(text)) is type(value)


def test_logfmt_numbers_are_numbers_and_quoted_ones_stay_text() -> None:
    event = normalize({"message": 'msg=done duration_ms=14 ratio=0.5 code="200" zip=02134'})

    assert event.fields == {"duration_ms": 14, "ratio": 0.5, "code": "200", "zip": "02134"}


# --- extraction rules ----------------------------------------------------------------------------------------


def rules(*specs: ExtractionRuleSpec) -> TextParsing:
    return TextParsing(rules=tuple(compile_rule(spec) for spec in specs))


HPC_RULE = ExtractionRuleSpec(
    name="hpc",
    pattern=r"^\d+ (?P<node>\S+) (?P<component>\S+) (?P<state>\S+) (?P<timestamp>\d{10}) \d+ ",
)


def test_a_regex_rule_gives_the_time_and_fields_of_a_format_the_defaults_miss() -> None:
    line = "134681 node-246 unix.hw state_change.unavailable 1077804742 1 Component State Change"

    event = normalize({"message": line}, rules(HPC_RULE))

    assert event.timestamp == utc(2004, 2, 26, 14, 12, 22)
    assert event.fields == {
        "node": "node-246",
        "component": "unix.hw",
        "state": "state_change.unavailable",
        "detected.time_format": "rule:hpc",
    }


def test_a_grok_rule_types_its_fields_and_sets_the_level() -> None:
    spec = ExtractionRuleSpec(
        name="orders",
        kind="grok",
        pattern=(
            r"^%{TIMESTAMP_ISO8601:timestamp} \| %{LOGLEVEL:level} \| "
            r"order %{WORD:order.id} took %{NUMBER:duration_ms:float}ms"
        ),
    )

    event = normalize({"message": "2026-05-01 10:00:00 | Warning | order o42 took 17ms"}, rules(spec))

    assert (event.level, event.timestamp) == ("warn", utc(2026, 5, 1, 10))
    assert event.fields == {
        "order.id": "o42",
        "duration_ms": 17.0,
        "detected.level_source": "rule:orders",
        "detected.time_format": "rule:orders",
    }


def test_a_rule_with_a_strptime_format_and_a_double_underscore_group() -> None:
    spec = ExtractionRuleSpec(
        name="eu",
        pattern=r"^(?P<timestamp>\d\d\.\d\d\.\d{4} \d\d:\d\d) (?P<http__status>\d{3})",
        timestamp_format="%d.%m.%Y %H:%M",
    )

    event = normalize({"message": "05.03.2026 10:12 503 upstream"}, TextParsing(zone=BERLIN, rules=rules(spec).rules))

    assert event.timestamp == utc(2026, 3, 5, 9, 12)
    assert event.fields["http.status"] == 503


def test_rules_apply_in_order_the_first_match_wins_and_a_service_limits_a_rule() -> None:
    only_db = ExtractionRuleSpec(name="db", pattern=r"(?P<who>\w+) here", service="db")
    first = ExtractionRuleSpec(name="first", pattern=r"(?P<first>\w+) here")
    second = ExtractionRuleSpec(name="second", pattern=r"(?P<second>\w+) here")
    parsing = rules(only_db, first, second)

    web = normalize({"message": "alice here", "service": "web"}, parsing)
    db = normalize({"message": "alice here", "service": "db"}, parsing)

    assert web.fields == {"first": "alice"}
    assert db.fields == {"who": "alice"}


def test_an_explicit_level_wins_over_a_rules_level_but_its_fields_are_kept() -> None:
    spec = ExtractionRuleSpec(name="r", pattern=r"^(?P<level>\w+) user=(?P<user>\w+)")

    event = normalize({"message": "ERROR user=bob", "level": "info"}, rules(spec))

    assert event.level == "info"
    assert event.fields == {"user": "bob"}


def test_a_rule_that_runs_out_of_time_counts_as_not_matching_and_is_counted() -> None:
    slow = compile_rule(ExtractionRuleSpec(name="slow", pattern=r"^(?P<x>(a|aa)+)$"), probe=False)
    parsing = TextParsing(rules=(slow,), rule_timeout_seconds=0.001)
    stats = NormalizeStats()
    batch = RawBatch(
        batch_id="b1", tenant_id="acme", received_at=RECEIVED_AT, source="http", events=[{"message": "a" * 200 + "?"}]
    )

    events = normalize_batch(batch, default_service="s", default_host="h", parsing=parsing, stats=stats)

    assert stats.rule_timeouts == 1
    assert "x" not in events[0].fields


def test_rule_fields_that_break_a_limit_are_not_added() -> None:
    spec = ExtractionRuleSpec(name="long", pattern=r"^(?P<blob>.+)$")
    limits = IngestSettings(max_value_bytes=10)

    event = normalize_event(
        {"message": "a value longer than ten bytes"},
        tenant_id="acme",
        event_id="e",
        received_at=RECEIVED_AT,
        source="http",
        default_service="s",
        default_host="h",
        limits=limits,
        parsing=rules(spec),
    )

    assert "blob" not in event.fields


BAD_RULES: list[tuple[str, ExtractionRuleSpec, str]] = [
    ("does not compile", ExtractionRuleSpec(name="r", pattern="(?P<a>[a-"), "pattern"),
    ("no named group", ExtractionRuleSpec(name="r", pattern=r"\d+ \w+"), "pattern"),
    ("catastrophic backtracking", ExtractionRuleSpec(name="r", pattern=r"(?P<x>(a|aa)+)$"), "pattern"),
    ("unknown grok pattern", ExtractionRuleSpec(name="r", kind="grok", pattern="%{NOPE:x}"), "pattern"),
    ("grok field twice", ExtractionRuleSpec(name="r", kind="grok", pattern="%{WORD:x} %{WORD:x}"), "pattern"),
    (
        "format without a timestamp group",
        ExtractionRuleSpec(name="r", pattern=r"(?P<x>\d+)", timestamp_format="%Y"),
        "timestamp_format",
    ),
    (
        "format without a directive",
        ExtractionRuleSpec(name="r", pattern=r"(?P<timestamp>\d+)", timestamp_format="yyyy-MM-dd"),
        "timestamp_format",
    ),
]


@pytest.mark.parametrize(("spec", "field"), [case[1:] for case in BAD_RULES], ids=[case[0] for case in BAD_RULES])
def test_a_bad_rule_is_refused_naming_the_member(spec: ExtractionRuleSpec, field: str) -> None:
    with pytest.raises(RuleError) as refused:
        compile_rule(spec)

    assert refused.value.field == field
