"""What a user sends to create or change an on-call person, and how it becomes a `Person`.

Guarantees:
- `validate_person` raises a 422 naming the first bad member (`time_zone`, `contact_methods[1].address`,
  `notification_rules[0].contact_method_id`, …) and nothing else; egress (SSRF) checks of webhook URLs are the
  caller's, since they need the network (`webhook_addresses` lists what to check, with its field);
- every person has the contact method `email` (type `email`, the person's `email`), which rules may name; a
  person without rules gets one: at once by `email`.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import UNSET, Meta, UnsetType

from mintlog.domain.oncall_people import ContactMethod, ContactMethodType, NotificationRule, Person
from mintlog.domain.oncall_schedule import known_zone
from mintlog.errors import UnprocessableEntity

__all__ = [
    "MAX_CONTACT_METHODS",
    "MAX_NOTIFICATION_RULES",
    "PRIMARY_EMAIL_METHOD",
    "ContactMethodSpec",
    "NotificationRuleSpec",
    "PersonSpec",
    "PersonUpdate",
    "build_person",
    "merge_person_update",
    "new_person_id",
    "person_spec",
    "validate_person",
    "webhook_addresses",
]

PRIMARY_EMAIL_METHOD = "email"
"""The id of the contact method every person has: their `email`."""
MAX_CONTACT_METHODS = 10
MAX_NOTIFICATION_RULES = 20
_MAX_AFTER_MINUTES = 7 * 24 * 60
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

_Email = Annotated[str, Meta(min_length=3, max_length=254)]
_MethodId = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,40}$")]


class ContactMethodSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A contact method as sent: its `id` is the caller's (rules name it), or generated when absent."""

    type: ContactMethodType
    address: Annotated[str, Meta(min_length=1, max_length=2048)]
    id: _MethodId | None = None
    label: Annotated[str, Meta(max_length=200)] = ""


class NotificationRuleSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """'After `after_minutes` unacknowledged, notify by `contact_method_id`' (0: at once)."""

    after_minutes: Annotated[int, Meta(ge=0, le=_MAX_AFTER_MINUTES)]
    contact_method_id: _MethodId


class PersonSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The body of a create."""

    name: Annotated[str, Meta(min_length=1, max_length=200)]
    email: _Email
    time_zone: Annotated[str, Meta(min_length=1, max_length=64)] = "UTC"
    contact_methods: Annotated[list[ContactMethodSpec], Meta(max_length=MAX_CONTACT_METHODS)] = msgspec.field(
        default_factory=lambda: []
    )
    notification_rules: Annotated[list[NotificationRuleSpec], Meta(max_length=MAX_NOTIFICATION_RULES)] = msgspec.field(
        default_factory=lambda: []
    )


class PersonUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A `PUT`/`PATCH` body: the members given replace the person's, the others are kept."""

    name: Annotated[str, Meta(min_length=1, max_length=200)] | UnsetType = UNSET
    email: _Email | UnsetType = UNSET
    time_zone: Annotated[str, Meta(min_length=1, max_length=64)] | UnsetType = UNSET
    contact_methods: Annotated[list[ContactMethodSpec], Meta(max_length=MAX_CONTACT_METHODS)] | UnsetType = UNSET
    notification_rules: Annotated[list[NotificationRuleSpec], Meta(max_length=MAX_NOTIFICATION_RULES)] | UnsetType = (
        UNSET
    )


def _invalid(field: str, detail: str) -> UnprocessableEntity:
    return UnprocessableEntity(f"invalid body: {detail}", code="validation_failed", extra={"field": field})


def new_person_id() -> str:
    """A new, unguessable person id."""
    return f"per_{secrets.token_hex(8)}"


def _method_id() -> str:
    return f"cm_{secrets.token_hex(4)}"


def validate_person(spec: PersonSpec) -> PersonSpec:
    """`spec` with every contact method's id filled in; a 422 naming the first bad member otherwise."""
    if not _EMAIL.match(spec.email):
        raise _invalid("email", f"`email` is not an email address: {spec.email!r}")
    known_zone(spec.time_zone)
    methods: list[ContactMethodSpec] = []
    ids = {PRIMARY_EMAIL_METHOD}
    for index, method in enumerate(spec.contact_methods):
        where = f"contact_methods[{index}]"
        method_id = method.id or _method_id()
        if method_id in ids:
            raise _invalid(f"{where}.id", f"the contact method id {method_id!r} is used twice (or is `email`)")
        ids.add(method_id)
        if method.type == "email":
            if not _EMAIL.match(method.address):
                raise _invalid(f"{where}.address", f"not an email address: {method.address!r}")
        elif not method.address.lower().startswith(("http://", "https://")):
            raise _invalid(f"{where}.address", f"a {method.type} address is an http(s) URL")
        methods.append(msgspec.structs.replace(method, id=method_id))
    for index, rule in enumerate(spec.notification_rules):
        if rule.contact_method_id not in ids:
            raise _invalid(
                f"notification_rules[{index}].contact_method_id",
                f"the person has no contact method {rule.contact_method_id!r}",
            )
    return msgspec.structs.replace(spec, contact_methods=methods)


def webhook_addresses(spec: PersonSpec) -> list[tuple[str, str]]:
    """(field, URL) of each webhook or chat-webhook contact method, for the egress check."""
    return [
        (f"contact_methods[{index}].address", method.address)
        for index, method in enumerate(spec.contact_methods)
        if method.type != "email"
    ]


def build_person(person_id: str, tenant_id: str, spec: PersonSpec, *, created_at: datetime, now: datetime) -> Person:
    """The `Person` of a validated spec: the `email` method first, then the spec's; rules default to 'at once by
    email'."""
    methods = [ContactMethod(id=PRIMARY_EMAIL_METHOD, type="email", address=spec.email, label="primary email")]
    methods += [
        ContactMethod(id=method.id or _method_id(), type=method.type, address=method.address, label=method.label)
        for method in spec.contact_methods
    ]
    rules = [
        NotificationRule(after_minutes=rule.after_minutes, contact_method_id=rule.contact_method_id)
        for rule in spec.notification_rules
    ] or [NotificationRule(after_minutes=0, contact_method_id=PRIMARY_EMAIL_METHOD)]
    return Person(
        id=person_id,
        tenant_id=tenant_id,
        name=spec.name,
        email=spec.email,
        time_zone=spec.time_zone,
        contact_methods=methods,
        notification_rules=sorted(rules, key=lambda rule: rule.after_minutes),
        created_at=created_at,
        updated_at=now,
    )


def person_spec(person: Person) -> PersonSpec:
    """The spec a stored person was built from (its own contact methods, without the derived `email`)."""
    return PersonSpec(
        name=person.name,
        email=person.email,
        time_zone=person.time_zone,
        contact_methods=[
            ContactMethodSpec(type=method.type, address=method.address, id=method.id, label=method.label)
            for method in person.contact_methods
            if method.id != PRIMARY_EMAIL_METHOD
        ],
        notification_rules=[
            NotificationRuleSpec(after_minutes=rule.after_minutes, contact_method_id=rule.contact_method_id)
            for rule in person.notification_rules
        ],
    )


def merge_person_update(person: Person, update: PersonUpdate) -> PersonSpec:
    """The person's spec with the members `update` gives replaced."""
    changes = {name: value for name in update.__struct_fields__ if (value := getattr(update, name)) is not UNSET}
    return msgspec.structs.replace(person_spec(person), **changes)
