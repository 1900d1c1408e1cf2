"""The chat-webhook sender: a notification's chat payload (`mintlog.domain.notification_chat`), POSTed through
the outbound HTTP port (egress policy, no redirects), like a webhook."""

from __future__ import annotations

from mintlog.domain.channels import ChatFormat
from mintlog.domain.notification_chat import chat_payload
from mintlog.domain.notification_text import NotificationText
from mintlog.ports.outbound import OutboundHttp
from mintlog.roles.notify.senders.result import SendResult, from_http

__all__ = ["ChatSender"]


class ChatSender:
    """POSTs chat payloads under the egress policy."""

    def __init__(self, outbound: OutboundHttp, *, timeout_seconds: float) -> None:
        self._outbound = outbound
        self._timeout = timeout_seconds

    async def send(self, url: str, chat_format: ChatFormat, text: NotificationText) -> SendResult:
        result = await self._outbound.post(url, chat_payload(chat_format, text), {}, timeout_seconds=self._timeout)
        return from_http(result)
