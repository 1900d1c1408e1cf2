"""Connections of the TCP and TLS probes under the egress policy, and the short reasons their failures give.

A host is resolved once, every address it resolves to is judged (`judge_addresses`), and the connection goes to
one of those judged addresses, never to the name again: nothing is resolved twice, so a DNS answer cannot
change between the judgement and the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl

from mintlog.domain.egress import EgressPolicy, EgressRefused, Resolve, judge_addresses, judge_host, parse_host_address

__all__ = [
    "close_quietly",
    "describe_os_error",
    "insecure_tls_context",
    "open_judged",
    "resolve_judged",
    "verifying_tls_context",
]


async def resolve_judged(host: str, policy: EgressPolicy, resolve: Resolve) -> list[str]:
    """The addresses `host` (normalized) stands for, once the policy accepted all of them. Raises
    `EgressRefused` when any is refused, `OSError` when the name does not resolve."""
    judge_host(host, policy)
    literal = parse_host_address(host)
    if literal is not None:
        return [str(literal)]
    addresses = list(dict.fromkeys(await resolve(host)))
    if not addresses:
        raise socket.gaierror(socket.EAI_NONAME, f"{host} resolves to no address")
    judge_addresses(host, addresses, policy)
    return addresses


async def open_judged(
    addresses: list[str], port: int, *, tls: ssl.SSLContext | None, server_name: str | None
) -> tuple[asyncio.StreamWriter, str]:
    """A connection (TLS when `tls`) to the first of the judged `addresses` that accepts one, and that address.
    A TLS failure stops at that address (another would present the same certificate); raises the last
    `OSError`."""
    last_error: OSError = ConnectionRefusedError("no address to connect to")
    for address in addresses:
        try:
            _, writer = await asyncio.open_connection(
                address, port, ssl=tls, server_hostname=server_name if tls is not None else None
            )
        except ssl.SSLError:
            raise
        except OSError as exc:
            last_error = exc
            continue
        return writer, address
    raise last_error


async def close_quietly(writer: asyncio.StreamWriter) -> None:
    """Close a probe's connection; a peer that already went away is not a failure of the check."""
    writer.close()
    with contextlib.suppress(OSError):  # ssl.SSLError is an OSError
        await writer.wait_closed()


def describe_os_error(exc: BaseException) -> str:
    """A short reason for a connection failure, safe to show the tenant (no local paths or internals)."""
    if isinstance(exc, EgressRefused):
        return f"refused by egress policy: {exc.reason}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed: {getattr(exc, 'verify_message', None) or 'unknown reason'}"
    if isinstance(exc, ssl.SSLError):
        # Only errors raised by OpenSSL itself carry `reason` (e.g. WRONG_VERSION_NUMBER).
        return f"TLS handshake failed: {getattr(exc, 'reason', None) or type(exc).__name__}"
    if isinstance(exc, socket.gaierror):
        return f"name resolution failed: {exc.strerror or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by peer"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError):
        return f"connection failed: {exc.strerror or type(exc).__name__}"
    return f"connection failed: {type(exc).__name__}"


def verifying_tls_context(ca_file: str | None) -> ssl.SSLContext:
    """A client context that verifies the chain and the host name: against `ca_file` alone when given (tests,
    private CAs), else the default CA store."""
    return ssl.create_default_context(cafile=ca_file)


def insecure_tls_context() -> ssl.SSLContext:
    """A client context that completes a handshake whatever the certificate (checks with verification off)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
