"""Notification channel routes under `/v1/notifications/channels` (scopes `notifications:read`/`:write`).

Three types (`channel_type`; bodies and views in `channel_configs`): `webhook` (signed), `email` (SMTP) and
`chat_webhook` (Slack, Mattermost, Teams). The type is fixed at creation.

Guarantees:
- the secret is write-only: no answer ever holds it, except the create answer when Mintlog generated it
  (a `whsec_…` Standard Webhooks secret, when the body names none), which shows it this once;
- `config.url` is checked by the egress guard at create and update time (http/https only; loopback, private,
  link-local, metadata and other internal addresses refused unless `MINTLOG_EGRESS_ALLOW` allows them), as
  the HTTP client will read it (IDNA/UTS #46 normalization, legacy IPv4 spellings; `OutboundHttp.check_target`): a
  refused URL is a 422 whose `field` is `config.url`. The check runs again before every connection, the test
  event's included, which never quotes the body of a receiver at an internal address;
- `config.headers` are bounded (20 headers, 2048 characters each) and may not set hop-by-hop, framing or
  `webhook-*` headers (422 naming the header). Their values are write-only: every answer shows each header
  name with the value `****`. In an update, a header whose value is `****` keeps its stored value (so a
  channel read and written back unchanged keeps its secrets); `****` for a header the channel does not have
  is a 422 naming it;
- an email channel's `config.password` is write-only like a secret; its `config.host` passes the same egress
  guard as a URL (at create and update time, and again after DNS before every connection): a refused host is a
  422 whose `field` is `config.host`; `username` and `password` go together; 1 to 50 recipients;
- a chat webhook's `config.url` passes the egress guard like a webhook's; `config.format` is `slack`,
  `teams` or `mattermost`;
- another tenant's channel id answers 404 on every verb; every write is in the audit log.
"""

from __future__ import annotations

import secrets
from typing import Any

import msgspec
from litestar import Request, delete, get, post, route
from litestar.params import FromPath
from msgspec import UNSET, UnsetType

from mintlog.domain.channels import (
    Channel,
    ChannelChanges,
    EmailSettings,
    header_problem,
    kept_header_values,
    masked_headers,
    new_channel_id,
)
from mintlog.domain.egress import EgressRefused
from mintlog.domain.notification_chat import chat_payload
from mintlog.domain.notification_email import email_message
from mintlog.domain.notification_text import text_of
from mintlog.domain.webhooks import TEST_EVENT_TYPE, channel_test_payload, generate_secret, signature_headers
from mintlog.http.guards import principal_of, requires
from mintlog.ports.notifications import NotificationStore
from mintlog.ports.outbound import OutboundHttp
from mintlog.ports.smtp import SmtpSender, SmtpServer
from mintlog.roles.api.common.auditing import AuditedWrite, audit_target
from mintlog.roles.api.common.dependencies import Clock, Injected
from mintlog.roles.api.common.pagination import Cursor, Limit, Page, TimeWindow
from mintlog.roles.api.common.resource import UPDATE_METHODS, Resource, operation
from mintlog.roles.api.common.wire import decode_body, invalid_field, read_body
from mintlog.roles.api.incidents.channel_configs import (
    ChannelCreate,
    ChannelTypeProbe,
    ChannelView,
    ChatChannelCreate,
    ChatChannelUpdate,
    ChatChannelView,
    ChatConfigView,
    CreatedWebhookChannelView,
    EmailChannelCreate,
    EmailChannelUpdate,
    EmailChannelView,
    EmailConfigUpdate,
    EmailConfigView,
    WebhookChannelCreate,
    WebhookChannelUpdate,
    WebhookChannelView,
    WebhookConfigUpdate,
    WebhookConfigView,
)

__all__ = ["ChannelTestResult", "Channels", "channel_view"]

_TEST_TIMEOUT_SECONDS = 10.0


class ChannelTestResult(msgspec.Struct, frozen=True, kw_only=True):
    """What the test event got: `delivered` for a 2xx (or an email the server accepted), else the status or
    SMTP reply code (if any) and the error."""

    delivered: bool
    status_code: int | None
    duration_ms: int
    error: str | None
    webhook_id: str


_probe_decoder = msgspec.json.Decoder(ChannelTypeProbe)
_create_decoders: dict[str, msgspec.json.Decoder[Any]] = {
    "webhook": msgspec.json.Decoder(WebhookChannelCreate),
    "email": msgspec.json.Decoder(EmailChannelCreate),
    "chat_webhook": msgspec.json.Decoder(ChatChannelCreate),
}
_update_decoders: dict[str, msgspec.json.Decoder[Any]] = {
    "webhook": msgspec.json.Decoder(WebhookChannelUpdate),
    "email": msgspec.json.Decoder(EmailChannelUpdate),
    "chat_webhook": msgspec.json.Decoder(ChatChannelUpdate),
}


def channel_view(channel: Channel) -> ChannelView:
    """The channel as the API shows it: never a secret, a password or a header value."""
    common: dict[str, Any] = {
        "id": channel.id,
        "name": channel.name,
        "is_active": channel.is_active,
        "disabled_reason": channel.disabled_reason,
        "disabled_at": channel.disabled_at,
        "created_at": channel.created_at,
        "updated_at": channel.updated_at,
    }
    if channel.channel_type == "email" and channel.email is not None:
        email = channel.email
        config = EmailConfigView(
            host=email.host,
            port=email.port,
            security=email.security,
            from_address=email.from_address,
            recipients=list(email.recipients),
            username=email.username,
            has_password=bool(channel.secret),
            verify_tls=email.verify_tls,
        )
        return EmailChannelView(**common, config=config)
    if channel.channel_type == "chat_webhook":
        return ChatChannelView(**common, config=ChatConfigView(url=channel.url, format=channel.chat_format or "slack"))
    webhook = WebhookConfigView(url=channel.url, headers=masked_headers(channel.headers), has_secret=True)
    return WebhookChannelView(**common, config=webhook)


async def _check_config(
    url: str | None, headers: dict[str, str] | None, outbound: OutboundHttp, *, stored: dict[str, str] | None = None
) -> None:
    if headers is not None:
        problem = header_problem(headers, stored)
        if problem is not None:
            field, reason = problem
            raise invalid_field(field, reason)
    if url is not None:
        try:
            await outbound.check_target(url)
        except EgressRefused as exc:
            raise invalid_field("config.url", f"`config.url` is refused: {exc.reason}") from None


async def _check_smtp_host(host: str, smtp: SmtpSender) -> None:
    try:
        await smtp.check_host(host.strip("[]"))
    except EgressRefused as exc:
        raise invalid_field("config.host", f"`config.host` is refused: {exc.reason}") from None


def _check_auth(username: str | None, password: str | None) -> None:
    if bool(username) != bool(password):
        field = "config.password" if username else "config.username"
        raise invalid_field(
            field, "`config.username` and `config.password` go together (SMTP AUTH): give both or neither"
        )


def _email_settings(body: EmailChannelCreate) -> EmailSettings:
    config = body.config
    return EmailSettings(
        host=config.host.strip("[]"),
        port=config.port,
        security=config.security,
        from_address=config.from_address,
        recipients=list(dict.fromkeys(config.recipients)),
        username=config.username,
        verify_tls=config.verify_tls,
    )


def _updated_email(current: EmailSettings, update: EmailConfigUpdate) -> EmailSettings:
    changes = {name: value for name, value in msgspec.structs.asdict(update).items() if value is not UNSET}
    changes.pop("password", None)
    if "host" in changes:
        changes["host"] = str(changes["host"]).strip("[]")
    if "recipients" in changes:
        changes["recipients"] = list(dict.fromkeys(changes["recipients"]))
    return msgspec.structs.replace(current, **changes)


class Channels(Resource):
    """`/v1/notifications/channels`: the tenant's channels (webhook, email, chat webhook), plus
    `POST …/{id}/test`."""

    path = "/v1/notifications/channels"
    opt = audit_target("channel")
    noun = "notification channel"
    not_found_code = "channel_not_found"
    where = " in this tenant"

    @post(
        guards=[requires("notifications:write")],
        status_code=201,
        summary="Create a channel: a signed webhook, an email (SMTP) or a chat webhook (Slack, Mattermost, Teams).",
        description=(
            'Body: {"name", "channel_type": "webhook" (default) | "email" | "chat_webhook", "config": {…}}. '
            "webhook: config {url, secret, headers}; without a secret, a whsec_ secret is generated and shown in "
            "this answer only. email: config {host, port, security, username, password, from_address, "
            "recipients, verify_tls}. chat_webhook: config {url, format: slack|teams|mattermost}."
        ),
        opt=operation(audit="channel.create", body=ChannelCreate, errors=(422,)),
    )
    async def create_channel(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        notifications: Injected[NotificationStore],
        outbound: Injected[OutboundHttp],
        smtp: Injected[SmtpSender],
        clock: Injected[Clock],
    ) -> ChannelView:
        principal = principal_of(request)
        async with audit.record() as note:
            raw = await read_body(request.stream())
            channel_type = decode_body(raw, _probe_decoder).channel_type
            body = decode_body(raw, _create_decoders[channel_type])
            now = clock()
            base: dict[str, Any] = {
                "id": new_channel_id(),
                "tenant_id": principal.tenant_id,
                "name": body.name,
                "is_active": body.is_active,
                "created_at": now,
                "updated_at": now,
                "disabled_reason": None if body.is_active else "switched off over the API",
                "disabled_at": None if body.is_active else now,
            }
            generated: str | None = None
            if isinstance(body, EmailChannelCreate):
                _check_auth(body.config.username, body.config.password)
                await _check_smtp_host(body.config.host, smtp)
                email = _email_settings(body)
                channel = Channel(
                    **base,
                    channel_type="email",
                    url="",
                    headers={},
                    secret=body.config.password or "",
                    email=email,
                )
                note.detail = {"name": channel.name, "host": email.host, "recipients": len(email.recipients)}
            elif isinstance(body, ChatChannelCreate):
                await _check_config(body.config.url, None, outbound)
                channel = Channel(
                    **base,
                    channel_type="chat_webhook",
                    url=body.config.url,
                    headers={},
                    secret="",
                    chat_format=body.config.format,
                )
                note.detail = {"name": channel.name, "format": body.config.format}
            else:
                assert isinstance(body, WebhookChannelCreate)
                await _check_config(body.config.url, body.config.headers, outbound)
                generated = generate_secret() if body.config.secret is None else None
                channel = Channel(
                    **base,
                    channel_type="webhook",
                    url=body.config.url,
                    headers=dict(body.config.headers),
                    secret=generated or body.config.secret or "",
                )
                note.detail = {"name": channel.name, "url": channel.url, "secret_generated": generated is not None}
            await notifications.create_channel(channel)
            note.target_id = channel.id
        view = channel_view(channel)
        if isinstance(view, WebhookChannelView):
            fields = {name: getattr(view, name) for name in view.__struct_fields__}
            return CreatedWebhookChannelView(**fields, secret=generated if generated else UNSET)
        return view

    @get(
        guards=[requires("notifications:read")],
        summary="List notification channels, oldest first (never their secrets or passwords).",
        opt=operation(),
    )
    async def list_channels(
        self,
        request: Request[Any, Any, Any],
        notifications: Injected[NotificationStore],
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> Page[ChannelView]:
        principal = principal_of(request)
        window = TimeWindow.of(request, limit, cursor)
        found = await notifications.list_channels(principal.tenant_id, after=window.after, limit=window.fetch)
        return window.page(found, channel_view)

    @get("/{channel_id:str}", guards=[requires("notifications:read")], summary="Get a channel.", opt=operation())
    async def get_channel(
        self, request: Request[Any, Any, Any], notifications: Injected[NotificationStore], channel_id: FromPath[str]
    ) -> ChannelView:
        principal = principal_of(request)
        return channel_view(self.found(await notifications.get_channel(principal.tenant_id, channel_id), channel_id))

    @route(
        "/{channel_id:str}",
        http_method=UPDATE_METHODS,
        guards=[requires("notifications:write")],
        status_code=200,
        summary="Update a channel: the members given replace the channel's, the others are kept.",
        description="PUT and PATCH are the same. The body is that of the channel's type; the type cannot change.",
        opt=operation(
            audit="channel.update", body=WebhookChannelUpdate | EmailChannelUpdate | ChatChannelUpdate, errors=(422,)
        ),
    )
    async def update_channel(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        notifications: Injected[NotificationStore],
        outbound: Injected[OutboundHttp],
        smtp: Injected[SmtpSender],
        clock: Injected[Clock],
        channel_id: FromPath[str],
    ) -> ChannelView:
        principal = principal_of(request)
        async with audit.record(target_id=channel_id) as note:
            raw = await read_body(request.stream())
            current = self.found(await notifications.get_channel(principal.tenant_id, channel_id), channel_id)
            body = decode_body(raw, _update_decoders[current.channel_type])
            if isinstance(body, EmailChannelUpdate):
                changes = await _email_changes(body, current, smtp)
            elif isinstance(body, ChatChannelUpdate):
                changes = await _chat_changes(body, current, outbound)
            else:
                assert isinstance(body, WebhookChannelUpdate)
                changes = await _webhook_changes(body, current, outbound)
            updated = self.found(
                await notifications.update_channel(principal.tenant_id, channel_id, changes, updated_at=clock()),
                channel_id,
            )
            note.detail = {
                "changed": sorted(
                    name
                    for name in ("name", "url", "headers", "secret", "is_active", "email", "chat_format")
                    if getattr(changes, name) is not None
                )
            }
        return channel_view(updated)

    @delete(
        "/{channel_id:str}",
        guards=[requires("notifications:write")],
        status_code=204,
        summary="Delete a channel and its deliveries.",
        opt=operation(audit="channel.delete"),
    )
    async def delete_channel(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        notifications: Injected[NotificationStore],
        channel_id: FromPath[str],
    ) -> None:
        principal = principal_of(request)
        async with audit.record(target_id=channel_id):
            if not await notifications.delete_channel(principal.tenant_id, channel_id):
                raise self.not_found(channel_id)

    @post(
        "/{channel_id:str}/test",
        guards=[requires("notifications:write")],
        status_code=200,
        summary="Send a test notification to the channel now and answer with what its receiver did.",
        description=(
            "A signed test event for a webhook, a test email for an email channel, a test message for a chat "
            "webhook. Nothing is stored and nothing is retried; a disabled channel is tested too."
        ),
        opt=operation(),
    )
    async def test_channel(
        self,
        request: Request[Any, Any, Any],
        notifications: Injected[NotificationStore],
        outbound: Injected[OutboundHttp],
        smtp: Injected[SmtpSender],
        clock: Injected[Clock],
        channel_id: FromPath[str],
    ) -> ChannelTestResult:
        principal = principal_of(request)
        channel = self.found(await notifications.get_channel(principal.tenant_id, channel_id), channel_id)
        now = clock()
        webhook_id = f"msg_test_{secrets.token_hex(12)}"
        body = channel_test_payload(channel.id, channel.name, now)
        if channel.channel_type == "email" and channel.email is not None:
            email = channel.email
            message = email_message(
                text_of(TEST_EVENT_TYPE, body),
                from_address=email.from_address,
                recipients=list(email.recipients),
                message_key=webhook_id,
                now=now,
            )
            server = SmtpServer(
                host=email.host,
                port=email.port,
                security=email.security,
                username=email.username,
                password=channel.secret or None,
                verify_tls=email.verify_tls,
            )
            sent = await smtp.send(server, message, timeout_seconds=_TEST_TIMEOUT_SECONDS)
            status_code, duration, error = sent.reply_code, sent.duration_seconds, sent.error
        else:
            if channel.channel_type == "chat_webhook":
                body = chat_payload(channel.chat_format or "slack", text_of(TEST_EVENT_TYPE, body))
                headers: dict[str, str] = {}
            else:
                headers = {
                    **channel.headers,
                    **signature_headers(channel.secret, webhook_id, int(now.timestamp()), body),
                }
            result = await outbound.post(channel.url, body, headers, timeout_seconds=_TEST_TIMEOUT_SECONDS)
            status_code, duration, error = result.status_code, result.duration_seconds, result.error
        return ChannelTestResult(
            delivered=error is None,
            status_code=status_code,
            duration_ms=round(duration * 1000),
            error=error,
            webhook_id=webhook_id,
        )


async def _webhook_changes(body: WebhookChannelUpdate, current: Channel, outbound: OutboundHttp) -> ChannelChanges:
    config = body.config if not isinstance(body.config, UnsetType) else WebhookConfigUpdate()
    url = None if isinstance(config.url, UnsetType) else config.url
    headers = None if isinstance(config.headers, UnsetType) else config.headers
    await _check_config(url, headers, outbound, stored=current.headers)
    return ChannelChanges(
        name=None if isinstance(body.name, UnsetType) else body.name,
        url=url,
        headers=None if headers is None else kept_header_values(headers, current.headers),
        secret=None if isinstance(config.secret, UnsetType) else config.secret,
        is_active=None if isinstance(body.is_active, UnsetType) else body.is_active,
    )


async def _email_changes(body: EmailChannelUpdate, current: Channel, smtp: SmtpSender) -> ChannelChanges:
    config = body.config if not isinstance(body.config, UnsetType) else EmailConfigUpdate()
    assert current.email is not None
    email = _updated_email(current.email, config)
    password = current.secret
    if not isinstance(config.password, UnsetType):
        password = config.password
    if email.username is None:
        password = ""
    _check_auth(email.username, password or None)
    if not isinstance(config.host, UnsetType):
        await _check_smtp_host(config.host, smtp)
    changed_email = email if email != current.email else None
    return ChannelChanges(
        name=None if isinstance(body.name, UnsetType) else body.name,
        secret=password if password != current.secret else None,
        is_active=None if isinstance(body.is_active, UnsetType) else body.is_active,
        email=changed_email,
    )


async def _chat_changes(body: ChatChannelUpdate, current: Channel, outbound: OutboundHttp) -> ChannelChanges:
    url = None if isinstance(body.config, UnsetType) or isinstance(body.config.url, UnsetType) else body.config.url
    chat_format = (
        None if isinstance(body.config, UnsetType) or isinstance(body.config.format, UnsetType) else body.config.format
    )
    await _check_config(url, None, outbound)
    return ChannelChanges(
        name=None if isinstance(body.name, UnsetType) else body.name,
        url=url,
        is_active=None if isinstance(body.is_active, UnsetType) else body.is_active,
        chat_format=chat_format,
    )
