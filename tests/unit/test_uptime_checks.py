"""Uptime check specifications: decoding the tagged union, validation naming the field, and the matching rules
(status ranges, JSON paths, DNS answers) the probes apply."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import pytest

from mintlog.domain.egress import EgressPolicy, EgressRefused
from mintlog.domain.uptime_checks import (
    CheckSpec,
    CheckSpecError,
    DnsCheck,
    HttpCheck,
    JsonAssertion,
    TcpCheck,
    TlsCheck,
    check_spec_egress,
    check_target_host,
    json_equal,
    json_path_lookup,
    missing_dns_values,
    parse_json_path,
    parse_nameserver,
    parse_status_ranges,
    status_allowed,
    validate_check,
)

decoder = msgspec.json.Decoder(CheckSpec)

GOOD: list[CheckSpec] = [
    HttpCheck(url="https://example.com/health"),
    HttpCheck(
        url="http://example.com:8080/x?y=1",
        method="POST",
        headers={"X-Token": "abc"},
        body='{"a": 1}',
        expected_status=["200-299", "301", "404"],
        keyword="ok",
        keyword_absent=True,
        json_assertions=[JsonAssertion(path="$.a.b[0].c", equals=1), JsonAssertion(path='$["odd key"]')],
        max_response_ms=500,
        follow_redirects=True,
        max_redirects=0,
        verify_tls=False,
    ),
    TcpCheck(host="db.example.com", port=5432),
    TcpCheck(host="2001:4860:4860::8888", port=443, tls=True),
    DnsCheck(name="example.com"),
    DnsCheck(name="example.com.", record_type="AAAA", expected=["2606:2800::1"], nameserver="[2001:4860::8888]:5353"),
    DnsCheck(name="example.com", record_type="MX", expected=["10 mail.example.com."], nameserver="8.8.8.8"),
    TlsCheck(host="example.com"),
    TlsCheck(host="93.184.215.14", port=8443, server_name="example.com", min_days_left=0, verify=False),
]


@pytest.mark.parametrize("spec", GOOD, ids=lambda spec: type(spec).__name__)
def test_valid_specs_pass_and_round_trip(spec: CheckSpec) -> None:
    validate_check(spec)
    assert decoder.decode(msgspec.json.encode(spec)) == spec


BAD: list[tuple[CheckSpec, str]] = [
    (HttpCheck(url="ftp://example.com/"), "check.url"),
    (HttpCheck(url="http:///nohost"), "check.url"),
    (HttpCheck(url="https://exa mple.com/"), "check.url"),
    (HttpCheck(url="https://example.com/", expected_status=[]), "check.expected_status"),
    (HttpCheck(url="https://example.com/", expected_status=["200", "299-200"]), "check.expected_status[1]"),
    (HttpCheck(url="https://example.com/", expected_status=["2xx"]), "check.expected_status[0]"),
    (HttpCheck(url="https://example.com/", expected_status=["600"]), "check.expected_status[0]"),
    (HttpCheck(url="https://example.com/", headers={"Bad Header": "x"}), "check.headers"),
    (HttpCheck(url="https://example.com/", headers={"X-A": "a\r\nInjected: 1"}), "check.headers.X-A"),
    (HttpCheck(url="https://example.com/", keyword=""), "check.keyword"),
    (HttpCheck(url="https://example.com/", keyword_absent=True), "check.keyword_absent"),
    (
        HttpCheck(url="https://example.com/", json_assertions=[JsonAssertion(path="$.a"), JsonAssertion(path="a.b")]),
        "check.json_assertions[1].path",
    ),
    (
        HttpCheck(url="https://example.com/", json_assertions=[JsonAssertion(path="$.a[x]")]),
        "check.json_assertions[0].path",
    ),
    (
        HttpCheck(url="https://example.com/", json_assertions=[JsonAssertion(path="$..a")]),
        "check.json_assertions[0].path",
    ),
    (HttpCheck(url="https://example.com/", max_response_ms=0), "check.max_response_ms"),
    (HttpCheck(url="https://example.com/", max_redirects=21), "check.max_redirects"),
    (TcpCheck(host="", port=80), "check.host"),
    (TcpCheck(host="bad host", port=80), "check.host"),
    (TcpCheck(host="example.com", port=0), "check.port"),
    (TcpCheck(host="example.com", port=65536), "check.port"),
    (DnsCheck(name=""), "check.name"),
    (DnsCheck(name="a..b"), "check.name"),
    (DnsCheck(name="example.com", nameserver="dns.google"), "check.nameserver"),
    (DnsCheck(name="example.com", nameserver="8.8.8.8:99999"), "check.nameserver"),
    (DnsCheck(name="example.com", nameserver="8.8.8.8:x"), "check.nameserver"),
    (DnsCheck(name="example.com", port=0), "check.port"),
    (DnsCheck(name="example.com", expected=["not-an-ip"]), "check.expected[0]"),
    (DnsCheck(name="example.com", record_type="AAAA", expected=["1.2.3.4"]), "check.expected[0]"),
    (TlsCheck(host=" "), "check.host"),
    (TlsCheck(host="example.com", port=-1), "check.port"),
    (TlsCheck(host="example.com", server_name="bad name"), "check.server_name"),
    (TlsCheck(host="example.com", min_days_left=-1), "check.min_days_left"),
]


@pytest.mark.parametrize(("spec", "field"), BAD, ids=[field for _, field in BAD])
def test_invalid_specs_name_the_field(spec: CheckSpec, field: str) -> None:
    with pytest.raises(CheckSpecError) as caught:
        validate_check(spec)
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)
    assert str(caught.value).startswith(f"{field}: ")


def test_validation_uses_the_callers_field_prefix() -> None:
    with pytest.raises(CheckSpecError) as caught:
        validate_check(TcpCheck(host="example.com", port=0), field="monitor.check")
    assert caught.value.field == "monitor.check.port"


def test_decoding_rejects_unknown_types_and_fields() -> None:
    with pytest.raises(msgspec.ValidationError):
        decoder.decode(b'{"type": "icmp", "host": "example.com"}')
    with pytest.raises(msgspec.ValidationError):
        decoder.decode(b'{"type": "tcp", "host": "example.com", "port": 1, "extra": true}')
    spec = decoder.decode(b'{"type": "http", "url": "https://example.com/"}')
    assert spec == HttpCheck(url="https://example.com/")
    assert isinstance(spec, HttpCheck)
    assert spec.expected_status == ["200-299"]


@pytest.mark.parametrize(
    ("status", "ranges", "allowed"),
    [
        (200, ["200-299"], True),
        (299, ["200-299"], True),
        (300, ["200-299"], False),
        (301, ["200-299", "301"], True),
        (302, ["200-299", "301"], False),
        (503, ["500-599"], True),
    ],
)
def test_status_ranges(status: int, ranges: list[str], allowed: bool) -> None:
    assert status_allowed(status, parse_status_ranges(ranges)) is allowed


DOCUMENT = {"a": {"b": [{"c": 1}, {"c": None}]}, "odd key": True, "n": 2.5}


@pytest.mark.parametrize(
    ("path", "found", "value"),
    [
        ("$", True, DOCUMENT),
        ("$.a.b[0].c", True, 1),
        ("$.a.b[1].c", True, None),
        ('$["odd key"]', True, True),
        ("$.a.b[2].c", False, None),
        ("$.a.x", False, None),
        ("$.n.x", False, None),
        ("$.a[0]", False, None),
    ],
)
def test_json_paths(path: str, found: bool, value: object) -> None:
    assert json_path_lookup(DOCUMENT, parse_json_path(path)) == (found, value)


def test_json_equality_keeps_booleans_apart_from_numbers() -> None:
    assert json_equal(1, 1.0)
    assert json_equal(None, None)
    assert not json_equal(True, 1)
    assert not json_equal(1, True)
    assert not json_equal("1", 1)
    assert not json_equal(None, "null")


def test_dns_answers_are_compared_in_canonical_form() -> None:
    assert missing_dns_values("AAAA", ["2001:db8:0:0::1"], ["2001:db8::1"]) == []
    assert missing_dns_values("MX", ["10 Mail.Example.com"], ["10 mail.example.com."]) == []
    assert missing_dns_values("CNAME", ["target.example.com."], ["TARGET.example.com."]) == []
    assert missing_dns_values("TXT", ["v=spf1 -all"], ["V=SPF1 -all"]) == ["v=spf1 -all"]
    assert missing_dns_values("A", ["1.1.1.1", "1.0.0.1"], ["1.1.1.1", "9.9.9.9"]) == ["1.0.0.1"]


def test_nameserver_forms() -> None:
    assert parse_nameserver("8.8.8.8", 53) == ("8.8.8.8", 53)
    assert parse_nameserver("8.8.8.8:5353", 53) == ("8.8.8.8", 5353)
    assert parse_nameserver("[2001:4860::8888]:54", 53) == ("2001:4860::8888", 54)
    assert parse_nameserver("2001:4860::8888", 53) == ("2001:4860::8888", 53)


def test_check_target_host() -> None:
    assert check_target_host(HttpCheck(url="https://example.com/")) == "https://example.com/"
    assert check_target_host(TcpCheck(host="EXAMPLE.com", port=22)) == ("example.com", 22)
    assert check_target_host(TlsCheck(host="[2001:db8::0001]")) == ("2001:db8::1", 443)
    assert check_target_host(DnsCheck(name="example.com", nameserver="1.1.1.1")) == ("1.1.1.1", 53)
    assert check_target_host(DnsCheck(name="example.com")) is None


async def test_create_time_egress_check() -> None:
    async def resolve(host: str) -> Sequence[str]:
        return {"public.example": ["93.184.215.14"], "sneaky.example": ["93.184.215.14", "10.1.2.3"]}[host]

    policy = EgressPolicy()
    await check_spec_egress(TcpCheck(host="public.example", port=22), policy, resolve=resolve)
    await check_spec_egress(DnsCheck(name="example.com"), policy, resolve=resolve)
    refused: list[CheckSpec] = [
        TcpCheck(host="sneaky.example", port=22),
        TlsCheck(host="127.0.0.1"),
        TlsCheck(host="0x7f.1"),
        HttpCheck(url="http://169.254.169.254/latest/meta-data/"),
        DnsCheck(name="example.com", nameserver="10.0.0.53"),
        TcpCheck(host="localhost", port=22),
    ]
    for spec in refused:
        with pytest.raises(EgressRefused):
            await check_spec_egress(spec, policy, resolve=resolve)
    await check_spec_egress(TlsCheck(host="127.0.0.1"), EgressPolicy.from_setting(["127.0.0.0/8"]), resolve=resolve)
