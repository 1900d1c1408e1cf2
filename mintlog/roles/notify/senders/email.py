"""The email sender: a notification's email (`mintlog.domain.notification_email`) over SMTP.

A channel's own SMTP server is judged by the egress policy (`guarded`); the operator's relay
(`MINTLOG_NOTIFY__SMTP__*`, for emails to people) is trusted. The `Message-ID` is the delivery id's, the same
on every attempt.
"""

from __future__ import annotations

from datetime import datetime

from mintlog.domain.channels import EmailSettings
from mintlog.domain.notification_email import email_message
from mintlog.domain.notification_text import NotificationText
from mintlog.ports.smtp import SmtpSender, SmtpServer
from mintlog.roles.notify.senders.result import SendResult, from_smtp
from mintlog.settings import SmtpRelaySettings

__all__ = ["EmailSender", "channel_smtp_server"]


def channel_smtp_server(settings: EmailSettings, password: str) -> SmtpServer:
    """The SMTP server of an email channel (`password` is its secret, empty for none)."""
    return SmtpServer(
        host=settings.host,
        port=settings.port,
        security=settings.security,
        username=settings.username,
        password=password or None,
        verify_tls=settings.verify_tls,
    )


class EmailSender:
    """Sends to an email channel's SMTP server, or to a person's address through the operator's relay."""

    def __init__(self, smtp: SmtpSender, relay: SmtpRelaySettings, *, timeout_seconds: float) -> None:
        self._smtp = smtp
        self._relay = relay
        self._timeout = timeout_seconds

    async def to_channel(
        self, settings: EmailSettings, password: str, text: NotificationText, *, message_key: str, now: datetime
    ) -> SendResult:
        server = channel_smtp_server(settings, password)
        message = email_message(
            text, from_address=settings.from_address, recipients=settings.recipients, message_key=message_key, now=now
        )
        return from_smtp(await self._smtp.send(server, message, timeout_seconds=self._timeout))

    async def to_person(self, address: str, text: NotificationText, *, message_key: str, now: datetime) -> SendResult:
        relay = self._relay
        if not relay.host:
            return SendResult(None, 0.0, "no SMTP relay for emails to people: set MINTLOG_NOTIFY__SMTP__HOST")
        server = SmtpServer(
            host=relay.host,
            port=relay.port,
            security=relay.security,
            username=relay.username or None,
            password=relay.password or None,
            verify_tls=relay.verify_tls,
        )
        message = email_message(
            text, from_address=relay.from_address, recipients=[address], message_key=message_key, now=now
        )
        return from_smtp(await self._smtp.send(server, message, timeout_seconds=self._timeout, guarded=False))
