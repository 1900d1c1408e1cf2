"""The egress guard judges the host the HTTP client will connect to, whatever the URL's spelling: legacy IPv4
forms, IPv6 forms carrying IPv4, userinfo and fragment tricks, percent-encoding, and Unicode digits and dots
that IDNA/UTS #46 turns into ASCII (full-width, outlined U+1CCF0-U+1CCF9, mathematical, Arabic-Indic, ...)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence

import pytest
import yarl

from mintlog.adapters.http.egress_aiohttp import guarded_socket_factory
from mintlog.domain.egress import (
    EgressPolicy,
    EgressRefused,
    check_url,
    check_url_literal,
    normalize_url,
    shows_answer_body,
)
from tests.unit.egress_spellings import INTERNAL, LOOPBACK, UNSAFE_HOSTS

DEFAULT = EgressPolicy()
ALLOWING_LOOPBACK = EgressPolicy.from_setting(["127.0.0.0/8"])


def _cases(table: list[tuple[str, str]]) -> list[object]:
    return [pytest.param(url.format(port=8080), id=name) for name, url in table]


@pytest.mark.parametrize("url", _cases(LOOPBACK + INTERNAL + UNSAFE_HOSTS))
def test_every_spelling_of_an_internal_or_unsafe_host_is_refused(url: str) -> None:
    with pytest.raises(EgressRefused):
        check_url_literal(url, DEFAULT)


@pytest.mark.parametrize("url", _cases(LOOPBACK + INTERNAL + UNSAFE_HOSTS))
async def test_every_spelling_is_refused_at_create_time_before_any_lookup(url: str) -> None:
    looked_up: list[str] = []

    async def public(host: str) -> Sequence[str]:
        looked_up.append(host)
        return ["93.184.215.14"]

    with pytest.raises(EgressRefused):
        await check_url(url, DEFAULT, resolve=public)
    assert looked_up == []


# Addresses written with Unicode digits or stops (not the IDNA spellings of localhost, which name a host).
UNICODE_SPELLINGS = [
    (name, url)
    for name, url in LOOPBACK + INTERNAL
    if not url.isascii() and not name.startswith("IDNA") and "zero-width" not in name
]


@pytest.mark.parametrize("url", _cases(UNICODE_SPELLINGS))
def test_a_host_of_unicode_digits_is_refused_even_where_the_address_is_allowed(url: str) -> None:
    # The allow-list admits 127.0.0.0/8, yet an address only reached through Unicode normalization is refused.
    allowing = EgressPolicy.from_setting(["127.0.0.0/8", "10.0.0.0/8", "169.254.0.0/16", "192.168.0.0/16"])
    with pytest.raises(EgressRefused, match=r"non-ASCII|IDNA|malformed"):
        check_url_literal(url, allowing)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.\U0001ccf1/",
        "http://\U0001ccf1\U0001ccf2\U0001ccf7.0.0.1/",
        "http://\uff11\uff12\uff17\uff0e0\u30020\uff611/",
        "http://\U0001d7cf\U0001d7d0\U0001d7d5.0.0.1/",
    ],
)
def test_a_host_the_client_reads_as_an_address_only_after_normalization_is_refused_naming_it(url: str) -> None:
    assert yarl.URL(url).raw_host == "127.0.0.1"  # what aiohttp would connect to
    with pytest.raises(EgressRefused, match=r"address 127\.0\.0\.1 written with non-ASCII"):
        normalize_url(url)


@pytest.mark.parametrize(
    ("url", "client_host"),
    [
        ("http://public.example@127.0.0.1:9/", "127.0.0.1"),
        ("http://127.0.0.1#@public.example/", "127.0.0.1"),
        ("http://[::FFFF:127.0.0.1]/", "::ffff:7f00:1"),
        ("http://\u24dbocalhost/", "localhost"),
        ("http://HOOKS.Example.COM./", "hooks.example.com."),
        ("https://b\u00fccher.example/", "xn--bcher-kva.example"),
    ],
)
def test_the_host_judged_is_the_host_the_client_connects_to(url: str, client_host: str) -> None:
    assert yarl.URL(url).raw_host == client_host  # what aiohttp connects to
    assert normalize_url(url).raw_host == client_host


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/x",
        "https://HOOKS.Example.com./x",
        "https://my_hook.example.com/x",
        "https://b\u00fccher.example/x",
        "https://xn--bcher-kva.example/x",
        "https://\u4f8b\u3048.\u30c6\u30b9\u30c8/x",
        "https://8.8.8.8/x",
        "http://93.184.215.14:8080/x",
        "https://[2606:4700::1111]/x",
        "https://user:pw@hooks.example.com:8443/x?a=b#c",
    ],
)
def test_public_names_addresses_and_idna_names_pass(url: str) -> None:
    check_url_literal(url, DEFAULT)


def test_the_allow_list_admits_loopback_written_in_ascii_only() -> None:
    assert check_url_literal("http://public.example@127.0.0.1:9000/hook", ALLOWING_LOOPBACK) == "127.0.0.1"
    assert check_url_literal("http://127.1:9000/hook", ALLOWING_LOOPBACK) == "127.1"
    with pytest.raises(EgressRefused, match=r"127\.0\.0\.1 written with non-ASCII"):
        check_url_literal("http://127.0.0.\U0001ccf1:9000/hook", ALLOWING_LOOPBACK)


async def test_an_idna_name_is_resolved_as_the_client_will_resolve_it() -> None:
    looked_up: list[str] = []

    async def internal(host: str) -> Sequence[str]:
        looked_up.append(host)
        return ["10.0.0.7"]

    with pytest.raises(EgressRefused, match=r"resolves to 10\.0\.0\.7"):
        await check_url("https://\uff48\uff4f\uff4f\uff4b\uff53.example/x", DEFAULT, resolve=internal)
    assert looked_up == ["hooks.example"]


@pytest.mark.parametrize(
    ("address", "family"),
    [
        ("127.0.0.1", socket.AF_INET),
        ("10.0.0.7", socket.AF_INET),
        ("169.254.169.254", socket.AF_INET),
        ("::1", socket.AF_INET6),
        ("::ffff:127.0.0.1", socket.AF_INET6),
    ],
)
def test_the_socket_factory_refuses_to_open_a_socket_to_a_refused_address(
    address: str, family: socket.AddressFamily
) -> None:
    sockaddr = (address, 80) if family == socket.AF_INET else (address, 80, 0, 0)
    with pytest.raises(EgressRefused, match="is refused"):
        guarded_socket_factory(DEFAULT)((family, socket.SOCK_STREAM, 6, "", sockaddr))


def test_the_socket_factory_opens_a_socket_to_an_allowed_address() -> None:
    opened = guarded_socket_factory(ALLOWING_LOOPBACK)((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 80)))
    with opened:
        assert opened.family == socket.AF_INET


@pytest.mark.parametrize(
    ("peer", "shown"),
    [
        ("93.184.215.14", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("10.0.0.7", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("::1", False),
        ("::ffff:10.0.0.1", False),
        ("fd12::1", False),
        (None, False),
    ],
)
def test_an_answer_body_is_shown_only_for_a_public_receiver(peer: str | None, shown: bool) -> None:
    assert shows_answer_body(None if peer is None else ipaddress.ip_address(peer)) is shown
