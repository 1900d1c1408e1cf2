"""`AiohttpOutboundHttp`: the `OutboundHttp` port on aiohttp, the one way Mintlog calls a tenant's URL.

Guarantees (the policy itself is `mintlog.domain.egress`):

- Before a request, the URL is normalized and judged (`checked_url`), and that normalized URL is the one sent,
  so the host judged is the host connected to.
- Every connection is judged again by the addresses it really uses: a name by every address it resolves to, on
  every connection (`EgressResolver`, no DNS cache), so a DNS answer that changed since the URL was checked (DNS
  rebinding) cannot reach an internal address; and every socket by the address it is about to connect to
  (`guarded_socket_factory`), which covers IP literals that aiohttp connects to without its resolver. A refusal
  is an `EgressRefused`, an `OSError`, so aiohttp reports it as a connection error.
- Redirects are never followed, so a receiver cannot bounce a request to an internal address; a 3xx is a
  failed attempt naming where it pointed.
- What an attempt reports (`AttemptResult.error`): the status, and for a non-2xx answer the first 200 bytes of
  the receiver's body (printable, on one line) only when the connection went to a public address; a receiver
  at an address that the built-in rules refuse (reachable only because `MINTLOG_EGRESS_ALLOW` allows it), or at
  an unknown one, never has its body quoted, so an allowed internal range cannot be read through the error
  field.
- The proxy variables of the environment are ignored (`trust_env=False`): requests go straight to the judged
  address.

One instance shares its connections (at most `max_connections`) between concurrent requests; they are opened at
the first request.
"""

from __future__ import annotations

import email.utils
import ipaddress
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from mintlog.domain.egress import (
    EgressPolicy,
    EgressRefused,
    IpAddress,
    Resolve,
    check_url,
    checked_url,
    judge_addresses,
    judge_host,
    shows_answer_body,
)
from mintlog.ports.outbound import AttemptResult
from mintlog.resolver import system_resolve

__all__ = [
    "AiohttpOutboundHttp",
    "EgressResolver",
    "egress_connector",
    "guarded_socket_factory",
    "parse_retry_after",
    "system_resolve",
]

_USER_AGENT = "Mintlog-Webhooks/1.0"
_ERROR_BODY_BYTES = 200


# What aiohttp passes a socket factory: getaddrinfo's (family, type, proto, canonname, sockaddr).
AddrInfo = tuple[int, int, int, str, tuple[Any, ...]]


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
        judge_host(host, self._policy)
        results = await self._inner.resolve(host, port, family)
        judge_addresses(host, (result["host"] for result in results), self._policy)
        return results

    async def close(self) -> None:
        await self._inner.close()


def guarded_socket_factory(policy: EgressPolicy) -> Callable[[AddrInfo], socket.socket]:
    """An aiohttp `socket_factory` that raises `EgressRefused` instead of opening a socket to an address
    `policy` refuses. aiohttp calls it for every connection attempt with the address it is about to connect
    to, after its resolver or without it (an IP literal host never reaches the resolver), so nothing connects
    to a refused address through a connector built with it."""

    def open_socket(addr_info: AddrInfo) -> socket.socket:
        family, kind, proto, _, sockaddr = addr_info
        policy.check_address(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]))
        return socket.socket(family=family, type=kind, proto=proto)

    return open_socket


def egress_connector(
    policy: EgressPolicy,
    *,
    max_connections: int = 100,
    inner_resolver: AbstractResolver | None = None,
    force_close: bool = False,
) -> aiohttp.TCPConnector:
    """An aiohttp connector that judges every connection: names by every address they resolve to
    (`EgressResolver`, no DNS cache), and every socket by the address it connects to (`guarded_socket_factory`).
    `force_close` opens a new connection for every request (uptime probes: each check measures a fresh one).
    """
    return aiohttp.TCPConnector(
        resolver=EgressResolver(policy, inner_resolver),
        use_dns_cache=False,
        limit=max_connections,
        socket_factory=guarded_socket_factory(policy),
        force_close=force_close,
    )


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


def _peer_address(response: aiohttp.ClientResponse) -> IpAddress | None:
    """The address the answer came from, while its connection is open; None when unknown."""
    connection = response.connection
    transport = None if connection is None else connection.transport
    peer: object = None if transport is None else transport.get_extra_info("peername")
    fields = cast("tuple[object, ...]", peer) if isinstance(peer, tuple) else ()
    if not fields:
        return None
    try:
        return ipaddress.ip_address(str(fields[0]).split("%", 1)[0])
    except ValueError:
        return None


def _printable(text: str) -> str:
    """`text` on one line, without control or other unprintable characters."""
    return " ".join("".join(char if char.isprintable() else " " for char in text).split())


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


class AiohttpOutboundHttp:
    """Requests to tenants' URLs under `policy` (see the module docstring).

    `inner_resolver` replaces aiohttp's default resolver under the egress check, and `resolve` the system
    resolver of `check_target` (tests). Also an async context manager that closes it on exit.
    """

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        max_connections: int = 100,
        inner_resolver: AbstractResolver | None = None,
        resolve: Resolve = system_resolve,
    ) -> None:
        self._policy = policy
        self._max_connections = max_connections
        self._inner_resolver = inner_resolver
        self._resolve = resolve
        self._session: aiohttp.ClientSession | None = None

    async def _opened(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = egress_connector(
                self._policy, max_connections=self._max_connections, inner_resolver=self._inner_resolver
            )
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        return self._session

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def __aenter__(self) -> AiohttpOutboundHttp:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def check_target(self, url: str) -> None:
        await check_url(url, self._policy, resolve=self._resolve)

    async def post(self, url: str, body: bytes, headers: Mapping[str, str], *, timeout_seconds: float) -> AttemptResult:
        json_headers = {**headers, "Content-Type": "application/json"}
        return await self.request("POST", url, body=body, headers=json_headers, timeout_seconds=timeout_seconds)

    async def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_seconds: float,
    ) -> AttemptResult:
        session = await self._opened()
        started = time.monotonic()
        try:
            target = checked_url(url, self._policy)
        except EgressRefused as exc:
            return AttemptResult(None, 0.0, f"egress refused: {exc.reason}")
        sent_headers = {"User-Agent": _USER_AGENT, **(headers or {})}
        try:
            # The normalized URL itself is sent, so the host judged above is the host connected to.
            async with session.request(
                method,
                target,
                data=body,
                headers=sent_headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout_seconds),
            ) as response:
                status = response.status
                shown = shows_answer_body(_peer_address(response))
                snippet = ""
                if shown and not 200 <= status < 400:
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
                status, elapsed, f"redirect refused: the receiver answered {status} to {_printable(location)[:300]!r}"
            )
        text = f": {_printable(snippet)}" if shown and snippet.strip() else ""
        if not shown:
            text = " (body not shown: the receiver's address is internal or unknown)"
        return AttemptResult(status, elapsed, f"the receiver answered {status}{text}", retry_after)
