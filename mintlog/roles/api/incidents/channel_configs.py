"""The bodies and views of the three channel types (`webhook`, `email`, `chat_webhook`), and their checks.

Each type has a create body, an update body and a view, tagged by `channel_type` (a create body without it is
a webhook, as before the other types existed). Write-only members: a webhook's `secret` and header values, an
email channel's `password`; views show `has_secret`/`has_password` and `****` for header values instead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from mintlog.domain.channels import MAX_RECIPIENTS, ChatFormat, SmtpSecurity

__all__ = [
    "ChannelCreate",
    "ChannelTypeProbe",
    "ChannelView",
    "ChatChannelCreate",
    "ChatChannelUpdate",
    "ChatChannelView",
    "ChatConfig",
    "CreatedWebhookChannelView",
    "EmailChannelCreate",
    "EmailChannelUpdate",
    "EmailChannelView",
    "EmailConfig",
    "WebhookChannelCreate",
    "WebhookChannelUpdate",
    "WebhookChannelView",
    "WebhookConfig",
    "WebhookConfigUpdate",
]

ChannelName = Annotated[str, Meta(min_length=1, max_length=200)]
Url = Annotated[str, Meta(min_length=1, max_length=2048)]
Secret = Annotated[str, Meta(min_length=1, max_length=200)]
SmtpHost = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=253,
        pattern=r"^[A-Za-z0-9._-]+$|^\[?[0-9A-Fa-f:.]+\]?$",
        description="A host name or an IP address (no scheme, no port).",
    ),
]
Port = Annotated[int, Meta(ge=1, le=65535)]
EmailAddress = Annotated[
    str,
    Meta(
        min_length=3,
        max_length=254,
        pattern=r"^[^@\s<>(),;:\"\[\]\\]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$",
        description="A plain address, `local@domain` (no display name).",
    ),
]
Recipients = Annotated[list[EmailAddress], Meta(min_length=1, max_length=MAX_RECIPIENTS)]


class ChannelTypeProbe(msgspec.Struct, frozen=True, kw_only=True):
    """The one member read first, to pick the body type; absent means `webhook`."""

    channel_type: Literal["webhook", "email", "chat_webhook"] = "webhook"


# Webhook


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


class WebhookChannelCreate(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="channel_type", tag="webhook"
):
    """`POST /v1/notifications/channels` for a signed webhook (the seed's body; `channel_type` may be left out)."""

    name: ChannelName
    config: WebhookConfig
    is_active: bool = True


class WebhookChannelUpdate(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="channel_type", tag="webhook"
):
    """`PUT`/`PATCH …/channels/{id}` of a webhook: the members given replace the channel's, the others are kept.
    `is_active: true` re-enables a channel disabled by a 410 and clears the reason."""

    name: ChannelName | UnsetType = UNSET
    config: WebhookConfigUpdate | UnsetType = UNSET
    is_active: bool | UnsetType = UNSET


# Email


class EmailConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An email channel's SMTP server and envelope. `username` and `password` go together (SMTP AUTH);
    `password` is write-only. `verify_tls: false` accepts any certificate (a self-signed server)."""

    host: SmtpHost
    port: Port
    from_address: EmailAddress
    recipients: Recipients
    security: SmtpSecurity = "starttls"
    username: Secret | None = None
    password: Secret | None = None
    verify_tls: bool = True


class EmailConfigUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The members of an email channel's `config` to change; absent ones stay. `username: null` turns AUTH
    off (and forgets the password)."""

    host: SmtpHost | UnsetType = UNSET
    port: Port | UnsetType = UNSET
    from_address: EmailAddress | UnsetType = UNSET
    recipients: Recipients | UnsetType = UNSET
    security: SmtpSecurity | UnsetType = UNSET
    username: Secret | UnsetType | None = UNSET
    password: Secret | UnsetType = UNSET
    verify_tls: bool | UnsetType = UNSET


class EmailChannelCreate(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="channel_type", tag="email"
):
    """`POST /v1/notifications/channels` for an email channel."""

    name: ChannelName
    config: EmailConfig
    is_active: bool = True


class EmailChannelUpdate(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="channel_type", tag="email"
):
    """`PUT`/`PATCH …/channels/{id}` of an email channel."""

    name: ChannelName | UnsetType = UNSET
    config: EmailConfigUpdate | UnsetType = UNSET
    is_active: bool | UnsetType = UNSET


# Chat webhook


class ChatConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A chat incoming webhook: its URL (a secret of the chat service: write it, it is shown) and the format
    its service accepts."""

    url: Url
    format: ChatFormat = "slack"


class ChatConfigUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The members of a chat webhook's `config` to change; absent ones stay."""

    url: Url | UnsetType = UNSET
    format: ChatFormat | UnsetType = UNSET


class ChatChannelCreate(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="channel_type", tag="chat_webhook"
):
    """`POST /v1/notifications/channels` for a chat webhook (Slack, Mattermost, Microsoft Teams)."""

    name: ChannelName
    config: ChatConfig
    is_active: bool = True


class ChatChannelUpdate(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="channel_type", tag="chat_webhook"
):
    """`PUT`/`PATCH …/channels/{id}` of a chat webhook."""

    name: ChannelName | UnsetType = UNSET
    config: ChatConfigUpdate | UnsetType = UNSET
    is_active: bool | UnsetType = UNSET


ChannelCreate = WebhookChannelCreate | EmailChannelCreate | ChatChannelCreate
"""The create body, by `channel_type` (OpenAPI; decoding reads `channel_type` first)."""


# Views


class WebhookConfigView(msgspec.Struct, frozen=True, kw_only=True):
    """A webhook's config as shown: never the secret, and every header value shown as `****`."""

    url: str
    headers: dict[str, str]
    has_secret: bool


class EmailConfigView(msgspec.Struct, frozen=True, kw_only=True):
    """An email channel's config as shown: never the password."""

    host: str
    port: int
    security: str
    from_address: str
    recipients: list[str]
    username: str | None
    has_password: bool
    verify_tls: bool


class ChatConfigView(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    format: str


class _ViewBase(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    is_active: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    created_at: datetime
    updated_at: datetime


class WebhookChannelView(_ViewBase, frozen=True, kw_only=True, tag_field="channel_type", tag="webhook"):
    """A webhook channel as the API shows it. `disabled_reason`/`disabled_at` say why and since when it is
    inactive."""

    config: WebhookConfigView


class CreatedWebhookChannelView(WebhookChannelView, frozen=True, kw_only=True, tag="webhook"):
    """A webhook channel just created; `secret` is present only when Mintlog generated it, and only this once."""

    secret: str | UnsetType = UNSET


class EmailChannelView(_ViewBase, frozen=True, kw_only=True, tag_field="channel_type", tag="email"):
    """An email channel as the API shows it."""

    config: EmailConfigView


class ChatChannelView(_ViewBase, frozen=True, kw_only=True, tag_field="channel_type", tag="chat_webhook"):
    """A chat webhook channel as the API shows it."""

    config: ChatConfigView


ChannelView = WebhookChannelView | EmailChannelView | ChatChannelView
"""A channel as the API shows it, by `channel_type`."""
