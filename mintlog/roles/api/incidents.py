"""Incident routes under `/v1/incidents` (scopes `incidents:read`, `incidents:write`). docs/incidents.md is the
reference.

Guarantees:
- every change (create, acknowledge, resolve, comment) is one timeline entry whose actor is the caller's key
  prefix, written in the same transaction as the change;
- a status change follows `triggered → acknowledged → resolved` (or `triggered → resolved`); anything else is a
  409 `invalid_transition` naming both statuses, and of two racing changes one wins, the other gets the 409;
- each change's `IncidentEvent` is published on `incidents.events.{tenant}` after the commit (acknowledge and
  resolve notify the incident's channels, a comment does not); if the bus is down the change still stands and
  the notify role's outbox sweeper publishes the event a few seconds later;
- another tenant's incident answers 404 on every verb; every write is in the audit log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, get, patch, post
from litestar.params import FromPath, QueryParameter
from msgspec import Meta

from mintlog.domain.alerting import IncidentStatus, encode_event, incident_subject
from mintlog.domain.incidents import (
    INCIDENT_STATUSES,
    EntryDraft,
    Incident,
    IncidentSeverity,
    TimelineEntry,
    TimelineEventType,
    entry_event,
    new_entry_id,
    new_incident_id,
)
from mintlog.errors import BadRequest, DependencyUnavailable, NotFound
from mintlog.http.guards import Guard, principal_of
from mintlog.ports.bus import EventBus
from mintlog.ports.incidents import AppliedChange, IncidentStore
from mintlog.ports.notifications import NotificationStore
from mintlog.roles.api.auditing import AuditTrail, audit_opt
from mintlog.roles.api.channel_refs import check_channel_ids
from mintlog.roles.api.pagination import decode_time_cursor, encode_time_cursor, parse_limit, refuse_unknown_parameters
from mintlog.roles.api.wire import decode_body, read_body

__all__ = [
    "IncidentCreate",
    "IncidentDetail",
    "IncidentPage",
    "IncidentPatch",
    "IncidentView",
    "TimelineCreate",
    "TimelineEntryView",
    "incident_routes",
]

logger = logging.getLogger(__name__)

_BASE = "/v1/incidents"
_LIST_PARAMETERS = frozenset({"status", "limit", "cursor"})
_STATUS_FILTERS: dict[str, tuple[IncidentStatus, ...]] = {
    **{status: (status,) for status in INCIDENT_STATUSES},
    "open": ("triggered", "acknowledged"),
}

Title = Annotated[str, Meta(min_length=1, max_length=500)]
Text = Annotated[str, Meta(min_length=1, max_length=10_000)]
ChannelIds = Annotated[list[Annotated[str, Meta(min_length=1, max_length=40)]], Meta(max_length=20)]


class IncidentCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`POST /v1/incidents`: an incident opened by hand; `channel_ids` (the tenant's own) are notified of its
    opening, acknowledgement and resolution, like a rule's channels."""

    title: Title
    severity: IncidentSeverity = "warning"
    description: Text | None = None
    channel_ids: ChannelIds = msgspec.field(default_factory=lambda: [])


class IncidentPatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`PATCH /v1/incidents/{id}`: the status to move to."""

    status: IncidentStatus


class TimelineCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`POST /v1/incidents/{id}/timeline`: a comment (the only entry type written by hand)."""

    event_type: Literal["comment"]
    content: Text


class TimelineEntryView(msgspec.Struct, frozen=True, kw_only=True):
    """One timeline entry. `actor` is an API key prefix or `system`."""

    id: str
    occurred_at: datetime
    event_type: TimelineEventType
    actor: str
    content: str | None
    data: dict[str, Any]
    notified: bool
    silenced_by: str | None


class IncidentView(msgspec.Struct, frozen=True, kw_only=True):
    """An incident as the API shows it, with its time to acknowledge and to resolve (seconds, null until then)."""

    id: str
    tenant_id: str
    title: str
    description: str | None
    severity: str
    status: IncidentStatus
    dedup_key: str | None
    rule_id: str | None
    channel_ids: list[str]
    labels: dict[str, str]
    created_by: str
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    time_to_acknowledge_seconds: float | None
    time_to_resolve_seconds: float | None


class IncidentDetail(IncidentView, frozen=True, kw_only=True):
    """An incident with its whole timeline, oldest entry first."""

    timeline: list[TimelineEntryView]


class IncidentPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of incidents, newest first; pass `next_cursor` as `cursor` for the next one."""

    items: list[IncidentView]
    next_cursor: str | None


_create_decoder = msgspec.json.Decoder(IncidentCreate)
_patch_decoder = msgspec.json.Decoder(IncidentPatch)
_timeline_decoder = msgspec.json.Decoder(TimelineCreate)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def incident_view(incident: Incident) -> IncidentView:
    return IncidentView(
        id=incident.id,
        tenant_id=incident.tenant_id,
        title=incident.title,
        description=incident.description,
        severity=incident.severity,
        status=incident.status,
        dedup_key=incident.dedup_key,
        rule_id=incident.rule_id,
        channel_ids=list(incident.channel_ids),
        labels=dict(incident.labels),
        created_by=incident.created_by,
        created_at=incident.created_at,
        updated_at=incident.updated_at,
        acknowledged_at=incident.acknowledged_at,
        acknowledged_by=incident.acknowledged_by,
        resolved_at=incident.resolved_at,
        resolved_by=incident.resolved_by,
        time_to_acknowledge_seconds=incident.time_to_acknowledge_seconds,
        time_to_resolve_seconds=incident.time_to_resolve_seconds,
    )


def timeline_entry_view(entry: TimelineEntry) -> TimelineEntryView:
    event = entry_event(entry)
    return TimelineEntryView(
        id=entry.id,
        occurred_at=entry.occurred_at,
        event_type=entry.event_type,
        actor=entry.actor,
        content=entry.content,
        data=dict(entry.data),
        notified=event is not None and event.notify,
        silenced_by=None if event is None else event.silenced_by,
    )


def _detail(incident: Incident, timeline: list[TimelineEntry]) -> IncidentDetail:
    view = incident_view(incident)
    return IncidentDetail(**msgspec.structs.asdict(view), timeline=[timeline_entry_view(entry) for entry in timeline])


def _draft(event_type: TimelineEventType, actor: str, at: datetime, *, content: str | None, notify: bool) -> EntryDraft:
    entry_id = new_entry_id()
    return EntryDraft(
        id=entry_id,
        source_id=entry_id,
        occurred_at=at,
        event_type=event_type,
        actor=actor,
        content=content,
        notify=notify,
    )


async def publish_change(bus: EventBus, incidents: IncidentStore, applied: AppliedChange, *, now: datetime) -> None:
    """Publish the change's event and mark it published; when the bus or the database fails, leave it to the
    outbox sweeper (the change is committed either way)."""
    event = entry_event(applied.entry)
    try:
        if event is not None:
            await bus.publish(incident_subject(event.tenant_id), encode_event(event), msg_id=applied.entry.id)
        await incidents.mark_published([applied.entry.id], published_at=now)
    except DependencyUnavailable as exc:
        logger.warning("incident event %s left to the outbox: %s", applied.entry.id, exc)


def _status_filter(status: str | None) -> tuple[IncidentStatus, ...] | None:
    if status is None:
        return None
    statuses = _STATUS_FILTERS.get(status)
    if statuses is None:
        raise BadRequest(
            f"`status` must be one of {', '.join(_STATUS_FILTERS)}, got {status!r}",
            code="invalid_parameter",
            extra={"parameter": "status"},
        )
    return statuses


def incident_routes(
    incidents: IncidentStore,
    bus: EventBus,
    trail: AuditTrail,
    *,
    requires: Callable[[str], Guard],
    channels: NotificationStore,
    clock: Callable[[], datetime] = _utcnow,
) -> list[Any]:
    """The five incident routes."""

    async def detail_of(incident: Incident) -> IncidentDetail:
        return _detail(incident, list(await incidents.timeline(incident.tenant_id, incident.id)))

    @post(
        _BASE,
        guards=[requires("incidents:write")],
        status_code=201,
        opt=audit_opt("incident.create", "incident"),
        summary="Open an incident by hand.",
        description='Body: {"title": …, "severity": "critical"|"high"|"warning"|"info", "description": …, '
        '"channel_ids": [the tenant\'s channels to notify of its opening, acknowledgement and resolution]}.',
    )
    async def create_incident(request: Request[Any, Any, Any]) -> IncidentDetail:
        principal = principal_of(request)
        async with trail.record(
            principal, "incident.create", target_type="incident", tenant_id=principal.tenant_id
        ) as note:
            body = decode_body(await read_body(request.stream()), _create_decoder)
            await check_channel_ids(channels, principal.tenant_id, body.channel_ids)
            now = clock()
            incident = Incident(
                id=new_incident_id(),
                tenant_id=principal.tenant_id,
                title=body.title,
                description=body.description,
                severity=body.severity,
                status="triggered",
                created_by=principal.key_prefix,
                created_at=now,
                updated_at=now,
                channel_ids=tuple(body.channel_ids),
            )
            entry = _draft("triggered", principal.key_prefix, now, content=body.description, notify=True)
            applied = await incidents.create_incident(incident, entry)
            note.target_id = incident.id
            note.detail = {"title": body.title, "severity": body.severity}
        await publish_change(bus, incidents, applied, now=clock())
        return _detail(applied.incident, [applied.entry])

    @get(
        _BASE,
        guards=[requires("incidents:read")],
        summary="List incidents, newest first.",
        description="Query: status (triggered, acknowledged, resolved, or open = not resolved), limit (1-200, "
        "default 50), cursor (the previous page's next_cursor).",
    )
    async def list_incidents(
        request: Request[Any, Any, Any],
        status: Annotated[str | None, QueryParameter(name="status", required=False)] = None,
        limit: Annotated[str | None, QueryParameter(name="limit", required=False)] = None,
        cursor: Annotated[str | None, QueryParameter(name="cursor", required=False)] = None,
    ) -> IncidentPage:
        principal = principal_of(request)
        refuse_unknown_parameters(request.query_params, _LIST_PARAMETERS)
        size = parse_limit(limit)
        found = await incidents.list_incidents(
            principal.tenant_id, statuses=_status_filter(status), before=decode_time_cursor(cursor), limit=size + 1
        )
        page = found[:size]
        next_cursor = encode_time_cursor(page[-1].created_at, page[-1].id) if len(found) > size else None
        return IncidentPage(items=[incident_view(incident) for incident in page], next_cursor=next_cursor)

    async def require(tenant_id: str, incident_id: str) -> Incident:
        incident = await incidents.get_incident(tenant_id, incident_id)
        if incident is None:
            raise NotFound(f"no incident {incident_id!r}", code="incident_not_found")
        return incident

    @get(
        f"{_BASE}/{{incident_id:str}}", guards=[requires("incidents:read")], summary="Get an incident and its timeline."
    )
    async def get_incident(request: Request[Any, Any, Any], incident_id: FromPath[str]) -> IncidentDetail:
        return await detail_of(await require(principal_of(request).tenant_id, incident_id))

    @patch(
        f"{_BASE}/{{incident_id:str}}",
        guards=[requires("incidents:write")],
        opt=audit_opt("incident.update", "incident"),
        summary="Acknowledge or resolve an incident.",
        description='Body: {"status": "acknowledged"} or {"status": "resolved"}. Allowed: triggered → acknowledged '
        "→ resolved and triggered → resolved; anything else is a 409.",
    )
    async def update_incident(request: Request[Any, Any, Any], incident_id: FromPath[str]) -> IncidentDetail:
        principal = principal_of(request)
        async with trail.record(
            principal, "incident.update", target_type="incident", tenant_id=principal.tenant_id, target_id=incident_id
        ) as note:
            body = decode_body(await read_body(request.stream()), _patch_decoder)
            event_type: TimelineEventType = "resolved" if body.status == "resolved" else "acknowledged"
            entry = _draft(event_type, principal.key_prefix, clock(), content=None, notify=True)
            applied = await incidents.change_status(principal.tenant_id, incident_id, body.status, entry)
            if applied is None:
                raise NotFound(f"no incident {incident_id!r}", code="incident_not_found")
            note.detail = {"status": body.status}
        await publish_change(bus, incidents, applied, now=clock())
        return await detail_of(applied.incident)

    @post(
        f"{_BASE}/{{incident_id:str}}/timeline",
        guards=[requires("incidents:write")],
        status_code=201,
        opt=audit_opt("incident.comment", "incident"),
        summary="Add a comment to an incident's timeline.",
        description='Body: {"event_type": "comment", "content": …}. Comments notify no channel.',
    )
    async def add_timeline_entry(request: Request[Any, Any, Any], incident_id: FromPath[str]) -> TimelineEntryView:
        principal = principal_of(request)
        async with trail.record(
            principal, "incident.comment", target_type="incident", tenant_id=principal.tenant_id, target_id=incident_id
        ):
            body = decode_body(await read_body(request.stream()), _timeline_decoder)
            entry = _draft("comment", principal.key_prefix, clock(), content=body.content, notify=False)
            applied = await incidents.append_entry(principal.tenant_id, incident_id, entry)
            if applied is None:
                raise NotFound(f"no incident {incident_id!r}", code="incident_not_found")
        await publish_change(bus, incidents, applied, now=clock())
        return timeline_entry_view(applied.entry)

    return [create_incident, list_incidents, get_incident, update_incident, add_timeline_entry]
