"""On-call people of a tenant: who they are, how to reach them, and when to try which way.

This module is the shared contract between the people/schedules API (which stores and validates people) and
the escalation engine (which notifies them). Its shapes are stable: add fields with defaults, never rename.

Guarantees:
- a `Person` always has at least one `ContactMethod`, the `email` one derived from `Person.email`;
- `NotificationRule.after_minutes` is counted from the moment the person is first notified for an incident,
  and a rule fires at most once per incident and person.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

__all__ = ["ContactMethod", "ContactMethodType", "NotificationRule", "Person"]

ContactMethodType = Literal["email", "webhook", "chat_webhook"]


class ContactMethod(msgspec.Struct, frozen=True, kw_only=True):
    """One way to reach a person: an email address, a signed-webhook URL or a chat incoming-webhook URL."""

    id: str
    type: ContactMethodType
    address: str
    label: str = ""


class NotificationRule(msgspec.Struct, frozen=True, kw_only=True):
    """'After `after_minutes` unacknowledged, notify by `contact_method_id`' (0 means at once)."""

    after_minutes: int
    contact_method_id: str


class Person(msgspec.Struct, frozen=True, kw_only=True):
    """A person of one tenant who can be on call. `time_zone` is an IANA name (`Europe/Berlin`)."""

    id: str
    tenant_id: str
    name: str
    email: str
    time_zone: str
    contact_methods: list[ContactMethod]
    notification_rules: list[NotificationRule]
    created_at: datetime
    updated_at: datetime
