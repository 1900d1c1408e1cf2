"""`MonitorStore`: uptime monitors, their status and their check results in the metadata database."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import msgspec
from msgspec import UNSET, UnsetType

from mintlog.domain.alerting import AlertEvent
from mintlog.domain.heartbeats import HeartbeatState
from mintlog.domain.monitors import Monitor, MonitorSpec, MonitorState, MonitorStatus

__all__ = ["CheckClaim", "CheckResult", "LocatedDecision", "MonitorStore", "QuorumDecider", "StateChangeRecord"]


class CheckResult(msgspec.Struct, frozen=True, kw_only=True):
    """One run of one monitor's check, as stored in its history."""

    id: str
    monitor_id: str
    tenant_id: str
    at: datetime
    location: str
    ok: bool
    latency_ms: float | None
    error: str | None = None
    status_code: int | None = None
    in_maintenance: bool = False
    """True when the check ran inside a maintenance window: recorded, but it confirmed no state."""
    due_at: datetime | None = None
    """When the check was due by its schedule (the claimed `next_check_at`); None for heartbeat outcomes and for
    results recorded before migration 0020."""
    started_at: datetime | None = None
    """When its probe started (`started_at - due_at` is how late the check began); None as `due_at`."""


class StateChangeRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A confirmed state change of one monitor."""

    monitor_id: str
    at: datetime
    state: MonitorState


@dataclass(frozen=True, slots=True)
class CheckClaim:
    """One compare-and-set of a claim: move `next_check_at` of the monitor (or of its `location`, when given)
    from `seen` to `next_at`."""

    monitor_id: str
    seen: datetime
    next_at: datetime
    location: str | None = None


@dataclass(frozen=True, slots=True)
class LocatedDecision:
    """What a located check decided for its monitor: the new overall status, its state change and alert event."""

    status: MonitorStatus
    change: StateChangeRecord | None
    alert: AlertEvent | None


QuorumDecider = Callable[[MonitorStatus, Mapping[str, MonitorStatus]], LocatedDecision]
"""The overall decision from the monitor's current overall status and every location's status (the reporting
location's new one included)."""


class MonitorStore(Protocol):
    """Monitors of every tenant; another tenant's monitor is never returned nor changed."""

    async def create_monitor(self, monitor: Monitor, *, max_per_tenant: int) -> Monitor:
        """Store a new monitor; `Conflict` (`too_many_monitors`) when the tenant already has `max_per_tenant`."""
        ...

    async def get_monitor(self, tenant_id: str, monitor_id: str) -> Monitor | None:
        """The monitor with its current status, or None."""
        ...

    async def list_monitors(
        self, tenant_id: str, *, after: tuple[datetime, str] | None = None, limit: int = 50
    ) -> Sequence[Monitor]:
        """The tenant's monitors, oldest first, after the `(created_at, id)` cursor."""
        ...

    async def replace_monitor(
        self,
        tenant_id: str,
        monitor_id: str,
        spec: MonitorSpec,
        *,
        updated_at: datetime,
        next_check_at: datetime,
        status: MonitorStatus | None = None,
        alert: AlertEvent | None = None,
        ping_token: str | UnsetType | None = UNSET,
    ) -> Monitor | None:
        """Replace the spec, due again at `next_check_at`; None when not found. A `status` given (a pause or a
        resume, its `transition_seq` moved on) replaces the status and is recorded as a state change; an
        `alert` given joins the alert outbox in the same transaction. A `ping_token` given replaces the
        monitor's (None: it has none); `Conflict` if another monitor has it."""
        ...

    async def find_by_ping_token(self, ping_token: str) -> Monitor | None:
        """The monitor (paused or not) of an active tenant whose ping token is `ping_token`, or None."""
        ...

    async def record_ping(
        self,
        monitor_id: str,
        *,
        heartbeat: HeartbeatState,
        expected_seq: int,
        next_check_at: datetime | None = None,
        status: MonitorStatus | None = None,
        result: CheckResult | None = None,
        change: StateChangeRecord | None = None,
        alert: AlertEvent | None = None,
    ) -> bool:
        """In one transaction, when the monitor is unpaused and its `transition_seq` is still `expected_seq`:
        store `heartbeat`, and the deadline `next_check_at`, `status`, `result`, `change` and the `alert` event
        (into the alert outbox) that are given.
        False (nothing stored) when the monitor is gone, paused, or its status moved meanwhile."""
        ...

    async def delete_monitor(self, tenant_id: str, monitor_id: str, *, alert: AlertEvent | None = None) -> bool:
        """Delete the monitor, its results and state changes (and add `alert` to the alert outbox, in the same
        transaction); False when not found."""
        ...

    async def due_monitors(self, now: datetime, *, limit: int, location: str) -> Sequence[Monitor]:
        """Unpaused monitors of active tenants whose `next_check_at` has come, earliest first: those without
        `locations`, and those listing `location`, due at that location's own time (their `next_check_at`)."""
        ...

    async def claim_checks(self, claims: Sequence[CheckClaim]) -> set[str]:
        """Make every compare-and-set of `claims` in one transaction; returns the monitor ids whose claim won.
        Each claim is won by exactly one of concurrent callers (a monitor is claimed once per location)."""
        ...

    async def record_location_check(
        self,
        monitor_id: str,
        result: CheckResult,
        location_status: MonitorStatus,
        *,
        expected_seq: int,
        decide: QuorumDecider,
    ) -> LocatedDecision | None:
        """Store the result and, when the monitor's `transition_seq` is still `expected_seq` and it still lists
        `result.location`, that location's new `location_status` and the overall status `decide` gives (with
        its state change and alert event in the outbox): one transaction, serialized per monitor, so two
        locations reporting at once both count. None when the status moved meanwhile (only the result kept)."""
        ...

    async def record_check(
        self,
        monitor_id: str,
        result: CheckResult,
        status: MonitorStatus,
        *,
        expected_seq: int,
        change: StateChangeRecord | None,
        alert: AlertEvent | None = None,
    ) -> bool:
        """Store the result, and the status when its stored `transition_seq` is still `expected_seq` (with the
        state change and `alert` in the alert outbox, in the same transaction: all or none of them is durable
        when it returns). False when the status moved meanwhile (a pause, an edit): then only the result is
        stored."""
        ...

    async def pending_alerts(self, *, monitor_id: str | None = None, limit: int = 100) -> Sequence[AlertEvent]:
        """Alert events of the outbox not yet marked published (of one monitor, or of all), oldest first and,
        per monitor, in the order of their transitions."""
        ...

    async def mark_alerts_published(self, event_ids: Sequence[str]) -> None:
        """Remove the events `event_ids` from the outbox (idempotent: an id not there is ignored)."""
        ...

    async def list_results(
        self,
        tenant_id: str,
        monitor_id: str,
        *,
        start: datetime,
        end: datetime,
        before: tuple[datetime, str] | None = None,
        limit: int = 100,
    ) -> Sequence[CheckResult]:
        """Results in `[start, end)`, newest first, before the `(at, id)` cursor."""
        ...

    async def list_state_changes(
        self, tenant_id: str, monitor_id: str, *, start: datetime, end: datetime
    ) -> Sequence[StateChangeRecord]:
        """State changes in `[start, end)` plus the last one before `start`, oldest first."""
        ...

    async def prune_results(self, older_than: datetime, *, limit: int = 1000) -> int:
        """Delete up to `limit` results older than `older_than`; returns how many."""
        ...
