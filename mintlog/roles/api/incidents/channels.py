"""Notification channel routes under `/v1/notifications/channels` (scopes `notifications:read`/`:write`).

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
- another tenant's channel id answers 404 on every verb; every write is in the audit log.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, delete, get, post, route
from litestar.params import FromPath
from msgspec import UNSET, Meta, UnsetType

from mintlog.domain.channels import (
    Channel,
    ChannelChanges,
    header_problem,
    kept_header_values,
    masked_headers,
    new_channel_id,
)
from mintlog.domain.egress import EgressRefused
from mintlog.domain.webhooks import channel_test_payload, generate_secret, signature_headers
from mintlog.http.guards import principal_of, requires
from mintlog.ports.notifications import NotificationStore
from mintlog.ports.outbound import OutboundHttp
from mintlog.roles.api.common.auditing import AuditedWrite, audit_target
from mintlog.roles.api.common.dependencies import Clock, Injected
from mintlog.roles.api.common.pagination import Cursor, Limit, Page, TimeWindow
from mintlog.roles.api.common.resource import UPDATE_METHODS, Resource, operation
from mintlog.roles.api.common.wire import decode_body, invalid_field, read_body

__all__ = [
    "ChannelCreate",
    "ChannelTestResult",
    "ChannelUpdate",
    "ChannelView",
    "Channels",
    "channel_view",
]

_TEST_TIMEOUT_SECONDS = 10.0

ChannelName = Annotated[str, Meta(min_length=1, max_length=200)]
Url = Annotated[str, Meta(min_length=1, max_length=2048)]
Secret = Annotated[str, Meta(min_length=1, max_length=200)]


class WebhookConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The `config` of a webhook channel. Without `secret`, Mintlog generates one."""

    url: Url
    secret: Secret | None = None
    headers: dict[str, str] = msgspec.field(default_factory=lambda: {})


class WebhookConfigUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The members of `config` to change; absent ones stay. `headers` replaces the whole set; a value of
    `****` in it keeps the stored value of that header."""

    url: Url | UnsetType = UNSET
    secret: Secret | UnsetType = UNSET
    headers: dict[str, str] | UnsetType = UNSET


class ChannelCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`POST /v1/notifications/channels` (the seed's body)."""

    name: ChannelName
    config: WebhookConfig
    channel_type: Literal["webhook"] = "webhook"
    is_active: bool = True


class ChannelUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`PUT`/`PATCH …/channels/{id}`: the members given replace the channel's, the others are kept.
    `is_active: true` re-enables a channel disabled by a 410 and clears the reason."""

    name: ChannelName | UnsetType = UNSET
    config: WebhookConfigUpdate | UnsetType = UNSET
    is_active: bool | UnsetType = UNSET


class WebhookConfigView(msgspec.Struct, frozen=True, kw_only=True):
    """A webhook's config as shown: never the secret, and every header value shown as `****`."""

    url: str
    headers: dict[str, str]
    has_secret: bool


class ChannelView(msgspec.Struct, frozen=True, kw_only=True):
    """A channel as the API shows it. `disabled_reason`/`disabled_at` say why and since when it is inactive."""

    id: str
    name: str
    channel_type: str
    config: WebhookConfigView
    is_active: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    created_at: datetime
    updated_at: datetime


class CreatedChannelView(ChannelView, frozen=True, kw_only=True):
    """A channel just created; `secret` is present only when Mintlog generated it, and only this once."""

    secret: str | UnsetType = UNSET


class ChannelTestResult(msgspec.Struct, frozen=True, kw_only=True):
    """What the test event got: `delivered` for a 2xx, else the status (if any) and the error."""

    delivered: bool
    status_code: int | None
    duration_ms: int
    error: str | None
    webhook_id: str


_create_decoder = msgspec.json.Decoder(ChannelCreate)
_update_decoder = msgspec.json.Decoder(ChannelUpdate)


def channel_view(channel: Channel) -> ChannelView:
    return ChannelView(
        id=channel.id,
        name=channel.name,
        channel_type=channel.channel_type,
        config=WebhookConfigView(url=channel.url, headers=masked_headers(channel.headers), has_secret=True),
        is_active=channel.is_active,
        disabled_reason=channel.disabled_reason,
        disabled_at=channel.disabled_at,
        created_at=channel.created_at,
        updated_at=channel.updated_at,
    )


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


class Channels(Resource):
    """`/v1/notifications/channels`: the tenant's webhook channels, plus `POST …/{id}/test`."""

    path = "/v1/notifications/channels"
    opt = audit_target("channel")
    noun = "notification channel"
    not_found_code = "channel_not_found"
    where = " in this tenant"

    @post(
        guards=[requires("notifications:write")],
        status_code=201,
        summary="Create a webhook channel.",
        description=(
            'Body: {"name", "channel_type": "webhook", "config": {"url", "secret", "headers"}}. Without a secret, '
            "a whsec_ secret is generated and shown in this answer only."
        ),
        opt=operation(audit="channel.create", body=ChannelCreate, errors=(422,)),
    )
    async def create_channel(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        notifications: Injected[NotificationStore],
        outbound: Injected[OutboundHttp],
        clock: Injected[Clock],
    ) -> CreatedChannelView:
        principal = principal_of(request)
        async with audit.record() as note:
            body = decode_body(await read_body(request.stream()), _create_decoder)
            await _check_config(body.config.url, body.config.headers, outbound)
            now = clock()
            generated = generate_secret() if body.config.secret is None else None
            channel = Channel(
                id=new_channel_id(),
                tenant_id=principal.tenant_id,
                name=body.name,
                channel_type=body.channel_type,
                url=body.config.url,
                headers=dict(body.config.headers),
                secret=generated or body.config.secret or "",
                is_active=body.is_active,
                created_at=now,
                updated_at=now,
                disabled_reason=None if body.is_active else "switched off over the API",
                disabled_at=None if body.is_active else now,
            )
            await notifications.create_channel(channel)
            note.target_id = channel.id
            note.detail = {"name": channel.name, "url": channel.url, "secret_generated": generated is not None}
        view = channel_view(channel)
        return CreatedChannelView(**msgspec.structs.asdict(view), secret=generated if generated else UNSET)

    @get(
        guards=[requires("notifications:read")],
        summary="List notification channels, oldest first (never their secrets).",
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
        description="PUT and PATCH are the same.",
        opt=operation(audit="channel.update", body=ChannelUpdate, errors=(422,)),
    )
    async def update_channel(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        notifications: Injected[NotificationStore],
        outbound: Injected[OutboundHttp],
        clock: Injected[Clock],
        channel_id: FromPath[str],
    ) -> ChannelView:
        principal = principal_of(request)
        async with audit.record(target_id=channel_id) as note:
            body = decode_body(await read_body(request.stream()), _update_decoder)
            config = body.config if not isinstance(body.config, UnsetType) else WebhookConfigUpdate()
            url = None if isinstance(config.url, UnsetType) else config.url
            headers = None if isinstance(config.headers, UnsetType) else config.headers
            current = self.found(await notifications.get_channel(principal.tenant_id, channel_id), channel_id)
            await _check_config(url, headers, outbound, stored=current.headers)
            changes = ChannelChanges(
                name=None if isinstance(body.name, UnsetType) else body.name,
                url=url,
                headers=None if headers is None else kept_header_values(headers, current.headers),
                secret=None if isinstance(config.secret, UnsetType) else config.secret,
                is_active=None if isinstance(body.is_active, UnsetType) else body.is_active,
            )
            updated = self.found(
                await notifications.update_channel(principal.tenant_id, channel_id, changes, updated_at=clock()),
                channel_id,
            )
            note.detail = {
                "changed": sorted(
                    name
                    for name in ("name", "url", "headers", "secret", "is_active")
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
        summary="Send a signed test event to the channel now and answer with what its receiver did.",
        description="Nothing is stored and nothing is retried; a disabled channel is tested too.",
        opt=operation(),
    )
    async def test_channel(
        self,
        request: Request[Any, Any, Any],
        notifications: Injected[NotificationStore],
        outbound: Injected[OutboundHttp],
        clock: Injected[Clock],
        channel_id: FromPath[str],
    ) -> ChannelTestResult:
        principal = principal_of(request)
        channel = self.found(await notifications.get_channel(principal.tenant_id, channel_id), channel_id)
        now = clock()
        webhook_id = f"msg_test_{secrets.token_hex(12)}"
        body = channel_test_payload(channel.id, channel.name, now)
        headers = {**channel.headers, **signature_headers(channel.secret, webhook_id, int(now.timestamp()), body)}
        result = await outbound.post(channel.url, body, headers, timeout_seconds=_TEST_TIMEOUT_SECONDS)
        return ChannelTestResult(
            delivered=result.ok,
            status_code=result.status_code,
            duration_ms=round(result.duration_seconds * 1000),
            error=result.error,
            webhook_id=webhook_id,
        )
