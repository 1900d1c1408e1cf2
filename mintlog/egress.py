"""The egress guard: which outbound URLs Mintlog may call (webhooks today, uptime checks later).

Server-side request forgery protection. A tenant names a URL and Mintlog calls it from inside the operator's
network, so every address that could reach something private is refused:

- schemes other than `http` and `https`;
- loopback (127.0.0.0/8, ::1), unspecified (0.0.0.0/8, ::), private (10/8, 172.16/12, 192.168/16, fc00::/7,
  fec0::/10), shared address space (CGNAT, 100.64.0.0/10), link-local (169.254.0.0/16 with the cloud metadata
  address 169.254.169.254, fe80::/10), multicast (224.0.0.0/4, ff00::/8), reserved and broadcast
  (240.0.0.0/4, 255.255.255.255), documentation, benchmarking and protocol-assignment ranges, and every IPv6
  address outside global unicast 2000::/3;
- IPv6 forms that carry an IPv4 address (IPv4-mapped `::ffff:127.0.0.1`, IPv4-compatible `::127.0.0.1`,
  NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by the IPv4 address inside; Teredo (2001::/32) and
  local-use NAT64 (64:ff9b:1::/48) are refused outright;
- the legacy IPv4 spellings that `inet_aton` and so every resolver accept (`2130706433`, `0x7f.1`,
  `017700000001`, `127.1`) are read as the addresses they are.

`MINTLOG_EGRESS_ALLOW` (comma-separated CIDRs, empty by default) allows ranges anyway, e.g. `127.0.0.0/8` for
local development and tests; an allowed range wins over every refusal above (except the scheme).

Where the check runs: when a channel is created or updated (`check_url`, resolving the name; a name that does
not resolve yet is accepted, since it is checked again before every connection), and at connect time, on
every attempt (`EgressResolver`, an aiohttp resolver that refuses the connection when any resolved address is
refused, so a DNS answer that changed since creation — DNS rebinding — cannot reach an internal address; and
`check_url_literal` for URLs naming an IP, which aiohttp connects to without resolving). Redirects are never
followed, so a receiver cannot bounce a request to an internal address.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from mintlog.errors import ConfigError

__all__ = [
    "MAX_URL_LENGTH",
    "AttemptResult",
    "EgressClient",
    "EgressPolicy",
    "EgressRefused",
    "EgressResolver",
    "IpAddress",
    "IpNetwork",
    "check_url",
    "check_url_literal",
    "parse_host_address",
    "parse_retry_after",
]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
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


def _url_host(url: str) -> str:
    """The host of an http(s) URL; `EgressRefused` for any other URL."""
    if len(url) > MAX_URL_LENGTH:
        raise EgressRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(char.isspace() or ord(char) < 32 for char in url):
        raise EgressRefused("the URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise EgressRefused(f"the URL is malformed: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise EgressRefused(f"scheme {parts.scheme or '(none)'!r} is refused: use http or https")
    if not parts.hostname:
        raise EgressRefused("the URL names no host")
    if port == 0:
        raise EgressRefused("port 0 is refused")
    return parts.hostname


def check_url_literal(url: str, policy: EgressPolicy) -> str:
    """Check what can be checked without DNS: the scheme, and the address when the host is an IP in any
    spelling. Returns the host; raises `EgressRefused`."""
    host = _url_host(url)
    if host.rstrip(".") == "localhost" or host.endswith(".localhost"):
        policy.check_address(ipaddress.IPv4Address("127.0.0.1"))
    address = parse_host_address(host)
    if address is not None:
        policy.check_address(address)
    return host


async def _system_resolve(host: str) -> Sequence[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def check_url(url: str, policy: EgressPolicy, *, resolve: Resolve = _system_resolve) -> None:
    """The check at create and update time: `check_url_literal`, then, for a name, every address it resolves
    to. A name that does not resolve (yet) passes: `EgressResolver` checks again before every connection."""
    host = check_url_literal(url, policy)
    if parse_host_address(host) is not None:
        return
    try:
        addresses = await asyncio.wait_for(resolve(host), _RESOLVE_TIMEOUT_SECONDS)
    except (OSError, TimeoutError, UnicodeError):
        return
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        reason = policy.refusal(address)
        if reason is not None:
            raise EgressRefused(f"{host} resolves to {address}, which is refused: {reason}")


class EgressResolver(AbstractResolver):
    """An aiohttp resolver that refuses to connect when any address a name resolves to is refused.

    It wraps aiohttp's default resolver and runs on every connection (use it with `use_dns_cache=False`), so a
    name is judged by the addresses the connection will actually use, not by those it had at create time.
    """

    def __init__(self, policy: EgressPolicy, inner: AbstractResolver | None = None) -> None:
        if inner is None:
            from aiohttp.resolver import DefaultResolver

            inner = DefaultResolver()
        self._policy = policy
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        literal = parse_host_address(host)
        if literal is not None:
            self._policy.check_address(literal)
        results = await self._inner.resolve(host, port, family)
        for result in results:
            address = ipaddress.ip_address(result["host"].split("%", 1)[0])
            reason = self._policy.refusal(address)
            if reason is not None:
                raise EgressRefused(f"{host} resolves to {address}, which is refused: {reason}")
        return results

    async def close(self) -> None:
        await self._inner.close()


_USER_AGENT = "Mintlog-Webhooks/1.0"
_ERROR_BODY_BYTES = 200


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What one outbound POST got: the status (None when no answer came), how long it took, and why it
    failed (None for a 2xx). `retry_after_seconds` is the answer's `Retry-After`, when it had a valid one."""

    status_code: int | None
    duration_seconds: float
    error: str | None
    retry_after_seconds: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date); None when absent or invalid."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def _connect_refusal(exc: BaseException) -> EgressRefused | None:
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, EgressRefused):
            return current
        os_error = getattr(current, "os_error", None)
        if isinstance(os_error, EgressRefused):
            return os_error
        current = current.__cause__
    return None


class EgressClient:
    """The one way Mintlog POSTs to a tenant's URL: egress-checked at connect time, redirects never followed.

    Open it with `async with` (or `start`/`close`); one instance shares its connections between attempts.
    `inner_resolver` replaces aiohttp's default resolver under the egress check (tests).
    """

    def __init__(
        self, policy: EgressPolicy, *, max_connections: int = 100, inner_resolver: AbstractResolver | None = None
    ) -> None:
        self._policy = policy
        self._max_connections = max_connections
        self._inner_resolver = inner_resolver
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                resolver=EgressResolver(self._policy, self._inner_resolver),
                use_dns_cache=False,
                limit=self._max_connections,
            )
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> EgressClient:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def post(self, url: str, body: bytes, headers: dict[str, str], *, timeout_seconds: float) -> AttemptResult:
        """POST `body` to `url` once. Never raises for what the receiver or the network does: a refused
        address, a timeout, a connection failure, a redirect (3xx) or a non-2xx answer is an `AttemptResult`
        with its `error`."""
        await self.start()
        assert self._session is not None
        started = time.monotonic()
        try:
            check_url_literal(url, self._policy)
        except EgressRefused as exc:
            return AttemptResult(None, 0.0, f"egress refused: {exc.reason}")
        sent_headers = {"User-Agent": _USER_AGENT, **headers, "Content-Type": "application/json"}
        try:
            async with self._session.post(
                url,
                data=body,
                headers=sent_headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout_seconds),
            ) as response:
                status = response.status
                snippet = (await response.content.read(_ERROR_BODY_BYTES)).decode(errors="replace")
                location = response.headers.get("Location", "")
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
        except TimeoutError:
            return AttemptResult(None, time.monotonic() - started, f"timed out after {timeout_seconds:g}s")
        except (aiohttp.ClientError, OSError) as exc:
            refusal = _connect_refusal(exc)
            elapsed = time.monotonic() - started
            if refusal is not None:
                return AttemptResult(None, elapsed, f"egress refused: {refusal.reason}")
            return AttemptResult(None, elapsed, f"connection failed: {type(exc).__name__}: {exc}"[:500])
        elapsed = time.monotonic() - started
        if 200 <= status < 300:
            return AttemptResult(status, elapsed, None)
        if 300 <= status < 400:
            return AttemptResult(
                status, elapsed, f"redirect refused: the receiver answered {status} to {location[:300]!r}"
            )
        text = " ".join(snippet.split())
        return AttemptResult(
            status, elapsed, f"the receiver answered {status}" + (f": {text}" if text else ""), retry_after
        )
