"""Uptime monitors: what a tenant asks to be watched, and the confirmation state machine of its checks.

Guarantees:
- `validate_monitor` accepts a spec only when a probe can run it and its timing is coherent: it raises
  `UnprocessableEntity` naming the field (`check.url`, `timeout_seconds`, …), never anything else;
- `apply_outcome` is pure: the state only changes to `down` after `down_after` consecutive failures (or, with a
  `confirmation`, after `failures` of the last `window` results failed) and to `up` after `up_after` consecutive
  successes (a new monitor leaves `pending` on its first confirmed streak), and it says when the state changed so
  the caller publishes each transition exactly once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from mintlog.domain.alert_rules import MAX_CHANNELS, Severity
from mintlog.domain.heartbeats import HeartbeatState
from mintlog.domain.uptime_checks import CheckSpec, CheckSpecError, HeartbeatCheck, validate_check
from mintlog.errors import UnprocessableEntity

__all__ = [
    "MAX_CONFIRMATION_WINDOW",
    "MAX_INTERVAL_SECONDS",
    "MAX_LOCATIONS",
    "MAX_LOG_WINDOW_MINUTES",
    "Confirmation",
    "Monitor",
    "MonitorSpec",
    "MonitorState",
    "MonitorStatus",
    "MonitorUpdate",
    "Transition",
    "apply_outcome",
    "merge_monitor_update",
    "new_monitor_id",
    "paused_status",
    "required_down",
    "validate_monitor",
]

MonitorState = Literal["pending", "up", "down", "paused", "maintenance"]
MAX_INTERVAL_SECONDS = 86400
MAX_LOG_WINDOW_MINUTES = 1440
MAX_LOCATIONS = 10
"""Most locations a monitor may list."""
MAX_CONFIRMATION_WINDOW = 50
"""Most recent results an `x of n` confirmation may look at."""
"""Longest window of a linked service's logs summarized in a monitor's incident (24 hours)."""

_Name = Annotated[str, Meta(min_length=1, max_length=200)]
_Service = Annotated[str, Meta(min_length=1, max_length=200)]
_Interval = Annotated[int, Meta(ge=1, le=MAX_INTERVAL_SECONDS)]
_Timeout = Annotated[float, Meta(gt=0, le=MAX_INTERVAL_SECONDS)]
_Confirm = Annotated[int, Meta(ge=1, le=10)]
_ChannelId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]
_Channels = Annotated[list[_ChannelId], Meta(max_length=MAX_CHANNELS)]
_Location = Annotated[str, Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]
_LogWindow = Annotated[int, Meta(ge=1, le=MAX_LOG_WINDOW_MINUTES)]
_Labels = Annotated[
    dict[Annotated[str, Meta(min_length=1, max_length=100)], Annotated[str, Meta(max_length=500)]],
    Meta(max_length=50),
]


class Confirmation(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Down when `failures` of the last `window` results failed (besides `down_after` failures in a row)."""

    failures: Annotated[int, Meta(ge=1, le=MAX_CONFIRMATION_WINDOW)]
    window: Annotated[int, Meta(ge=1, le=MAX_CONFIRMATION_WINDOW)]


class MonitorSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a user sets on a monitor (the body of a create)."""

    name: _Name
    check: CheckSpec
    service: _Service | None = None
    interval_seconds: _Interval = 60
    timeout_seconds: _Timeout = 10.0
    down_after: _Confirm = 2
    up_after: _Confirm = 1
    confirmation: Confirmation | None = None
    """Also down after `failures` of the last `window` results failed (None: only `down_after` in a row)."""
    locations: Annotated[list[_Location], Meta(max_length=MAX_LOCATIONS)] | None = None
    """The uptime locations (`MINTLOG_UPTIME__LOCATION`) that each check the monitor every interval (None: any
    one instance checks it)."""
    quorum: Annotated[int, Meta(ge=1, le=MAX_LOCATIONS)] | None = None
    """How many `locations` must be down for the monitor to be down (None: all of them)."""
    paused: bool = False
    resolve_incident_on_up: bool = True
    severity: Severity = "high"
    labels: _Labels = msgspec.field(default_factory=lambda: {})
    channel_ids: _Channels = msgspec.field(default_factory=lambda: [])
    linked_service: _Service | None = None
    log_window_minutes: _LogWindow = 15
    escalation_policy_id: Annotated[str, Meta(min_length=1, max_length=40)] | None = None
    """The escalation policy of the monitor's incidents (None: the tenant's default policy, if any)."""


class MonitorUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A `PUT`/`PATCH` body: the members given replace the monitor's, the others are kept."""

    name: _Name | UnsetType = UNSET
    check: CheckSpec | UnsetType = UNSET
    service: _Service | UnsetType | None = UNSET
    interval_seconds: _Interval | UnsetType = UNSET
    timeout_seconds: _Timeout | UnsetType = UNSET
    down_after: _Confirm | UnsetType = UNSET
    up_after: _Confirm | UnsetType = UNSET
    confirmation: Confirmation | UnsetType | None = UNSET
    locations: Annotated[list[_Location], Meta(max_length=MAX_LOCATIONS)] | UnsetType | None = UNSET
    quorum: Annotated[int, Meta(ge=1, le=MAX_LOCATIONS)] | UnsetType | None = UNSET
    paused: bool | UnsetType = UNSET
    resolve_incident_on_up: bool | UnsetType = UNSET
    severity: Severity | UnsetType = UNSET
    labels: _Labels | UnsetType = UNSET
    channel_ids: _Channels | UnsetType = UNSET
    linked_service: _Service | UnsetType | None = UNSET
    log_window_minutes: _LogWindow | UnsetType = UNSET
    escalation_policy_id: Annotated[str, Meta(min_length=1, max_length=40)] | UnsetType | None = UNSET


class MonitorStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The compact current state of a monitor, rewritten after every check."""

    state: MonitorState = "pending"
    since: datetime | None = None
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    last_check_at: datetime | None = None
    last_ok: bool | None = None
    last_error: str | None = None
    last_latency_ms: float | None = None
    recent_failures: str = ""
    """The results since the last confirmed state, newest last ("1" failed, "0" ok), at most
    `MAX_CONFIRMATION_WINDOW`: what an `x of n` confirmation counts."""
    transition_seq: int = 0
    state_before_maintenance: MonitorState | None = None
    """The state the monitor had when its current or last maintenance window began, until it confirms a state
    again (`mintlog.domain.monitor_maintenance`); None otherwise."""


class Monitor(msgspec.Struct, frozen=True, kw_only=True):
    """A stored monitor: its spec, owner, times, due time (`next_check_at`, the claim column) and status.

    A heartbeat monitor (`HeartbeatCheck`) also has its secret `ping_token` and what its pings left
    (`heartbeat`); its `next_check_at` is its deadline."""

    id: str
    tenant_id: str
    spec: MonitorSpec
    created_at: datetime
    updated_at: datetime
    next_check_at: datetime
    status: MonitorStatus = msgspec.field(default_factory=MonitorStatus)
    ping_token: str | None = None
    heartbeat: HeartbeatState | None = None
    location_states: dict[str, MonitorStatus] = msgspec.field(default_factory=lambda: {})
    """A monitor with `locations`: the confirmed state of each location's own checks."""

    def required_down(self) -> int:
        """How many of its locations must be down for the monitor to be (its quorum; 1 without locations)."""
        return required_down(self.spec)


def required_down(spec: MonitorSpec) -> int:
    """The quorum of `spec`: its `quorum`, all its `locations` when None, 1 without locations."""
    if not spec.locations:
        return 1
    return spec.quorum if spec.quorum is not None else len(spec.locations)


def new_monitor_id() -> str:
    """A new, unguessable monitor id."""
    return f"mon_{secrets.token_hex(8)}"


def _invalid(field: str, detail: str) -> UnprocessableEntity:
    return UnprocessableEntity(detail, code="validation_failed", extra={"field": field})


def validate_monitor(spec: MonitorSpec, *, min_interval_seconds: int) -> MonitorSpec:
    """`spec` when a probe can run it and its timing is coherent; else a 422 naming the field. A heartbeat's
    period may not be shorter than `min_interval_seconds` either; its `interval_seconds` and `timeout_seconds`
    are not used (its schedule says when it is due)."""
    try:
        validate_check(spec.check, min_period_seconds=min_interval_seconds)
    except CheckSpecError as exc:
        raise _invalid(exc.field, f"`{exc.field}` {exc.message}") from None
    confirmation = spec.confirmation
    if confirmation is not None and confirmation.failures > confirmation.window:
        raise _invalid(
            "confirmation.failures",
            f"`confirmation.failures` ({confirmation.failures}) cannot exceed `confirmation.window` "
            f"({confirmation.window})",
        )
    _validate_locations(spec)
    if isinstance(spec.check, HeartbeatCheck):
        return spec
    if spec.interval_seconds < min_interval_seconds:
        raise _invalid("interval_seconds", f"`interval_seconds` must be at least {min_interval_seconds}")
    if spec.timeout_seconds >= spec.interval_seconds:
        raise _invalid("timeout_seconds", "`timeout_seconds` must be below `interval_seconds`")
    return spec


def _validate_locations(spec: MonitorSpec) -> None:
    if spec.locations is None:
        if spec.quorum is not None:
            raise _invalid("quorum", "`quorum` needs `locations`")
        return
    if not spec.locations:
        raise _invalid("locations", "`locations` lists at least one location (or leave it out)")
    for index, location in enumerate(spec.locations):
        if location in spec.locations[:index]:
            raise _invalid(f"locations[{index}]", f"`locations[{index}]` {location!r} is listed twice")
    if isinstance(spec.check, HeartbeatCheck):
        raise _invalid("locations", "a heartbeat is pinged, not checked from locations: leave `locations` out")
    if spec.quorum is not None and spec.quorum > len(spec.locations):
        raise _invalid(
            "quorum", f"`quorum` ({spec.quorum}) cannot exceed the number of `locations` ({len(spec.locations)})"
        )


def merge_monitor_update(spec: MonitorSpec, update: MonitorUpdate) -> MonitorSpec:
    """`spec` with every member `update` gives replaced (not yet validated: call `validate_monitor`)."""
    changes = {name: value for name in update.__struct_fields__ if (value := getattr(update, name)) is not UNSET}
    return msgspec.structs.replace(spec, **changes)


def paused_status(status: MonitorStatus, *, paused: bool, now: datetime) -> MonitorStatus:
    """The status after pausing (state `paused`) or resuming (state `pending`, streaks reset) a monitor."""
    if paused:
        if status.state == "paused":
            return status
        return msgspec.structs.replace(status, state="paused", since=now)
    if status.state != "paused":
        return status
    return msgspec.structs.replace(
        status, state="pending", since=now, consecutive_failures=0, consecutive_successes=0, recent_failures=""
    )


@dataclass(frozen=True, slots=True)
class Transition:
    """A confirmed change of state: `previous` → `current` at `at`, the `seq`-th transition of the monitor."""

    previous: MonitorState
    current: MonitorState
    at: datetime
    seq: int


def apply_outcome(
    status: MonitorStatus,
    *,
    ok: bool,
    at: datetime,
    latency_ms: float | None,
    error: str | None,
    down_after: int,
    up_after: int,
    confirmation: Confirmation | None = None,
) -> tuple[MonitorStatus, Transition | None]:
    """The status after one check result, and the transition it confirms (None when the state holds). With a
    `confirmation`, `failures` failed results among the last `window` since the last confirmed state also
    confirm `down` (the count starts again at every transition, so an old outage never counts twice)."""
    failures = 0 if ok else status.consecutive_failures + 1
    successes = status.consecutive_successes + 1 if ok else 0
    recent = (status.recent_failures + ("0" if ok else "1"))[-MAX_CONFIRMATION_WINDOW:]
    state = status.state
    target: MonitorState | None = None
    if ok and state != "up" and successes >= up_after:
        target = "up"
    elif not ok and state != "down" and (failures >= down_after or _confirmed_by_window(recent, confirmation)):
        target = "down"
    seq = status.transition_seq + (1 if target else 0)
    updated = MonitorStatus(
        state=target or state,
        since=at if target else status.since,
        consecutive_failures=failures,
        consecutive_successes=successes,
        last_check_at=at,
        last_ok=ok,
        last_error=None if ok else error,
        last_latency_ms=latency_ms,
        recent_failures="" if target else recent,
        transition_seq=seq,
    )
    if target is None:
        return updated, None
    return updated, Transition(previous=state, current=target, at=at, seq=seq)


def _confirmed_by_window(recent: str, confirmation: Confirmation | None) -> bool:
    if confirmation is None:
        return False
    return recent[-confirmation.window :].count("1") >= confirmation.failures
