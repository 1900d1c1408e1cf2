"""The webhook sender: the stored payload, POSTed with the channel's headers and the Standard Webhooks
signature (`webhook-id` = the delivery id on every attempt). A person's plain webhook gets the same request
with `webhook-id` and `webhook-timestamp` but no signature (a contact method has no secret)."""

from __future__ import annotations

from datetime import datetime

from mintlog.domain.channels import Channel
from mintlog.domain.webhooks import signature_headers
from mintlog.ports.outbound import OutboundHttp
from mintlog.roles.notify.senders.result import SendResult, from_http

__all__ = ["WebhookSender"]


class WebhookSender:
    """Signed webhooks to channels, unsigned ones to people's webhook contact methods."""

    def __init__(self, outbound: OutboundHttp, *, timeout_seconds: float) -> None:
        self._outbound = outbound
        self._timeout = timeout_seconds

    async def to_channel(self, channel: Channel, delivery_id: str, payload: bytes, *, now: datetime) -> SendResult:
        headers = {**channel.headers, **signature_headers(channel.secret, delivery_id, int(now.timestamp()), payload)}
        return from_http(await self._outbound.post(channel.url, payload, headers, timeout_seconds=self._timeout))

    async def to_person(self, url: str, delivery_id: str, payload: bytes, *, now: datetime) -> SendResult:
        headers = {"webhook-id": delivery_id, "webhook-timestamp": str(int(now.timestamp()))}
        return from_http(await self._outbound.post(url, payload, headers, timeout_seconds=self._timeout))
