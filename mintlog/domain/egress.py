"""The egress policy: which outbound URLs and addresses Mintlog may call (webhooks today, uptime checks later).

Pure judgement, no I/O of its own: the HTTP client that applies it at connect time is the `OutboundHttp`
adapter (`mintlog.adapters.http.egress_aiohttp`), and the create-time check is handed its resolver.

Server-side request forgery protection. A tenant names a URL and Mintlog calls it from inside the operator's
network, so every address that could reach something private is refused:

- schemes other than `http` and `https`, port 0, URLs longer than 2048 characters or holding whitespace,
  control characters or a backslash;
- loopback (127.0.0.0/8, ::1), unspecified (0.0.0.0/8, ::), private (10/8, 172.16/12, 192.168/16, fc00::/7,
  fec0::/10), shared address space (CGNAT, 100.64.0.0/10), link-local (169.254.0.0/16 with the cloud metadata
  address 169.254.169.254, fe80::/10), multicast (224.0.0.0/4, ff00::/8), reserved and broadcast
  (240.0.0.0/4, 255.255.255.255), documentation, benchmarking and protocol-assignment ranges, and every IPv6
  address outside global unicast 2000::/3; `localhost` and every name under `.localhost` are loopback;
- IPv6 forms that carry an IPv4 address (IPv4-mapped `::ffff:127.0.0.1`, IPv4-compatible `::127.0.0.1`,
  NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by the IPv4 address inside; Teredo (2001::/32) and
  local-use NAT64 (64:ff9b:1::/48) are refused outright;
- the legacy IPv4 spellings that `inet_aton` and so every resolver accept (`2130706433`, `0x7f.1`,
  `017700000001`, `127.1`, with or without a trailing dot) are read as the addresses they are.

The host judged is the one the HTTP client connects to, not the text of the URL: the URL is parsed by yarl, as
aiohttp parses it (userinfo, fragments and ports split off the way the client splits them; a non-ASCII host
mapped by IDNA/UTS #46, which folds case and width and turns Unicode digits and dots, such as full-width
digits U+FF10-U+FF19 and dots U+FF0E, U+3002, U+FF61 or the outlined digits U+1CCF0-U+1CCF9, into ASCII), and
that parsed URL (`checked_url`) is the one sent. On top, hosts that do not survive that normalization as a
plain name or address are refused whatever they point at:
- a non-ASCII host that is not a valid internationalized domain name under UTS #46 (the `idna` package's own
  tables decide, not Python's Unicode database, which may be older), that only becomes an IP address once
  normalized, or that has a label made of digits only (write addresses in ASCII digits);
- a host that is not an IP address nor a domain name of letters, digits, `-` and `_` in labels of at most 63
  characters (percent-encoded hosts, empty labels, an IPv6 zone id), or whose last label is numeric without
  the whole being an address (`1.2.3.4.5`).

`MINTLOG_EGRESS_ALLOW` (comma-separated CIDRs, empty by default) allows ranges anyway, e.g. `127.0.0.0/8` for
local development and tests; an allowed range wins over every address refusal above (not over the scheme or
spelling rules).

Where the check runs: when a channel is created or updated (`check_url`, resolving the name; a name that does
not resolve yet is accepted, since it is checked again before every connection), and on every attempt: the
URL is normalized and judged before the request (`checked_url`), a name is judged by every address it
resolves to, and every socket the client opens is judged by the address it is about to connect to (see the
adapter). Redirects are never followed. An answer's body is quoted back to the tenant only when it came from a
public address (`shows_answer_body`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import idna
from yarl import URL

from mintlog.errors import ConfigError

__all__ = [
    "MAX_URL_LENGTH",
    "EgressPolicy",
    "EgressRefused",
    "IpAddress",
    "IpNetwork",
    "Resolve",
    "check_url",
    "check_url_literal",
    "checked_url",
    "judge_addresses",
    "judge_host",
    "normalize_url",
    "parse_host_address",
    "shows_answer_body",
]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# Resolves a host name to the addresses a connection to it may use (text, as getaddrinfo gives them).
Resolve = Callable[[str], Awaitable[Sequence[str]]]

MAX_URL_LENGTH = 2048
_RESOLVE_TIMEOUT_SECONDS = 3.0
_METADATA = ipaddress.IPv4Address("169.254.169.254")

_V4_REFUSED: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared address space (CGNAT)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved for protocol assignments"),
    ("192.0.2.0/24", "reserved for documentation"),
    ("192.88.99.0/24", "reserved (6to4 relay)"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "reserved for benchmarking"),
    ("198.51.100.0/24", "reserved for documentation"),
    ("203.0.113.0/24", "reserved for documentation"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
)
_V6_REFUSED: tuple[tuple[str, str], ...] = (
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "reserved (discard-only)"),
    ("2001::/32", "Teredo tunnel"),
    ("2001:db8::/32", "reserved for documentation"),
    ("2001::/23", "reserved for protocol assignments"),
    ("fc00::/7", "private (unique local)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "private (site-local)"),
    ("ff00::/8", "multicast"),
)
_V4_TABLE = tuple((ipaddress.IPv4Network(net), reason) for net, reason in _V4_REFUSED)
_V6_TABLE = tuple((ipaddress.IPv6Network(net), reason) for net, reason in _V6_REFUSED)
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")


class EgressRefused(OSError):
    """An outbound address or URL is refused by the egress guard. `reason` is safe to show to the tenant.

    An `OSError`, so that aiohttp reports a refusal at connect time as a connection error."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, compatible, NAT64, 6to4), if any."""
    if address in _MAPPED or address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _COMPATIBLE and int(address) > 1:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _SIX_TO_FOUR:
        return ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF)
    return None


def _parse_legacy_ipv4(text: str) -> ipaddress.IPv4Address | None:
    """`text` read the way `inet_aton` reads it (1 to 4 parts, each decimal, 0x-hex or 0-octal), or None."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers: list[int] = []
    for part in parts:
        lowered = part.lower()
        try:
            if lowered.startswith("0x"):
                numbers.append(int(lowered[2:], 16) if len(lowered) > 2 else 0)
            elif len(lowered) > 1 and lowered.startswith("0"):
                numbers.append(int(lowered[1:], 8))
            elif lowered.isdigit():
                numbers.append(int(lowered))
            else:
                return None
        except ValueError:
            return None
    *leading, last = numbers
    if any(number > 255 for number in leading) or last >= 1 << (8 * (4 - len(leading))):
        return None
    value = last
    for index, number in enumerate(leading):
        value |= number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def parse_host_address(host: str) -> IpAddress | None:
    """The IP address `host` (a URL's host, brackets removed) spells, in any form a resolver accepts; None for
    a name."""
    candidate = host.strip().removeprefix("[").removesuffix("]")
    try:
        return ipaddress.ip_address(candidate.split("%", 1)[0])
    except ValueError:
        pass
    return _parse_legacy_ipv4(candidate.rstrip("."))


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """What may be called: every public address, plus the `allow` ranges."""

    allow: tuple[IpNetwork, ...] = ()

    @classmethod
    def from_setting(cls, cidrs: Iterable[str], *, variable: str = "MINTLOG_EGRESS_ALLOW") -> EgressPolicy:
        """The policy of `MINTLOG_EGRESS_ALLOW`; raises `ConfigError` naming it when a CIDR is invalid."""
        networks: list[IpNetwork] = []
        for cidr in cidrs:
            try:
                networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
            except ValueError as exc:
                raise ConfigError(f"invalid setting {variable}={cidr!r}: {exc}") from None
        return cls(tuple(networks))

    def _allowed(self, address: IpAddress) -> bool:
        return any(address.version == network.version and address in network for network in self.allow)

    def refusal(self, address: IpAddress) -> str | None:
        """Why `address` may not be called, or None when it may."""
        if self._allowed(address):
            return None
        if isinstance(address, ipaddress.IPv6Address):
            embedded = _embedded_ipv4(address)
            if embedded is not None:
                reason = self.refusal(embedded)
                return None if reason is None else f"it carries the IPv4 address {embedded}: {reason}"
            for network, reason in _V6_TABLE:
                if address in network:
                    return f"{reason} ({network})"
            if address not in _GLOBAL_UNICAST:
                return f"reserved (outside global unicast {_GLOBAL_UNICAST})"
            return None
        if address == _METADATA:
            return "link-local: the cloud metadata address (169.254.169.254)"
        for network, reason in _V4_TABLE:
            if address in network:
                return f"{reason} ({network})"
        return None

    def check_address(self, address: IpAddress) -> None:
        """Raise `EgressRefused` when `address` may not be called."""
        reason = self.refusal(address)
        if reason is not None:
            raise EgressRefused(f"address {address} is refused: {reason}")


_LABEL = re.compile(r"[a-z0-9_-]{1,63}")
_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+")
_IDNA_DOTS = re.compile("[.\u3002\uff0e\uff61]")  # the label separators of UTS #46
_MAX_NAME_LENGTH = 253


def _written_host(url: str) -> str:
    """The host as the URL spells it (before any IDNA mapping); "" when it has none."""
    return urlsplit(url).hostname or ""


def _check_spelling(written: str, host: str) -> None:
    """Refuse a host that does not survive the client's normalization as a plain name or address.

    `written` is the host as spelled, `host` the one the client connects to (yarl's `raw_host`)."""
    if not written.isascii():
        try:
            expected = idna.encode(written, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            raise EgressRefused(
                f"the host {written!r} is not a valid internationalized domain name (IDNA, UTS #46)"
            ) from None
        if expected != host:
            raise EgressRefused(f"the host {written!r} is read as {host!r} by the HTTP client, not as {expected!r}")
        address = parse_host_address(host)
        if address is not None:
            raise EgressRefused(
                f"the host {written!r} is the address {address} written with non-ASCII characters: "
                "write IP addresses in ASCII digits"
            )
        numeric = next((part for part in _IDNA_DOTS.split(written) if part.isdecimal() and not part.isascii()), None)
        if numeric is not None:
            raise EgressRefused(
                f"the host {written!r} has a label of non-ASCII digits ({numeric!r}): write IP addresses in ASCII"
            )
    if ":" in host:
        if "%" in host:
            raise EgressRefused(f"the host {host!r} has an IPv6 zone id, which is refused")
        return
    name = host.removesuffix(".")
    labels = name.split(".")
    if len(name) > _MAX_NAME_LENGTH or not all(_LABEL.fullmatch(label) for label in labels):
        raise EgressRefused(f"the host {host!r} is neither an IP address nor a valid domain name")
    if _NUMERIC_LABEL.fullmatch(labels[-1]) and parse_host_address(host) is None:
        raise EgressRefused(f"the host {host!r} ends in a number but is not an IP address")


def normalize_url(url: str) -> URL:
    """`url` exactly as the HTTP client will use it: parsed by yarl as aiohttp parses it (the host mapped by
    IDNA/UTS #46, lowercased, IP literals compressed). Raises `EgressRefused` for a URL that is not http(s), has
    no host or port 0, or whose host does not survive that normalization as a plain name or address."""
    if len(url) > MAX_URL_LENGTH:
        raise EgressRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in url):
        raise EgressRefused("the URL contains whitespace or control characters")
    if "\\" in url:
        raise EgressRefused("the URL contains a backslash")
    try:
        target = URL(url)
        port = target.port
        written = _written_host(url)
    except (ValueError, UnicodeError) as exc:
        raise EgressRefused(f"the URL is malformed: {exc}") from None
    if target.scheme not in ("http", "https"):
        raise EgressRefused(f"scheme {target.scheme or '(none)'!r} is refused: use http or https")
    host = target.raw_host
    if not host:
        raise EgressRefused("the URL names no host")
    if port == 0:
        raise EgressRefused("port 0 is refused")
    _check_spelling(written, host)
    return target


def judge_host(host: str, policy: EgressPolicy) -> None:
    """Refuse (`EgressRefused`) a normalized host that is `localhost` or spells a refused address; a name
    passes (what it resolves to is judged by whoever resolves it)."""
    name = host.removesuffix(".")
    if name == "localhost" or name.endswith(".localhost"):
        policy.check_address(ipaddress.IPv4Address("127.0.0.1"))
    address = parse_host_address(host)
    if address is not None:
        policy.check_address(address)


def checked_url(url: str, policy: EgressPolicy) -> URL:
    """`normalize_url(url)` once its host passed `judge_host`: the URL to send, exactly as judged. Raises
    `EgressRefused`."""
    target = normalize_url(url)
    judge_host(target.raw_host or "", policy)
    return target


def check_url_literal(url: str, policy: EgressPolicy) -> str:
    """Check what can be checked without DNS: the URL as `normalize_url` reads it, and the address when the
    normalized host is an IP in any spelling. Returns the normalized host (the one the client connects to);
    raises `EgressRefused`."""
    return checked_url(url, policy).raw_host or ""


async def check_url(url: str, policy: EgressPolicy, *, resolve: Resolve) -> None:
    """The check at create and update time: `check_url_literal`, then, for a name, every address `resolve`
    gives for it (within 3 s). A name that does not resolve (yet) passes: the HTTP client judges the addresses
    again before every connection."""
    host = check_url_literal(url, policy)
    if parse_host_address(host) is not None:
        return
    try:
        addresses = await asyncio.wait_for(resolve(host), _RESOLVE_TIMEOUT_SECONDS)
    except (OSError, TimeoutError, UnicodeError):
        return
    judge_addresses(host, addresses, policy)


def judge_addresses(host: str, addresses: Iterable[str], policy: EgressPolicy) -> None:
    """Refuse (`EgressRefused`) when any of the addresses `host` resolved to is refused: a connection may use
    any of them."""
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        reason = policy.refusal(address)
        if reason is not None:
            raise EgressRefused(f"{host} resolves to {address}, which is refused: {reason}")


_BUILT_IN_RULES = EgressPolicy()


def shows_answer_body(peer: IpAddress | None) -> bool:
    """Whether a receiver's answer body may be quoted back to the tenant: only when the connection went to a
    public address, one no built-in rule refuses. Never for an address reached only because
    `MINTLOG_EGRESS_ALLOW` allows it, nor when the peer address is unknown."""
    return peer is not None and _BUILT_IN_RULES.refusal(peer) is None
