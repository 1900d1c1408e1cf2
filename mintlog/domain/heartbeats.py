"""Heartbeat monitors: ping tokens, the ping routes' grammar, the ping message on the bus, and what one ping
does to a heartbeat. Pure code, no I/O (the schedules themselves are `mintlog.domain.heartbeat_schedule`).

Guarantees:
- a ping token is 192 random bits (`secrets.token_urlsafe(24)`, 32 URL-safe characters), the only credential
  of a ping: `is_ping_token` refuses anything else before any lookup;
- `parse_ping_suffix` maps the last path segment exactly: none → success, `start`, `fail`, `0` → success,
  `1`-`255` → failure (an exit status); anything else is None (a 404 for the route);
- `apply_ping` is pure: a `start` records the start and judges nothing; a success or a failure ends a run
  (its duration measured from the last `start`, see `run_duration`), is judged at once (ok / failed) and moves
  the deadline on from that ping.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import msgspec

from mintlog.domain.heartbeat_schedule import HeartbeatSchedule, deadline, run_duration

__all__ = [
    "MAX_PING_BODY_BYTES",
    "HeartbeatPing",
    "HeartbeatState",
    "PingEffect",
    "PingKind",
    "apply_ping",
    "is_ping_token",
    "late_error",
    "new_ping_id",
    "new_ping_token",
    "parse_ping_suffix",
    "ping_path",
]

MAX_PING_BODY_BYTES = 10 * 1024
"""The most of a ping's body that is accepted (and kept in its log event); a larger body is a 413."""

PingKind = Literal["start", "success", "fail"]

_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")
_EXIT_STATUS = re.compile(r"0|[1-9][0-9]{0,2}")


def new_ping_token() -> str:
    """A new ping token: 192 random bits, URL-safe."""
    return secrets.token_urlsafe(24)


def is_ping_token(text: str) -> bool:
    """Whether `text` has the shape of a ping token (anything else names no monitor)."""
    return _TOKEN.fullmatch(text) is not None


def ping_path(token: str) -> str:
    """The path of a heartbeat's success ping on the ingest port; `/start`, `/fail` and `/{exit status}` follow."""
    return f"/ping/{token}"


def new_ping_id() -> str:
    """The id of one ping (its bus message id, so a re-publish is dropped by the bus)."""
    return f"png_{secrets.token_hex(10)}"


def parse_ping_suffix(suffix: str | None) -> tuple[PingKind, int | None] | None:
    """The kind and exit status of a ping from its path's last segment (None for `/ping/{token}` itself):
    `(kind, exit_status or None)`, or None when the segment is not one of the ping routes."""
    if suffix is None:
        return "success", None
    if suffix in ("start", "fail"):
        return suffix, None
    if _EXIT_STATUS.fullmatch(suffix) is None or int(suffix) > 255:
        return None
    code = int(suffix)
    return ("success" if code == 0 else "fail"), code


class HeartbeatPing(msgspec.Struct, frozen=True, kw_only=True):
    """One ping as the ingest role accepted it, on `uptime.pings.{tenant}` for the uptime role to record."""

    id: str
    tenant_id: str
    monitor_id: str
    kind: PingKind
    received_at: datetime
    exit_status: int | None = None
    body: str = ""
    method: str = "GET"
    user_agent: str | None = None
    remote_addr: str | None = None


class HeartbeatState(msgspec.Struct, frozen=True, kw_only=True):
    """What a heartbeat's pings left: the last ping of each kind and the last run's duration and exit status."""

    last_ping_at: datetime | None = None
    last_ping_kind: PingKind | None = None
    last_start_at: datetime | None = None
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    last_duration_seconds: float | None = None
    last_exit_status: int | None = None


@dataclass(frozen=True, slots=True)
class PingEffect:
    """What one ping does: the new state; `ok` (None for a `start`, which judges nothing) with the failure's
    `error`; the run's `duration_seconds` when it had a start; and the heartbeat's new deadline (None: unchanged)."""

    state: HeartbeatState
    ok: bool | None
    error: str | None
    duration_seconds: float | None
    next_deadline: datetime | None


def apply_ping(state: HeartbeatState, ping: HeartbeatPing, schedule: HeartbeatSchedule) -> PingEffect:
    """The effect of `ping` on a heartbeat in `state` following `schedule` (see the module docstring)."""
    at = ping.received_at
    if ping.kind == "start":
        started = msgspec.structs.replace(state, last_ping_at=at, last_ping_kind="start", last_start_at=at)
        return PingEffect(state=started, ok=None, error=None, duration_seconds=None, next_deadline=None)
    duration = run_duration(state.last_start_at, at)
    ok = ping.kind == "success"
    ended = msgspec.structs.replace(
        state,
        last_ping_at=at,
        last_ping_kind=ping.kind,
        last_start_at=None,
        last_success_at=at if ok else state.last_success_at,
        last_failure_at=state.last_failure_at if ok else at,
        last_duration_seconds=duration,
        last_exit_status=ping.exit_status,
    )
    if ok:
        error = None
    elif ping.exit_status is not None:
        error = f"the job reported exit status {ping.exit_status}"
    else:
        error = "the job reported a failure"
    return PingEffect(
        state=ended, ok=ok, error=error, duration_seconds=duration, next_deadline=deadline(schedule, at, at)
    )


def late_error(state: HeartbeatState | None, watched_since: datetime) -> str:
    """The reason a heartbeat is late: a run that started and never ended, or since when nothing pinged
    (`watched_since`, the monitor's creation or resume, when it never did)."""
    if state is not None and state.last_ping_kind == "start" and state.last_start_at is not None:
        return f"late: started at {state.last_start_at.isoformat()} and never finished"
    if state is not None and state.last_ping_at is not None:
        return f"late: no ping since {state.last_ping_at.isoformat()}"
    return f"late: no ping since {watched_since.isoformat()}"
