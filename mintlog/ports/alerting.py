"""The alert rule port: rules, their per-group states, and the claims that make one instance evaluate a rule.

Implemented by `mintlog.adapters.db.alerting_sql.SqlAlertRuleStore` (SQLite and PostgreSQL). Every method
raises `DatabaseUnavailable` when the database cannot be reached.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from mintlog.domain.alert_rules import AlertRule, AlertRuleSpec
from mintlog.domain.alerting import AlertState

__all__ = ["AlertRuleStore", "AlertStateRecord", "GroupState", "StateWrite", "TrackedState"]

TrackedState = Literal["ok", "pending", "firing", "resolved"]
"""The states an alert is in while its data can be read; `nodata` and `error` remember one of them."""


@dataclass(frozen=True, slots=True)
class GroupState:
    """What the state machine remembers of one group of one rule.

    `resume_state` is the last tracked state: equal to `state` unless `state` is `nodata` or `error`, when it is
    where evaluation resumes once data can be read again (so an outage never resolves a firing alert).
    `transition_seq` counts the group's transitions; it is part of each transition's event id.
    """

    state: AlertState = "ok"
    resume_state: TrackedState = "ok"
    since: datetime | None = None
    pending_since: datetime | None = None
    last_breach_at: datetime | None = None
    transition_seq: int = 0


@dataclass(frozen=True, slots=True)
class AlertStateRecord:
    """The stored state of one group of one rule.

    `group` holds the group's values by `group_by` field (`{}` for a rule without `group_by`); `group_hash`
    is `mintlog.domain.alert_rules.group_hash(group)`. `unpublished_event` is the encoded `AlertEvent` of the
    latest transition while it has not been published yet (the evaluator publishes it before anything else).
    """

    rule_id: str
    tenant_id: str
    group_hash: str
    group: dict[str, str]
    machine: GroupState
    last_value: float | None = None
    last_evaluated_at: datetime | None = None
    last_event_id: str | None = None
    last_error: str | None = None
    unpublished_event: bytes | None = None


@dataclass(frozen=True, slots=True)
class StateWrite:
    """One state to store. `expected_seq` is the `transition_seq` the evaluator read (None: a new group); the
    write applies only if the stored row still has it."""

    record: AlertStateRecord
    expected_seq: int | None


class AlertRuleStore(Protocol):
    """Alert rules of every tenant and the states the evaluator keeps for them."""

    async def create_rule(self, rule: AlertRule, *, max_rules_per_tenant: int) -> AlertRule:
        """Store a new rule; raises `Conflict` (`too_many_rules`) when its tenant already has the maximum."""
        ...

    async def get_rule(self, tenant_id: str, rule_id: str) -> AlertRule | None:
        """The rule, or None when it does not exist or belongs to another tenant."""
        ...

    async def list_rules(
        self, tenant_id: str, *, after: tuple[datetime, str] | None = None, limit: int = 50
    ) -> Sequence[AlertRule]:
        """The tenant's rules ordered by (created_at, id), strictly after `after`."""
        ...

    async def replace_rule(
        self, tenant_id: str, rule_id: str, spec: AlertRuleSpec, *, updated_at: datetime, next_evaluation_at: datetime
    ) -> AlertRule | None:
        """Replace the rule's spec and reschedule it; None when it does not exist or belongs to another tenant.

        Its states are kept: the next evaluation judges them by the new spec.
        """
        ...

    async def delete_rule(self, tenant_id: str, rule_id: str) -> bool:
        """Delete the rule and its states; False when it did not exist or belongs to another tenant."""
        ...

    async def list_states(self, tenant_id: str, rule_id: str) -> Sequence[AlertStateRecord]:
        """The stored states of the rule's groups, ordered by group hash."""
        ...

    async def due_rules(self, now: datetime, *, limit: int) -> Sequence[AlertRule]:
        """Active rules whose `next_evaluation_at` is not after `now`, most overdue first; rules of suspended or
        deleted tenants are not due (they resume where they were when the tenant is unsuspended)."""
        ...

    async def claim_evaluation(self, rule_id: str, *, seen: datetime, next_at: datetime) -> bool:
        """Move the rule's `next_evaluation_at` from `seen` to `next_at`; True for the one caller that did it.

        Atomic compare-and-set: of several instances that read the same due rule, exactly one wins the tick.
        """
        ...

    async def save_states(self, rule_id: str, writes: Sequence[StateWrite]) -> bool:
        """Store every write in one transaction, or none: False (nothing changed) when a row's
        `transition_seq` is no longer `expected_seq`, or a new group was stored meanwhile, or the rule is gone.
        Durable when it returns True."""
        ...

    async def mark_published(self, rule_id: str, group_hash: str, event_id: str) -> None:
        """Forget the unpublished event `event_id` of the group (a later transition's event is kept)."""
        ...
