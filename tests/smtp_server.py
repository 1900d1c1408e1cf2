"""An SMTP server on 127.0.0.1 for tests (aiosmtpd in a thread): plain, STARTTLS or implicit TLS, with AUTH,
recording every message and answering the DATA of each with the next scripted reply ("250 OK" once the
script is exhausted), so a test can make the first attempts fail."""

from __future__ import annotations

import email
import email.policy
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.e2e.harness import free_port

__all__ = ["ReceivedEmail", "SmtpTestServer"]


@dataclass(frozen=True)
class ReceivedEmail:
    """One message as the server accepted it: the envelope and the parsed message."""

    mail_from: str
    recipients: list[str]
    message: EmailMessage
    login: str | None
    tls: bool

    def part(self, subtype: str) -> str:
        found = self.message.get_body(preferencelist=(subtype,))
        assert found is not None, f"no text/{subtype} part"
        return str(found.get_content())  # pyright: ignore[reportUnknownMemberType]


class SmtpTestServer:
    """`with SmtpTestServer(...) as server:` serves on `server.port` until the block ends.

    `starttls`/`implicit_tls`: an `ssl.SSLContext` of the server (a trustme certificate); `credentials`:
    (user, password) that AUTH requires (then only over TLS, as aiosmtpd insists by default)."""

    def __init__(
        self,
        replies: Iterable[str] = (),
        *,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self._replies = list(replies)
        self._lock = threading.Condition()
        self.received: list[ReceivedEmail] = []
        self.data_commands = 0
        self.port = free_port()
        server = self

        class Handler:
            async def handle_DATA(self, _server: Any, session: Any, envelope: Any) -> str:
                return server._accept(session, envelope)

        kwargs: dict[str, Any] = {}
        if starttls is not None:
            kwargs.update(tls_context=starttls, require_starttls=True)
        if credentials is not None:
            kwargs.update(authenticator=self._authenticator(credentials), auth_required=True)
        self._controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=self.port,
            ssl_context=implicit_tls,
            server_hostname="localhost",
            **kwargs,
        )

    @staticmethod
    def _authenticator(credentials: tuple[str, str]) -> Any:
        def authenticate(_server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any) -> AuthResult:
            ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == credentials
            return AuthResult(success=ok, auth_data=data)

        return authenticate

    def _accept(self, session: Any, envelope: Any) -> str:
        with self._lock:
            self.data_commands += 1
            reply = self._replies.pop(0) if self._replies else "250 OK"
            if reply.startswith("250"):
                raw = envelope.original_content or envelope.content
                message = email.message_from_bytes(raw, policy=email.policy.default)
                login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
                self.received.append(
                    ReceivedEmail(
                        mail_from=envelope.mail_from,
                        recipients=list(envelope.rcpt_tos),
                        message=message,  # pyright: ignore[reportArgumentType]
                        login=login,
                        tls=session.ssl is not None,
                    )
                )
            self._lock.notify_all()
            return reply

    def wait_for(self, count: int, timeout: float = 30.0) -> list[ReceivedEmail]:
        """Wait until `count` messages were accepted; the messages so far."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.received) < count and time.monotonic() < deadline:
                self._lock.wait(timeout=max(0.0, deadline - time.monotonic()))
            return list(self.received)

    def __enter__(self) -> SmtpTestServer:
        self._controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._controller.stop()
