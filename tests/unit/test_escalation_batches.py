"""`DueEscalationTasks` hands the due-work scheduler batches: what one claim takes, how it is cut, and what each
batch's claim says (its key, its due time, the deadline of its earliest-expiring claim)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from mintlog.domain.escalation import EscalationTask
from mintlog.ports.escalation import EscalationStore
from mintlog.roles.notify.escalation_steps import DueEscalationTasks, EscalationSteps

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def task(number: int) -> EscalationTask:
    return EscalationTask(
        id=f"est_{number:03d}", tenant_id="acme", run_id="esr_1", incident_id=f"inc_{number}", kind="step",
        cycle=0, step_index=0, repeat=0, due_at=T0 + timedelta(seconds=number),
        claimed_by="notify-a", claim_expires_at=T0 + timedelta(seconds=60 - number),
    )  # fmt: skip


class Store:
    """The one store method a claim uses: hands out `due` oldest first, as many as asked."""

    def __init__(self, due: int) -> None:
        self.due = [task(number) for number in range(due)]
        self.limits: list[int] = []

    async def claim_due_tasks(
        self, holder: str, *, now: datetime, until: datetime, limit: int, due_by: datetime | None = None
    ) -> list[EscalationTask]:
        self.limits.append(limit)
        claimed, self.due = self.due[:limit], self.due[limit:]
        return claimed


class Steps:
    holder = "notify-a"

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    async def run_batch(self, tasks: list[EscalationTask]) -> None:
        self.batches.append([item.id for item in tasks])


def source(store: Store, steps: Steps, batch_size: int) -> DueEscalationTasks:
    return DueEscalationTasks(
        cast("EscalationStore", store), cast("EscalationSteps", steps), claim_seconds=60, batch_size=batch_size
    )


async def test_one_claim_takes_every_free_batch_and_cuts_it_in_order() -> None:
    store, steps = Store(due=7), Steps()
    claims = await source(store, steps, batch_size=3).claim_due(T0, 2, running=frozenset())
    assert store.limits == [6]  # two free places of three tasks each, in one claim
    assert [[item.id for item in claim.item] for claim in claims] == [
        ["est_000", "est_001", "est_002"],
        ["est_003", "est_004", "est_005"],
    ]
    assert [claim.key for claim in claims] == ["est_000+2", "est_003+2"]
    assert [claim.due_at for claim in claims] == [T0, T0 + timedelta(seconds=3)]
    assert [claim.deadline for claim in claims] == [T0 + timedelta(seconds=58), T0 + timedelta(seconds=55)]
    for claim in claims:
        await source(store, steps, batch_size=3).run(claim.item)
    assert steps.batches == [["est_000", "est_001", "est_002"], ["est_003", "est_004", "est_005"]]


async def test_a_short_last_batch_and_batches_of_one() -> None:
    store, steps = Store(due=4), Steps()
    claims = await source(store, steps, batch_size=3).claim_due(T0, 5, running=frozenset())
    assert [len(cast("list[Any]", claim.item)) for claim in claims] == [3, 1]
    assert claims[1].key == "est_003"  # a batch of one is keyed by its task, as before batches
    single = await source(Store(due=2), steps, batch_size=1).claim_due(T0, 5, running=frozenset())
    assert [claim.key for claim in single] == ["est_000", "est_001"]
