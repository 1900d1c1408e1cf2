"""The escalation port: policies, each incident's escalation run, the run's due tasks, used one-click tokens and
the shared link secret."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from mintlog.domain.escalation import EscalationPolicy, EscalationRun, EscalationTask, PolicySpec
from mintlog.domain.oncall_routes import RoutingTable

__all__ = ["EscalationStore", "RunVersion"]

RunVersion = tuple[str, str, int, datetime]
"""A run's (id, status, cycle, updated_at): `EscalationStore.run_versions`."""


class EscalationStore(Protocol):
    """Escalation in the metadata database (SQLite or PostgreSQL).

    Every method raises `DatabaseUnavailable` when the database cannot be reached and is durable when it
    returns. Lookups take the tenant id: another tenant's ids are never found (the task claim and completion
    work across tenants on ids they were handed).
    """

    async def create_policy(self, policy: EscalationPolicy, *, max_per_tenant: int) -> EscalationPolicy:
        """Insert a policy; `Conflict` (`too_many_policies`) when the tenant has `max_per_tenant` already."""
        ...

    async def get_policy(self, tenant_id: str, policy_id: str) -> EscalationPolicy | None:
        """The tenant's policy, or None."""
        ...

    async def list_policies(
        self, tenant_id: str, *, after: tuple[datetime, str] | None = None, limit: int = 50
    ) -> Sequence[EscalationPolicy]:
        """Up to `limit` of the tenant's policies, oldest first (by `created_at`, then id), after `after`."""
        ...

    async def replace_policy(
        self, tenant_id: str, policy_id: str, spec: PolicySpec, *, updated_at: datetime
    ) -> EscalationPolicy | None:
        """Replace the policy's spec (runs already started keep their snapshot); None when not found."""
        ...

    async def delete_policy(self, tenant_id: str, policy_id: str) -> bool:
        """Delete the policy (runs already started go on with their snapshot); False when not found."""
        ...

    async def set_default_policy(self, tenant_id: str, policy_id: str | None) -> EscalationPolicy | None:
        """Make `policy_id` the tenant's only default (None: no default) atomically; returns the new default,
        None when `policy_id` is None or not found (then nothing changed)."""
        ...

    async def default_policy(self, tenant_id: str) -> EscalationPolicy | None:
        """The tenant's default policy, or None."""
        ...

    async def get_routes(self, tenant_id: str) -> RoutingTable | None:
        """The tenant's routes, or None when it never set any."""
        ...

    async def replace_routes(self, table: RoutingTable) -> None:
        """Replace the tenant's routes whole (an empty list keeps the row, with no route)."""
        ...

    async def start_run(self, run: EscalationRun, first: EscalationTask) -> bool:
        """Insert the run with its first task, unless the incident already has a run (then False, nothing
        written): an incident's escalation starts once, whoever calls."""
        ...

    async def get_run(self, tenant_id: str, incident_id: str) -> EscalationRun | None:
        """The incident's run, or None."""
        ...

    async def get_runs(self, keys: Sequence[tuple[str, str]]) -> Sequence[EscalationRun]:
        """The runs of these (tenant id, incident id) pairs that exist, in one read."""
        ...

    async def run_versions(self, keys: Sequence[tuple[str, str]]) -> Mapping[tuple[str, str], RunVersion]:
        """The id, status, cycle and `updated_at` of the runs of these incidents that exist, in one small read.
        Every change to a run moves its `updated_at` (and a new run has a new id), so an unchanged version is an
        unchanged run."""
        ...

    async def stop_run(
        self, tenant_id: str, incident_id: str, *, reason: str, at: datetime, keep_ack_timeout: bool
    ) -> bool:
        """Cancel the run's pending tasks (but its `ack_timeout` tasks with `keep_ack_timeout`) and mark it
        `stopped` with `reason`; False when it has no run or it was not active."""
        ...

    async def retrigger_run(self, tenant_id: str, incident_id: str, *, at: datetime, first: EscalationTask) -> bool:
        """Start the run's next cycle (`first.cycle` must be the current cycle + 1) with `first`, cancelling what
        is pending; False when the run is already past that cycle (another instance re-triggered it)."""
        ...

    async def add_tasks(self, tasks: Sequence[EscalationTask], *, now: datetime) -> int:
        """Insert tasks whose id does not exist yet; how many were new."""
        ...

    async def claim_due_tasks(
        self, holder: str, *, now: datetime, until: datetime, limit: int, due_by: datetime | None = None
    ) -> list[EscalationTask]:
        """Claim up to `limit` pending tasks due by `due_by` (default `now`; later to claim ahead of time),
        unclaimed or with a claim expired at `now`, for `holder` until `until`, oldest due first. A
        compare-and-set: of several holders, each task goes to exactly one."""
        ...

    async def complete_tasks(
        self, completions: Sequence[tuple[str, Sequence[EscalationTask]]], holder: str, *, now: datetime
    ) -> set[str]:
        """Complete many (task id, its next tasks) in one transaction: marks `done` those tasks whose claim
        `holder` still owns and inserts the next tasks of those only (those not present yet); returns the ids
        marked done. A task whose claim another holder took over meanwhile is left as it is."""
        ...

    async def use_link(self, token_sha256: str, *, tenant_id: str, incident_id: str, at: datetime) -> bool:
        """Record one use of a one-click token; False when it was used before."""
        ...

    async def link_secret(self, generate: str) -> str:
        """The shared link secret: the stored one, or `generate` stored now when there is none yet (the first
        of racing instances wins, and all then read the same)."""
        ...
