"""The egress guard: which addresses and URLs a webhook may reach, whatever their spelling."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from mintlog.adapters.http.egress_aiohttp import AiohttpOutboundHttp, EgressResolver, parse_retry_after
from mintlog.domain.egress import (
    EgressPolicy,
    EgressRefused,
    check_url,
    check_url_literal,
    parse_host_address,
)
from mintlog.errors import ConfigError

DEFAULT = EgressPolicy()

REFUSED_URLS = [
    "http://127.0.0.1/hook",
    "http://10.0.0.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:169.254.169.254]/hook",
    "http://0.0.0.0/hook",
    "http://[::]/hook",
    "http://2130706433/hook",
    "http://0x7f.1/hook",
    "http://017700000001/hook",
    "http://127.1/hook",
    "http://172.16.5.4/hook",
    "http://192.168.1.1:8080/hook",
    "http://100.64.0.1/hook",
    "http://[fd12:3456::1]/hook",
    "http://[fe80::1]/hook",
    "http://224.0.0.1/hook",
    "http://255.255.255.255/hook",
    "http://[64:ff9b::7f00:1]/hook",
    "http://[2002:a00:1::]/hook",
    "http://localhost:8080/hook",
    "http://api.localhost/hook",
    "ftp://hooks.example.com/x",
    "file:///etc/passwd",
    "http:///nohost",
]


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_internal_addresses_and_other_schemes_are_refused_without_dns(url: str) -> None:
    with pytest.raises(EgressRefused):
        check_url_literal(url, DEFAULT)


@pytest.mark.parametrize(
    "url",
    ["https://8.8.8.8/x", "http://93.184.215.14:8080/x", "https://[2606:4700::1111]/x", "https://hooks.example.com/x"],
)
def test_public_addresses_and_names_pass(url: str) -> None:
    check_url_literal(url, DEFAULT)


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1"),
    ],
)
def test_legacy_ipv4_spellings_are_read_as_resolvers_read_them(spelling: str, address: str) -> None:
    assert parse_host_address(spelling) == ipaddress.ip_address(address)


def test_names_are_not_addresses() -> None:
    assert parse_host_address("hooks.example.com") is None
    assert parse_host_address("1.2.3.4.5") is None


def test_the_metadata_address_is_named_in_the_reason() -> None:
    reason = DEFAULT.refusal(ipaddress.ip_address("169.254.169.254"))
    assert reason is not None
    assert "metadata" in reason


def test_the_allow_list_admits_its_ranges_only() -> None:
    policy = EgressPolicy.from_setting(["127.0.0.0/8"])
    check_url_literal("http://127.0.0.1:9000/hook", policy)
    check_url_literal("http://[::ffff:127.0.0.1]/hook", policy)
    with pytest.raises(EgressRefused):
        check_url_literal("http://10.0.0.1/hook", policy)
    with pytest.raises(EgressRefused):
        check_url_literal("http://[::1]/hook", policy)


def test_a_bad_allow_list_fails_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match="MINTLOG_EGRESS_ALLOW"):
        EgressPolicy.from_setting(["10.0.0.0/33"])


async def test_a_name_resolving_to_loopback_is_refused_at_create_time() -> None:
    async def rebinding(host: str) -> Sequence[str]:
        return ["93.184.215.14", "127.0.0.1"]

    with pytest.raises(EgressRefused, match=r"resolves to 127\.0\.0\.1"):
        await check_url("https://evil.example/hook", DEFAULT, resolve=rebinding)


async def test_localhost_is_refused_through_the_real_resolver() -> None:
    async with AiohttpOutboundHttp(DEFAULT) as outbound:
        with pytest.raises(EgressRefused):
            await outbound.check_target("http://localhost/hook")


async def test_a_name_that_does_not_resolve_passes_creation() -> None:
    async def nxdomain(host: str) -> Sequence[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    await check_url("https://not-yet-there.example/hook", DEFAULT, resolve=nxdomain)


class FixedResolver(AbstractResolver):
    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=address, port=port, family=family, proto=0, flags=0)
            for address in self.addresses
        ]

    async def close(self) -> None:
        return None


async def test_the_connect_time_resolver_refuses_when_any_address_is_internal() -> None:
    resolver = EgressResolver(DEFAULT, FixedResolver(["93.184.215.14", "10.0.0.7"]))
    with pytest.raises(EgressRefused, match=r"10\.0\.0\.7"):
        await resolver.resolve("rebound.example", 443)
    public = EgressResolver(DEFAULT, FixedResolver(["93.184.215.14"]))
    assert [result["host"] for result in await public.resolve("ok.example", 443)] == ["93.184.215.14"]
    with pytest.raises(EgressRefused):
        await EgressResolver(DEFAULT, FixedResolver(["93.184.215.14"])).resolve("2130706433", 80)


def test_retry_after_is_read_in_seconds_or_as_a_date() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480 - 60) == 60.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
