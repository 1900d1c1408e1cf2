"""The senders of the delivery worker, one per channel type, and `Senders`, which picks one per delivery.

A sender makes one attempt and returns a `SendResult`; the worker alone decides what it means for the delivery
(delivered, retried, dead, channel disabled), the same way for every type.
"""

from __future__ import annotations

from datetime import datetime

from mintlog.domain.channels import Channel, Delivery, PersonContact
from mintlog.domain.notification_chat import chat_format_for_url
from mintlog.domain.notification_text import text_of
from mintlog.ports.outbound import OutboundHttp
from mintlog.ports.smtp import SmtpSender
from mintlog.roles.notify.senders.chat import ChatSender
from mintlog.roles.notify.senders.email import EmailSender
from mintlog.roles.notify.senders.result import SendResult
from mintlog.roles.notify.senders.webhook import WebhookSender
from mintlog.settings import NotifySettings

__all__ = ["SendResult", "Senders"]


class Senders:
    """Dispatches one attempt of a delivery on its channel's type, or on its person contact's type."""

    def __init__(self, *, outbound: OutboundHttp, smtp: SmtpSender, settings: NotifySettings) -> None:
        timeout = settings.timeout_seconds
        self.webhook = WebhookSender(outbound, timeout_seconds=timeout)
        self.chat = ChatSender(outbound, timeout_seconds=timeout)
        self.email = EmailSender(smtp, settings.smtp, timeout_seconds=timeout)

    async def to_channel(self, channel: Channel, delivery: Delivery, *, now: datetime) -> SendResult:
        """One attempt of `delivery` to `channel` (active, of the delivery's tenant)."""
        if channel.channel_type == "webhook":
            return await self.webhook.to_channel(channel, delivery.id, delivery.payload, now=now)
        text = text_of(delivery.event_type, delivery.payload)
        if channel.channel_type == "email" and channel.email is not None:
            return await self.email.to_channel(channel.email, channel.secret, text, message_key=delivery.id, now=now)
        if channel.channel_type == "chat_webhook":
            return await self.chat.send(channel.url, channel.chat_format or "slack", text)
        return SendResult(None, 0.0, f"channel type {channel.channel_type!r} has no settings", permanent=True)

    async def to_person(self, contact: PersonContact, delivery: Delivery, *, now: datetime) -> SendResult:
        """One attempt of a delivery to a person by the contact method it names."""
        if contact.type == "webhook":
            return await self.webhook.to_person(contact.address, delivery.id, delivery.payload, now=now)
        text = text_of(delivery.event_type, delivery.payload)
        if contact.type == "email":
            return await self.email.to_person(contact.address, text, message_key=delivery.id, now=now)
        return await self.chat.send(contact.address, chat_format_for_url(contact.address), text)
