"""Checking what a policy names: every target must be one of the caller's own people, schedules or channels."""

from __future__ import annotations

from mintlog.domain.escalation import PolicySpec, StepTarget
from mintlog.errors import UnprocessableEntity
from mintlog.ports.notifications import NotificationStore
from mintlog.ports.oncall import OnCallDirectory

__all__ = ["check_targets"]


def _invalid(field: str, detail: str) -> UnprocessableEntity:
    return UnprocessableEntity(f"invalid body: `{field}`: {detail}", code="validation_failed", extra={"field": field})


async def _exists(
    target: StepTarget, tenant_id: str, directory: OnCallDirectory | None, channels: NotificationStore
) -> str | None:
    """None when the target exists in the tenant, else why not."""
    if target.type == "channel":
        found = await channels.get_channel(tenant_id, target.id)
        return None if found is not None else f"no notification channel {target.id!r}"
    if directory is None:
        return f"{target.type} targets need the on-call people and schedules, which this deployment lacks"
    if target.type == "person":
        return None if await directory.get_person(tenant_id, target.id) is not None else f"no person {target.id!r}"
    if not await directory.has_schedule(tenant_id, target.id):
        return f"no schedule {target.id!r}"
    return None


async def check_targets(
    spec: PolicySpec, tenant_id: str, directory: OnCallDirectory | None, channels: NotificationStore
) -> None:
    """Raise a 422 naming `steps[i].targets[j]` for the first target that repeats one of its step or is not the
    tenant's (another tenant's person, schedule or channel is refused exactly like a missing one)."""
    for step_index, step in enumerate(spec.steps):
        seen: set[tuple[str, str]] = set()
        for target_index, target in enumerate(step.targets):
            field = f"steps[{step_index}].targets[{target_index}]"
            key = (target.type, target.id)
            if key in seen:
                raise _invalid(field, f"names {target.type} {target.id!r} twice in one step")
            seen.add(key)
            problem = await _exists(target, tenant_id, directory, channels)
            if problem is not None:
                raise _invalid(field, problem)
