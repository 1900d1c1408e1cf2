"""The audit log of management writes: who did what to which tenant, when, and how it ended. Pure code, no I/O.

An entry never holds a secret: API keys appear by id and display prefix only.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any, Literal, get_args

import msgspec

__all__ = [
    "AUDIT_ACTIONS",
    "AuditAction",
    "AuditEntry",
    "AuditQuery",
    "AuditResult",
    "audit_result_for_status",
    "new_audit_id",
]

AuditAction = Literal[
    "tenant.create",
    "tenant.update",
    "tenant.delete",
    "key.create",
    "key.revoke",
    "key.rotate",
    "incident.create",
    "incident.update",
    "incident.comment",
    "silence.create",
    "silence.expire",
    "alert_rule.create",
    "alert_rule.update",
    "alert_rule.delete",
    "channel.create",
    "channel.update",
    "channel.delete",
    "delivery.retry",
    "extraction_rule.create",
    "extraction_rule.update",
    "extraction_rule.delete",
    "parsing.update",
    "monitor.create",
    "monitor.update",
    "monitor.pause",
    "monitor.resume",
    "monitor.delete",
    "monitor.badge_create",
    "monitor.badge_revoke",
    "maintenance_window.create",
    "maintenance_window.update",
    "maintenance_window.delete",
    "person.create",
    "person.update",
    "person.delete",
    "schedule.create",
    "schedule.update",
    "schedule.delete",
    "schedule.override_create",
    "schedule.override_delete",
    "schedule.ical_token_create",
    "schedule.ical_token_delete",
    "monitor.rotate_ping_token",
    "escalation_policy.create",
    "escalation_policy.update",
    "escalation_policy.delete",
    "escalation_policy.default",
    "oncall_routes.replace",
    "incident.link_action",
]
AUDIT_ACTIONS: tuple[AuditAction, ...] = get_args(AuditAction)
"""Every action, in the order of `AuditAction` (the one list to extend)."""

AuditResult = Literal["ok", "denied", "error"]


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One management write, successful or refused.

    `tenant_id` is the tenant acted upon (for a write refused by a scope check, the caller's own tenant);
    `actor_tenant_id` is the tenant of the key that acted. `detail` holds what changed or, for a refusal, the
    problem's `status` and `code`.
    """

    id: str
    occurred_at: datetime
    tenant_id: str
    actor_tenant_id: str
    actor_key_id: str
    actor_key_prefix: str
    action: str
    target_type: str
    target_id: str | None = None
    result: AuditResult
    detail: dict[str, Any] = msgspec.field(default_factory=lambda: {})


class AuditQuery(msgspec.Struct, frozen=True, kw_only=True):
    """A page of the audit log, newest first. Every filter is optional and they combine with AND.

    `tenant_id` matches entries about that tenant or by one of its keys; `actor` matches a key id or a key
    display prefix; `start` is inclusive and `end` exclusive; `before` is the (occurred_at, id) of the last
    entry of the previous page.
    """

    tenant_id: str | None = None
    actor: str | None = None
    action: str | None = None
    result: AuditResult | None = None
    start: datetime | None = None
    end: datetime | None = None
    before: tuple[datetime, str] | None = None
    limit: int = 50


def audit_result_for_status(status: int) -> AuditResult:
    """`denied` for a 403 (the key may not do this), `error` for any other refusal or failure."""
    return "denied" if status == 403 else "error"


def new_audit_id() -> str:
    """A fresh audit entry id (`aud_` and 20 hex digits)."""
    return f"aud_{secrets.token_hex(10)}"
