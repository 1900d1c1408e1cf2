"""Escalation policies and the plan of an escalation run. Pure code, no I/O.

A policy is ordered steps; each step has a delay (`delay_minutes`, counted from the previous step, or from the
trigger for the first one) and targets (people, schedules, channels). After the last step the whole policy is
run again `repeat` more times (each repetition starts with step 1's delay). A `round_robin` step notifies one
of its targets each time it fires, rotating through them in order.

An escalation run is one incident's progress through its policy. Its work is due tasks (`EscalationTask`):
`step` (fire step i of repetition r), `person_rule` (a person's later notification rule, "after N minutes if
still unacknowledged"), and `ack_timeout` (re-trigger escalation from step 1 when an acknowledgement is not
followed by a resolution in time). A run's `cycle` counts re-triggers; every task of an older cycle is void.

Guarantees:
- `task_id` and `dedup_key` are deterministic for what they describe, so a task run twice (a crash after the
  notifications, before the task was marked done) neither inserts a second next step nor notifies twice;
- `next_step` never returns a step past the last repetition; `step_targets` of a round-robin step is exactly one
  target, the same for the same (cycle, repetition).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

__all__ = [
    "MAX_STEPS",
    "MAX_TARGETS_PER_STEP",
    "EscalationPolicy",
    "EscalationRun",
    "EscalationTask",
    "PolicySpec",
    "PolicyUpdate",
    "RunStatus",
    "StepSpec",
    "StepTarget",
    "TargetType",
    "TaskKind",
    "ack_timeout_task",
    "dedup_key",
    "first_step_task",
    "merge_policy_update",
    "new_policy_id",
    "new_run_id",
    "next_step",
    "next_step_task",
    "person_rule_task",
    "step_targets",
    "task_id",
]

MAX_STEPS = 20
MAX_TARGETS_PER_STEP = 20
MAX_REPEAT = 10
MAX_DELAY_MINUTES = 1440.0

TargetType = Literal["person", "schedule", "channel"]
TaskKind = Literal["step", "person_rule", "ack_timeout"]
RunStatus = Literal["active", "stopped", "completed"]

_Name = Annotated[str, Meta(min_length=1, max_length=200)]
_Description = Annotated[str, Meta(max_length=2000)]
_Id = Annotated[str, Meta(min_length=1, max_length=100)]
_Delay = Annotated[float, Meta(ge=0, le=MAX_DELAY_MINUTES)]
_AckTimeout = Annotated[float, Meta(gt=0, le=MAX_DELAY_MINUTES)]
_Repeat = Annotated[int, Meta(ge=0, le=MAX_REPEAT)]


class StepTarget(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Who a step notifies: a person, whoever is on call on a schedule when the step fires, or a channel."""

    type: TargetType
    id: _Id


class StepSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One step: fires `delay_minutes` after the previous one (fractions allowed: 0.5 is 30 s)."""

    targets: Annotated[list[StepTarget], Meta(min_length=1, max_length=MAX_TARGETS_PER_STEP)]
    delay_minutes: _Delay = 0.0
    round_robin: bool = False


class PolicySpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The writable members of a policy: the body of `POST /v1/oncall/escalation-policies`."""

    name: _Name
    steps: Annotated[list[StepSpec], Meta(min_length=1, max_length=MAX_STEPS)]
    description: _Description | None = None
    repeat: _Repeat = 0
    ack_timeout_minutes: _AckTimeout | None = None


class PolicyUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A `PUT`/`PATCH` body: the members given replace the policy's; `null` clears an optional one."""

    name: _Name | UnsetType = UNSET
    steps: Annotated[list[StepSpec], Meta(min_length=1, max_length=MAX_STEPS)] | UnsetType = UNSET
    description: _Description | UnsetType | None = UNSET
    repeat: _Repeat | UnsetType = UNSET
    ack_timeout_minutes: _AckTimeout | UnsetType | None = UNSET


class EscalationPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """A stored policy. `is_default` marks the tenant's default (at most one per tenant)."""

    id: str
    tenant_id: str
    spec: PolicySpec
    is_default: bool
    created_at: datetime
    updated_at: datetime


class EscalationRun(msgspec.Struct, frozen=True, kw_only=True):
    """One incident's escalation: the policy as it was when the run started (`policy`), and its state."""

    id: str
    tenant_id: str
    incident_id: str
    policy_id: str
    policy: PolicySpec
    status: RunStatus
    cycle: int
    started_at: datetime
    updated_at: datetime
    stop_reason: str | None = None


class EscalationTask(msgspec.Struct, frozen=True, kw_only=True):
    """One piece of due work of a run. `data` holds what a `person_rule` or `ack_timeout` task needs."""

    id: str
    tenant_id: str
    run_id: str
    incident_id: str
    kind: TaskKind
    cycle: int
    step_index: int
    repeat: int
    due_at: datetime
    data: dict[str, Any] = msgspec.field(default_factory=lambda: {})
    claimed_by: str | None = None
    claim_expires_at: datetime | None = None


def new_policy_id() -> str:
    """A new, unguessable policy id."""
    return f"esp_{secrets.token_hex(8)}"


def new_run_id(incident_id: str) -> str:
    """The id of an incident's run: one run per incident, so the same for every start attempt."""
    return "esr_" + hashlib.sha256(incident_id.encode()).hexdigest()[:24]


def task_id(run_id: str, *parts: object) -> str:
    """A deterministic task id from its run and what it is (kind, cycle, step, repetition, ...)."""
    text = "\x00".join([run_id, *(str(part) for part in parts)])
    return "est_" + hashlib.sha256(text.encode()).hexdigest()[:28]


def dedup_key(task: EscalationTask, person_id: str, contact_method_id: str) -> str:
    """`{incident}:{run}.{cycle}:{step}:{repeat}:{person}:{contact}`: one notification per person, contact method
    and firing of a step, whatever retries happen."""
    return (
        f"{task.incident_id}:{task.run_id}.{task.cycle}:{task.step_index}:{task.repeat}:{person_id}:{contact_method_id}"
    )


def merge_policy_update(spec: PolicySpec, update: PolicyUpdate) -> PolicySpec:
    """`spec` with the members `update` gives."""
    changes = {name: value for name, value in msgspec.structs.asdict(update).items() if value is not UNSET}
    return msgspec.structs.replace(spec, **changes)


def next_step(policy: PolicySpec, step_index: int, repeat: int) -> tuple[int, int] | None:
    """The (step, repetition) after `step_index` of repetition `repeat`; None after the last repetition."""
    if step_index + 1 < len(policy.steps):
        return step_index + 1, repeat
    if repeat < policy.repeat:
        return 0, repeat + 1
    return None


def step_targets(step: StepSpec, *, cycle: int, repeat: int, repeats: int) -> list[StepTarget]:
    """The targets a firing notifies: all of them, or for a round-robin step the next one in turn (the n-th
    firing of the step in the incident, counted over repetitions and re-triggers, notifies target n mod count)."""
    if not step.round_robin:
        return list(step.targets)
    firing = cycle * (repeats + 1) + repeat
    return [step.targets[firing % len(step.targets)]]


def _later(base: datetime, minutes: float, now: datetime) -> datetime:
    # Counted from when the step was due, not when it ran: a late step does not push every later one back.
    return max(base + timedelta(minutes=minutes), now)


@dataclass(frozen=True, slots=True)
class _RunRef:
    run_id: str
    tenant_id: str
    incident_id: str
    cycle: int


def _task(ref: _RunRef, kind: TaskKind, step_index: int, repeat: int, due_at: datetime, **data: Any) -> EscalationTask:
    extra = tuple(f"{key}={data[key]}" for key in sorted(data))
    return EscalationTask(
        id=task_id(ref.run_id, kind, ref.cycle, step_index, repeat, *extra),
        tenant_id=ref.tenant_id,
        run_id=ref.run_id,
        incident_id=ref.incident_id,
        kind=kind,
        cycle=ref.cycle,
        step_index=step_index,
        repeat=repeat,
        due_at=due_at,
        data=data,
    )


def first_step_task(run: EscalationRun, *, now: datetime) -> EscalationTask:
    """Step 1 of the run's current cycle, due its delay after `now` (the trigger or re-trigger)."""
    ref = _RunRef(run.id, run.tenant_id, run.incident_id, run.cycle)
    return _task(ref, "step", 0, 0, now + timedelta(minutes=run.policy.steps[0].delay_minutes))


def next_step_task(run: EscalationRun, fired: EscalationTask, *, now: datetime) -> EscalationTask | None:
    """The step after `fired` (a `step` task), due its delay after `fired` was due (never before `now`)."""
    following = next_step(run.policy, fired.step_index, fired.repeat)
    if following is None:
        return None
    index, repeat = following
    ref = _RunRef(run.id, run.tenant_id, run.incident_id, fired.cycle)
    return _task(ref, "step", index, repeat, _later(fired.due_at, run.policy.steps[index].delay_minutes, now))


def person_rule_task(
    fired: EscalationTask, *, person_id: str, contact_method_id: str, after_minutes: int, now: datetime
) -> EscalationTask:
    """A person's later notification rule of one firing, due `after_minutes` after the step was due."""
    ref = _RunRef(fired.run_id, fired.tenant_id, fired.incident_id, fired.cycle)
    return _task(
        ref,
        "person_rule",
        fired.step_index,
        fired.repeat,
        _later(fired.due_at, after_minutes, now),
        person_id=person_id,
        contact_method_id=contact_method_id,
    )


def ack_timeout_task(run: EscalationRun, *, acknowledged_at: datetime, minutes: float) -> EscalationTask:
    """Re-trigger check of one acknowledgement: due `minutes` after it."""
    ref = _RunRef(run.id, run.tenant_id, run.incident_id, run.cycle)
    return _task(
        ref,
        "ack_timeout",
        0,
        0,
        acknowledged_at + timedelta(minutes=minutes),
        acknowledged_at=acknowledged_at.isoformat(),
    )
