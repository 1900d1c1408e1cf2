"""`StoredPersonNotifier`: the `PersonNotifier` port on the notify role's persisted deliveries.

A message to a person becomes one delivery (`channel_id` null, `contact` = the person and the contact method,
`dedup_key` unique per tenant), sent by the delivery worker's sender for the contact method's type: `email`
through the operator's SMTP relay (`MINTLOG_NOTIFY__SMTP__*`), `chat_webhook` as a chat message (Teams format
for Microsoft hosts, else Slack's, which Mattermost accepts), `webhook` as an unsigned JSON POST. It then has
everything a channel delivery has: retries on the same schedule, the egress policy at send time (webhook and
chat URLs), the delivery log (`person_id` on each item, `?person_id=` to filter), dead-lettering and metrics.

Guarantees (those of the port): `notify` returns once the delivery is committed; the same `dedup_key` in the
same tenant is stored once, and every call with it returns the first delivery's id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import msgspec

from mintlog.domain.channels import Delivery, PersonContact
from mintlog.domain.notification_text import PERSON_EVENT_TYPE, PersonMessageData, PersonNotification
from mintlog.domain.oncall_people import ContactMethod, Person
from mintlog.metrics import Metrics
from mintlog.ports.notifications import NotificationStore
from mintlog.ports.person_notify import PersonMessage, PersonNotice

__all__ = ["StoredPersonNotifier", "person_delivery_id", "person_payload"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


_encoder = msgspec.json.Encoder()


def person_payload(person: Person, message: PersonMessage, now: datetime) -> bytes:
    """The stored payload of a message to a person (also the body of a person's plain webhook)."""
    data = msgspec.convert(message, PersonMessageData, from_attributes=True)
    notification = PersonNotification(
        type=PERSON_EVENT_TYPE,
        timestamp=now,
        person_id=person.id,
        person_name=person.name,
        data=data,
        time_zone=person.time_zone,
    )
    return _encoder.encode(notification)


def person_delivery_id(tenant_id: str, dedup_key: str) -> str:
    """The id of the delivery of `dedup_key` in the tenant (its `webhook-id` and `Message-ID`)."""
    digest = hashlib.sha256(f"person\n{tenant_id}\n{dedup_key}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


class StoredPersonNotifier:
    """Persists person notifications; `wake` (the sender's) is called after a new one is stored, so it goes out
    at once rather than at the next poll."""

    def __init__(
        self,
        store: NotificationStore,
        *,
        metrics: Metrics,
        wake: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._wake = wake
        self._clock = clock

    async def notify(
        self,
        tenant_id: str,
        person: Person,
        contact_method: ContactMethod,
        message: PersonMessage,
        *,
        dedup_key: str,
    ) -> str:
        delivery = _delivery(PersonNotice(tenant_id, person, contact_method, message, dedup_key), self._clock())
        stored_id, created = await self._store.enqueue_person_delivery(delivery)
        if created:
            self._metrics.notify_deliveries_enqueued.inc()
            self._wake()
        return stored_id

    async def notify_many(self, notices: Sequence[PersonNotice]) -> list[str]:
        now = self._clock()
        stored = await self._store.enqueue_person_deliveries([_delivery(notice, now) for notice in notices])
        created = sum(1 for _, new in stored if new)
        if created:
            self._metrics.notify_deliveries_enqueued.inc(created)
            self._wake()
        return [stored_id for stored_id, _ in stored]


def _delivery(notice: PersonNotice, now: datetime) -> Delivery:
    """The delivery that carries `notice` (its id derived from the tenant and the dedup key)."""
    person, contact_method, dedup_key = notice.person, notice.contact_method, notice.dedup_key
    return Delivery(
        id=person_delivery_id(notice.tenant_id, dedup_key),
        tenant_id=notice.tenant_id,
        channel_id=None,
        event_id=dedup_key[:200],
        event_type=PERSON_EVENT_TYPE,
        incident_id=notice.message.incident_id,
        payload=person_payload(person, notice.message, now),
        status="pending",
        attempts=0,
        round_attempts=0,
        next_attempt_at=now,
        created_at=now,
        contact=PersonContact(
            person_id=person.id,
            contact_method_id=contact_method.id,
            type=contact_method.type,
            address=contact_method.address,
        ),
        dedup_key=dedup_key,
    )
