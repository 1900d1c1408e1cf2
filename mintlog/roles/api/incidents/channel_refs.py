"""Checking the `channel_ids` a rule or an incident names: each must be one of the caller's own channels."""

from __future__ import annotations

from collections.abc import Sequence

from mintlog.errors import UnprocessableEntity
from mintlog.ports.escalation import EscalationStore
from mintlog.ports.notifications import NotificationStore

__all__ = ["check_channel_ids", "check_policy_id"]


async def check_channel_ids(channels: NotificationStore, tenant_id: str, channel_ids: Sequence[str]) -> None:
    """Raise a 422 naming `channel_ids[i]` for the first id that repeats an earlier one or is not a channel of
    `tenant_id` (another tenant's channel is refused exactly like a missing one)."""
    for index, channel_id in enumerate(channel_ids):
        repeated = channel_id in channel_ids[:index]
        if repeated or await channels.get_channel(tenant_id, channel_id) is None:
            reason = "names a channel twice" if repeated else "no notification channel"
            raise UnprocessableEntity(
                f"invalid body: `channel_ids[{index}]`: {reason} {channel_id!r}",
                code="validation_failed",
                extra={"field": f"channel_ids[{index}]"},
            )


async def check_policy_id(policies: EscalationStore, tenant_id: str, policy_id: str | None) -> None:
    """Raise a 422 naming `escalation_policy_id` unless it is None or one of `tenant_id`'s escalation policies."""
    if policy_id is not None and await policies.get_policy(tenant_id, policy_id) is None:
        raise UnprocessableEntity(
            f"invalid body: `escalation_policy_id`: no escalation policy {policy_id!r}",
            code="validation_failed",
            extra={"field": "escalation_policy_id"},
        )
