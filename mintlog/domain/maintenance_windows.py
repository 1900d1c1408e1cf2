"""Maintenance windows as a tenant's objects: a schedule (`mintlog.domain.maintenance`) and what it covers.
Pure code, no I/O.

A window covers:
- the monitors it names in `targets.monitor_ids`;
- the monitors whose labels hold every `targets.labels` matcher; a monitor's labels are its own plus
  `monitor_id`, `source: uptime` and `check_type`, the same labels its alert events carry, so a window on
  `{"source": "uptime"}` covers every monitor of the tenant;
- the alert events of the log-alert rules it names in `targets.alert_rule_ids` (and the alert events of the
  monitors it covers).

Guarantees:
- `build_window` accepts a body only when its schedule is valid (`validate_window`) and it covers something:
  it raises `UnprocessableEntity` naming the field (`starts_at`, `ends_at`, `rrule`, `time_zone`, `until`,
  `duration_seconds`, `targets`), never anything else;
- `covers_monitor`, `covers_alert` and `window_active` never raise for a stored window.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import msgspec
from msgspec import Meta

from mintlog.domain.alerting import AlertEvent
from mintlog.domain.maintenance import MaintenanceError, MaintenanceWindow, active_at, validate_window
from mintlog.domain.monitors import Monitor
from mintlog.errors import UnprocessableEntity

__all__ = [
    "MAX_TARGETS",
    "MaintenanceWindowCreate",
    "StoredWindow",
    "WindowTargets",
    "build_window",
    "covers_alert",
    "covers_monitor",
    "monitor_labels",
    "new_window_id",
    "window_active",
    "window_for_alert",
    "window_for_monitor",
]

MAX_TARGETS = 100

_Name = Annotated[str, Meta(min_length=1, max_length=200)]
_Id = Annotated[str, Meta(min_length=1, max_length=100)]
_Labels = Annotated[
    dict[Annotated[str, Meta(min_length=1, max_length=100)], Annotated[str, Meta(max_length=500)]],
    Meta(max_length=50),
]


class WindowTargets(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a window covers: at least one member must be non-empty."""

    monitor_ids: Annotated[list[_Id], Meta(max_length=MAX_TARGETS)] = msgspec.field(default_factory=lambda: [])
    labels: _Labels = msgspec.field(default_factory=lambda: {})
    alert_rule_ids: Annotated[list[_Id], Meta(max_length=MAX_TARGETS)] = msgspec.field(default_factory=lambda: [])

    def is_empty(self) -> bool:
        return not (self.monitor_ids or self.labels or self.alert_rule_ids)


class MaintenanceWindowCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The body of a create or a `PUT`: a one-off window `[starts_at, ends_at)`, or a recurring one (`rrule`)
    whose first occurrence is `[starts_at, ends_at)`. `duration_seconds` may replace `ends_at`. Naive times are
    wall-clock times in `time_zone`; times with an offset are instants."""

    name: _Name
    starts_at: datetime
    ends_at: datetime | None = None
    duration_seconds: int | None = None
    rrule: Annotated[str, Meta(max_length=500)] | None = None
    time_zone: Annotated[str, Meta(max_length=64)] = "UTC"
    until: datetime | None = None
    targets: WindowTargets
    comment: Annotated[str, Meta(max_length=2000)] | None = None


class MaintenanceWindowPatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The body of a `PATCH`: the members given replace the window's, the others are kept (`null` clears
    `rrule`, `until` or `comment`). Giving `duration_seconds` drops the window's end for it, and `ends_at` its
    duration; the result is validated as a whole window, exactly as a create."""

    name: _Name | msgspec.UnsetType = msgspec.UNSET
    starts_at: datetime | msgspec.UnsetType = msgspec.UNSET
    ends_at: datetime | msgspec.UnsetType = msgspec.UNSET
    duration_seconds: int | msgspec.UnsetType = msgspec.UNSET
    rrule: Annotated[str, Meta(max_length=500)] | msgspec.UnsetType | None = msgspec.UNSET
    time_zone: Annotated[str, Meta(max_length=64)] | msgspec.UnsetType = msgspec.UNSET
    until: datetime | msgspec.UnsetType | None = msgspec.UNSET
    targets: WindowTargets | msgspec.UnsetType = msgspec.UNSET
    comment: Annotated[str, Meta(max_length=2000)] | msgspec.UnsetType | None = msgspec.UNSET


class StoredWindow(msgspec.Struct, frozen=True, kw_only=True):
    """A window of one tenant: its name, schedule, targets and times."""

    id: str
    tenant_id: str
    name: str
    schedule: MaintenanceWindow
    targets: WindowTargets
    comment: str | None = None
    created_at: datetime
    updated_at: datetime


def new_window_id() -> str:
    """A new, unguessable window id (`mw_` and 16 hex digits)."""
    return f"mw_{secrets.token_hex(8)}"


def _invalid(field: str, detail: str) -> UnprocessableEntity:
    return UnprocessableEntity(detail, code="validation_failed", extra={"field": field})


def _instant(value: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of `value`, a naive one read as a wall time in `zone` (the earlier one on a fall-back)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=zone, fold=0)
    return aware.astimezone(UTC)


def _schedule(body: MaintenanceWindowCreate) -> MaintenanceWindow:
    """The schedule of `body`, or a 422 naming the member at fault."""
    if (body.ends_at is None) == (body.duration_seconds is None):
        raise _invalid("ends_at", "give exactly one of `ends_at` and `duration_seconds`")
    duration = body.duration_seconds
    if body.ends_at is not None:
        try:
            zone = ZoneInfo(body.time_zone)
        except (ValueError, KeyError, OSError):
            raise _invalid("time_zone", f"unknown IANA time zone {body.time_zone!r}") from None
        seconds = (_instant(body.ends_at, zone) - _instant(body.starts_at, zone)).total_seconds()
        if seconds <= 0:
            raise _invalid("ends_at", "`ends_at` must be after `starts_at`")
        duration = max(1, round(seconds))
    schedule = MaintenanceWindow(
        starts_at=body.starts_at,
        duration_seconds=duration or 0,
        rrule=body.rrule,
        time_zone=body.time_zone,
        until=body.until,
    )
    try:
        validate_window(schedule)
    except MaintenanceError as error:
        field = "ends_at" if error.field == "duration_seconds" and body.ends_at is not None else error.field
        raise _invalid(field, f"`{field}` {error.message}") from None
    return schedule


def build_window(
    body: MaintenanceWindowCreate, *, window_id: str, tenant_id: str, created_at: datetime, now: datetime
) -> StoredWindow:
    """The window `body` asks for, or a 422 naming the member at fault (see the module)."""
    schedule = _schedule(body)
    if body.targets.is_empty():
        raise _invalid("targets", "a window needs `targets.monitor_ids`, `targets.labels` or `targets.alert_rule_ids`")
    return StoredWindow(
        id=window_id,
        tenant_id=tenant_id,
        name=body.name,
        schedule=schedule,
        targets=body.targets,
        comment=body.comment,
        created_at=created_at,
        updated_at=now,
    )


def patched_window_body(window: StoredWindow, patch: MaintenanceWindowPatch) -> MaintenanceWindowCreate:
    """The whole body of `window` with `patch` applied (validate it with `build_window`)."""
    schedule = window.schedule
    body = MaintenanceWindowCreate(
        name=window.name,
        starts_at=schedule.starts_at,
        duration_seconds=schedule.duration_seconds,
        rrule=schedule.rrule,
        time_zone=schedule.time_zone,
        until=schedule.until,
        targets=window.targets,
        comment=window.comment,
    )
    changes: dict[str, object] = {
        name: value for name in patch.__struct_fields__ if (value := getattr(patch, name)) is not msgspec.UNSET
    }
    if "ends_at" in changes and "duration_seconds" not in changes:
        changes["duration_seconds"] = None
    return msgspec.structs.replace(body, **changes)


def monitor_labels(monitor: Monitor) -> dict[str, str]:
    """The labels a window's matchers see on `monitor` (those its alert events carry)."""
    check_type = str(monitor.spec.check.__struct_config__.tag)
    return {**monitor.spec.labels, "monitor_id": monitor.id, "source": "uptime", "check_type": check_type}


def _labels_hold(matchers: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(matchers) and all(labels.get(name) == value for name, value in matchers.items())


def covers_monitor(window: StoredWindow, monitor: Monitor) -> bool:
    """True when `window` names `monitor` or its label matchers all hold for it (tenant checked)."""
    if window.tenant_id != monitor.tenant_id:
        return False
    return monitor.id in window.targets.monitor_ids or _labels_hold(window.targets.labels, monitor_labels(monitor))


def covers_alert(window: StoredWindow, event: AlertEvent) -> bool:
    """True when `window` covers the rule of `event`: a named alert rule, a named monitor (its alert events'
    rule id is the monitor id), or, for an uptime event, label matchers holding on its labels."""
    if window.tenant_id != event.tenant_id:
        return False
    targets = window.targets
    if event.rule_id in targets.alert_rule_ids or event.rule_id in targets.monitor_ids:
        return True
    return event.labels.get("source") == "uptime" and _labels_hold(targets.labels, {**event.labels, **event.group})


def window_active(window: StoredWindow, at: datetime) -> bool:
    """True when an occurrence of `window` covers the instant `at`."""
    return active_at(window.schedule, at)


def window_for_monitor(windows: Iterable[StoredWindow], monitor: Monitor, at: datetime) -> StoredWindow | None:
    """The first of `windows` (in the order given) covering `monitor` and active at `at`, or None."""
    return next((w for w in windows if covers_monitor(w, monitor) and window_active(w, at)), None)


def window_for_alert(windows: Iterable[StoredWindow], event: AlertEvent, at: datetime) -> StoredWindow | None:
    """The first of `windows` (in the order given) covering the rule of `event` and active at `at`, or None."""
    return next((w for w in windows if covers_alert(w, event) and window_active(w, at)), None)
