"""The SMTP port: every email Mintlog sends (email channels, emails to people) goes through one `SmtpSender`,
built once per process by the composition root (`runtime.smtp`).

An implementation applies the egress policy of `mintlog.domain.egress` to a tenant's SMTP host (the host, every
address it resolves to, the address connected to), exactly as `OutboundHttp` does for URLs; the operator's own
relay (`MINTLOG_NOTIFY__SMTP__*`) is sent to with `guarded=False`.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from typing import Literal, Protocol

__all__ = ["SmtpResult", "SmtpSender", "SmtpServer"]


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """Where to send: host, port, `security` (`tls` from the first byte, `starttls` required, `none`), AUTH
    credentials (both or neither), and whether the certificate is verified (against `host`)."""

    host: str
    port: int
    security: Literal["starttls", "tls", "none"]
    username: str | None = None
    password: str | None = None
    verify_tls: bool = True


@dataclass(frozen=True, slots=True)
class SmtpResult:
    """What one send got. `reply_code` is the server's SMTP reply to the failing command (None when no reply
    came: refused address, connection or TLS failure, timeout); `permanent` is true for a 5xx reply, which
    sending again will not change. `error` is None once the server accepted the message."""

    reply_code: int | None
    duration_seconds: float
    error: str | None
    permanent: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


class SmtpSender(Protocol):
    """Sends emails under the egress policy. Safe to share between concurrent tasks."""

    async def check_host(self, host: str) -> None:
        """The check when a tenant names an SMTP host (an email channel is created or updated): the host and,
        for a name, every address it resolves to now. Raises `EgressRefused` with a reason the tenant may see.
        A name that does not resolve yet passes: every send judges the addresses again."""
        ...

    async def send(
        self, server: SmtpServer, message: EmailMessage, *, timeout_seconds: float, guarded: bool = True
    ) -> SmtpResult:
        """Send `message` once (its From/To headers are the envelope) within `timeout_seconds` per step. Never
        raises for what the server or the network does: that is an `SmtpResult` with its `error`. With `guarded`
        (a tenant's host), the host is judged after DNS and the socket opened only to an allowed address."""
        ...
