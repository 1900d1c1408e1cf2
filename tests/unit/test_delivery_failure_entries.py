"""Which attempts of a delivery reach its incident's timeline (`delivery_failed`), and what the entry says: the
first failed attempt of a round and the give-up, never a later retry nor a success."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from mintlog.domain.channels import Delivery, DeliveryOutcome, PersonContact
from mintlog.roles.notify.delivery_worker import failure_entry

NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
TO_ANN = Delivery(
    id="msg_1",
    tenant_id="acme",
    channel_id=None,
    event_id="inc_1:esr_1.0:0:0:per_ann:email",
    event_type="person.notification",
    incident_id="inc_1",
    payload=b"{}",
    status="sending",
    attempts=1,
    round_attempts=1,
    next_attempt_at=NOW,
    created_at=NOW,
    contact=PersonContact(person_id="per_ann", contact_method_id="email", type="email", address="ann@example.com"),
)


def attempt(number: int, status: str, error: str | None = "SMTP 451 try later") -> tuple[Delivery, DeliveryOutcome]:
    delivery = msgspec.structs.replace(TO_ANN, attempts=number, round_attempts=number)
    retry_at = NOW + timedelta(seconds=30) if status == "failed" else None
    return delivery, DeliveryOutcome(status, NOW, 12, 451, error, next_attempt_at=retry_at)  # type: ignore[arg-type]


def test_the_first_failure_of_a_person_delivery_names_the_person_the_method_and_the_error() -> None:
    entry = failure_entry(*attempt(1, "failed"))
    assert entry is not None
    assert (entry.event_type, entry.actor) == ("delivery_failed", "system")
    assert entry.content == (
        "delivery to person per_ann by email (email) failed (attempt 1, retried at 2026-12-06T08:00:30+00:00): "
        "SMTP 451 try later"
    )
    assert entry.data is not None
    assert entry.data["target"] == {"type": "person", "id": "per_ann"}
    assert (entry.data["contact_method_id"], entry.data["final"], entry.data["delivery_id"]) == (
        "email",
        False,
        "msg_1",
    )


@pytest.mark.parametrize(("number", "status"), [(2, "failed"), (7, "failed"), (1, "delivered"), (3, "delivered")])
def test_later_retries_and_successes_write_nothing(number: int, status: str) -> None:
    assert failure_entry(*attempt(number, status, None if status == "delivered" else "SMTP 451")) is None


def test_giving_up_writes_a_final_entry_whatever_the_attempt_and_clips_the_error() -> None:
    entry = failure_entry(*attempt(5, "dead", "gave up after 5 attempts: " + "x" * 2000))
    assert entry is not None
    assert entry.data is not None
    assert entry.data["final"] is True
    assert len(str(entry.data["error"])) == 500
    assert str(entry.content).startswith("delivery to person per_ann by email (email) gave up after attempt 5: ")
    first_and_last = {failure_entry(*attempt(1, "failed")).id, entry.id}  # type: ignore[union-attr]
    assert len(first_and_last) == 2  # two entries, never one overwriting the other
