"""`AiosmtplibSmtpSender`: the `SmtpSender` port on aiosmtplib.

Guarantees:
- With `guarded` (a tenant's host), the host is judged like a webhook URL's (`judge_host`: refused spellings,
  `localhost`), resolved, and refused when **any** address it resolves to is refused (DNS rebinding cannot
  reach an internal address); the socket is then opened by Mintlog to an address just judged and handed to
  aiosmtplib, so what was judged is what is connected to. TLS still verifies the certificate against the
  host's name (unless the channel turned `verify_tls` off).
- `starttls` requires the upgrade: a server that does not offer STARTTLS fails the send (nothing is sent in
  clear); `tls` speaks TLS from the first byte; `none` never encrypts.
- vendor errors become an `SmtpResult`: a 5xx reply is `permanent`; 4xx, connection, TLS and timeout failures
  are not. A server's reply text is quoted (200 characters at most, one line) only from a public address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from email.message import EmailMessage

from mintlog.domain.egress import (
    EgressPolicy,
    EgressRefused,
    IpAddress,
    judge_host,
    parse_host_address,
    shows_answer_body,
)
from mintlog.ports.smtp import SmtpResult, SmtpServer

__all__ = ["AiosmtplibSmtpSender"]

_RESOLVE_TIMEOUT_SECONDS = 3.0
_REPLY_CHARS = 200


def _one_line(text: str) -> str:
    printable = "".join(char if char.isprintable() else " " for char in text)
    return " ".join(printable.split())[:_REPLY_CHARS]


class AiosmtplibSmtpSender:
    """One per process; opens one connection per send (notifications are few, and a fresh connection judges
    the addresses again)."""

    def __init__(self, policy: EgressPolicy, *, ca_file: str | None = None) -> None:
        """`ca_file`: CA certificates to trust instead of the system's (tests; a private PKI)."""
        self._policy = policy
        self._ca_file = ca_file

    async def check_host(self, host: str) -> None:
        judge_host(_normalized(host), self._policy)
        if parse_host_address(host) is not None:
            return
        try:
            addresses = await asyncio.wait_for(_resolve(host, 25), _RESOLVE_TIMEOUT_SECONDS)
        except (OSError, TimeoutError, UnicodeError):
            return
        self._judge_all(host, addresses)

    async def send(
        self, server: SmtpServer, message: EmailMessage, *, timeout_seconds: float, guarded: bool = True
    ) -> SmtpResult:
        import aiosmtplib

        started = time.monotonic()
        peer: IpAddress | None = None

        def failed(error: str, *, reply_code: int | None = None, permanent: bool = False) -> SmtpResult:
            return SmtpResult(reply_code, time.monotonic() - started, error, permanent)

        try:
            sock, peer = await asyncio.wait_for(self._connect(server, guarded=guarded), timeout_seconds)
        except EgressRefused as exc:
            return failed(f"egress refused: {exc.reason}")
        except TimeoutError:
            return failed(f"could not connect to {server.host}:{server.port} within {timeout_seconds:g} s")
        except OSError as exc:
            return failed(f"could not connect to {server.host}:{server.port}: {exc.strerror or exc}")
        context = ssl.create_default_context(cafile=self._ca_file)
        if not server.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        client = aiosmtplib.SMTP(
            hostname=server.host,
            sock=sock,
            use_tls=server.security == "tls",
            start_tls=False,
            tls_context=context if server.security != "none" else None,
            timeout=timeout_seconds,
        )
        raw_transport: asyncio.BaseTransport | None = None
        try:
            await client.connect()
            raw_transport = client.transport
            if server.security == "starttls":
                await client.starttls(tls_context=context)
            if server.username:
                await client.login(server.username, server.password or "")
            await client.send_message(message)
            await client.quit()
        except aiosmtplib.SMTPRecipientsRefused as exc:
            first = exc.recipients[0]
            reply = self._reply(first.code, first.message, peer)
            return failed(reply, reply_code=first.code, permanent=first.code >= 500)
        except aiosmtplib.SMTPResponseException as exc:
            return failed(self._reply(exc.code, exc.message, peer), reply_code=exc.code, permanent=exc.code >= 500)
        except aiosmtplib.SMTPTimeoutError:
            return failed(f"the SMTP server did not answer within {timeout_seconds:g} s")
        except aiosmtplib.SMTPException as exc:
            return failed(f"SMTP failed: {_one_line(str(exc))}")
        except ssl.SSLError as exc:
            return failed(f"TLS failed: {_one_line(exc.reason or str(exc))}")
        except OSError as exc:
            return failed(f"SMTP connection failed: {_one_line(str(exc))}")
        finally:
            client.close()
            if raw_transport is not None and not raw_transport.is_closing():
                raw_transport.close()
            sock.close()
        return SmtpResult(250, time.monotonic() - started, None)

    async def _connect(self, server: SmtpServer, *, guarded: bool) -> tuple[socket.socket, IpAddress]:
        host = _normalized(server.host)
        if guarded:
            judge_host(host, self._policy)
        infos = await _resolve_infos(host, server.port)
        if guarded:
            self._judge_all(host, [str(info[4][0]) for info in infos])
        last_error: OSError | None = None
        for family, kind, proto, _, sockaddr in infos:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if guarded:
                self._policy.check_address(address)
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            try:
                await asyncio.get_running_loop().sock_connect(sock, sockaddr)
            except OSError as exc:
                sock.close()
                last_error = exc
                continue
            return sock, address
        raise last_error or OSError(f"{host} has no address")

    def _judge_all(self, host: str, addresses: list[str]) -> None:
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            reason = self._policy.refusal(address)
            if reason is not None:
                raise EgressRefused(f"{host} resolves to {address}, which is refused: {reason}")

    @staticmethod
    def _reply(code: int, text: str, peer: IpAddress | None) -> str:
        if shows_answer_body(peer):
            return f"the SMTP server answered {code}: {_one_line(text)}"
        return f"the SMTP server answered {code} (reply not shown: the server's address is internal or unknown)"


def _normalized(host: str) -> str:
    try:
        return host.encode("idna").decode("ascii").lower().rstrip(".") if not host.isascii() else host.lower()
    except UnicodeError:
        raise EgressRefused(f"host {host!r} is not a valid domain name") from None


async def _resolve_infos(host: str, port: int) -> list[tuple[int, int, int, str, tuple[object, ...]]]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [(int(info[0]), int(info[1]), info[2], info[3], tuple(info[4])) for info in infos]


async def _resolve(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in await _resolve_infos(host, port)]
