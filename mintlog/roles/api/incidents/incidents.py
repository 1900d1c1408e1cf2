"""Incident routes under `/v1/incidents` (scopes `incidents:read`, `incidents:write`). docs/incidents.md is the
reference.

Guarantees:
- every change (create, acknowledge, resolve, comment) is one timeline entry whose actor is the caller's key
  prefix, written in the same transaction as the change;
- a status change follows `triggered → acknowledged → resolved` (or `triggered → resolved`); anything else is a
  409 `invalid_transition` naming both statuses, and of two racing changes one wins, the other gets the 409;
- each change's `IncidentEvent` is published on the tenant's incident subject after the commit (acknowledge and
  resolve notify the incident's channels, a comment does not); if the bus is down the change still stands and
  the notify role's outbox sweeper publishes the event a few seconds later;
- another tenant's incident answers 404 on every verb; every write is in the audit log.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, get, patch, post
from litestar.params import FromPath, QueryParameter
from msgspec import Meta

from mintlog.domain.alerting import IncidentStatus
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
from mintlog.domain.streams import encode_event, incidents_subject
from mintlog.errors import BadRequest, Conflict, DependencyUnavailable
from mintlog.http.guards import principal_of, requires
from mintlog.ports.bus import EventBus
from mintlog.ports.escalation import EscalationStore
from mintlog.ports.incidents import AppliedChange, IncidentStore
from mintlog.ports.notifications import NotificationStore
from mintlog.roles.api.common.auditing import AuditedWrite, audit_target
from mintlog.roles.api.common.dependencies import Clock, Injected
from mintlog.roles.api.common.pagination import Cursor, Limit, Page, TimeWindow
from mintlog.roles.api.common.resource import Resource, operation
from mintlog.roles.api.common.wire import decode_body, read_body
from mintlog.roles.api.incidents.channel_refs import check_channel_ids, check_policy_id

__all__ = [
    "IncidentCreate",
    "IncidentDetail",
    "IncidentPatch",
    "IncidentView",
    "Incidents",
    "TimelineCreate",
    "TimelineEntryView",
]

logger = logging.getLogger(__name__)

_STATUS_FILTERS: dict[str, tuple[IncidentStatus, ...]] = {
    **{status: (status,) for status in INCIDENT_STATUSES},
    "open": ("triggered", "acknowledged"),
}

Title = Annotated[str, Meta(min_length=1, max_length=500)]
Text = Annotated[str, Meta(min_length=1, max_length=10_000)]
ChannelIds = Annotated[list[Annotated[str, Meta(min_length=1, max_length=40)]], Meta(max_length=20)]
Labels = Annotated[
    dict[Annotated[str, Meta(min_length=1, max_length=100)], Annotated[str, Meta(max_length=500)]],
    Meta(max_length=20),
]


class IncidentCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`POST /v1/incidents`: an incident opened by hand; `channel_ids` (the tenant's own) are notified of its
    opening, acknowledgement and resolution, like a rule's channels."""

    title: Title
    severity: IncidentSeverity = "warning"
    description: Text | None = None
    channel_ids: ChannelIds = msgspec.field(default_factory=lambda: [])
    escalation_policy_id: Annotated[str, Meta(min_length=1, max_length=40)] | None = None
    """The escalation policy to run (None: the first of the tenant's routes that matches, else its default)."""
    labels: Labels = msgspec.field(default_factory=lambda: {})
    """Labels of the incident (`{"team": "db"}`), which the tenant's routes match."""


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
    escalation_policy_id: str | None


class IncidentDetail(IncidentView, frozen=True, kw_only=True):
    """An incident with its whole timeline, oldest entry first."""

    timeline: list[TimelineEntryView]


_create_decoder = msgspec.json.Decoder(IncidentCreate)
_patch_decoder = msgspec.json.Decoder(IncidentPatch)
_timeline_decoder = msgspec.json.Decoder(TimelineCreate)


def incident_view(incident: Incident) -> IncidentView:
    return msgspec.convert(incident, IncidentView, from_attributes=True)


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


async def _detail_of(incidents: IncidentStore, incident: Incident) -> IncidentDetail:
    return _detail(incident, list(await incidents.timeline(incident.tenant_id, incident.id)))


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
            await bus.publish(incidents_subject(event.tenant_id), encode_event(event), msg_id=applied.entry.id)
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


class Incidents(Resource):
    """`/v1/incidents`: the tenant's incidents and their timelines."""

    path = "/v1/incidents"
    opt = audit_target("incident")
    noun = "incident"
    not_found_code = "incident_not_found"

    @post(
        guards=[requires("incidents:write")],
        status_code=201,
        summary="Open an incident by hand.",
        description='Body: {"title": …, "severity": "critical"|"high"|"warning"|"info", "description": …, '
        '"channel_ids": [the tenant\'s channels to notify of its opening, acknowledgement and resolution]}.',
        opt=operation(audit="incident.create", body=IncidentCreate, errors=(422,)),
    )
    async def create_incident(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        incidents: Injected[IncidentStore],
        notifications: Injected[NotificationStore],
        escalation: Injected[EscalationStore],
        bus: Injected[EventBus],
        clock: Injected[Clock],
    ) -> IncidentDetail:
        principal = principal_of(request)
        async with audit.record() as note:
            body = decode_body(await read_body(request.stream()), _create_decoder)
            await check_channel_ids(notifications, principal.tenant_id, body.channel_ids)
            await check_policy_id(escalation, principal.tenant_id, body.escalation_policy_id)
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
                escalation_policy_id=body.escalation_policy_id,
                labels=dict(body.labels),
            )
            entry = _draft("triggered", principal.key_prefix, now, content=body.description, notify=True)
            applied = await incidents.create_incident(incident, entry)
            note.target_id = incident.id
            note.detail = {"title": body.title, "severity": body.severity}
        await publish_change(bus, incidents, applied, now=clock())
        return _detail(applied.incident, [applied.entry])

    @get(
        guards=[requires("incidents:read")],
        summary="List incidents, newest first.",
        description="Query: status (triggered, acknowledged, resolved, or open = not resolved), limit (1-200, "
        "default 50), cursor (the previous page's next_cursor).",
        opt=operation(),
    )
    async def list_incidents(
        self,
        request: Request[Any, Any, Any],
        incidents: Injected[IncidentStore],
        status: Annotated[
            Annotated[str, Meta(extra_json_schema={"enum": list(_STATUS_FILTERS)})] | None,
            QueryParameter(name="status", required=False),
        ] = None,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> Page[IncidentView]:
        principal = principal_of(request)
        window = TimeWindow.of(request, limit, cursor)
        found = await incidents.list_incidents(
            principal.tenant_id, statuses=_status_filter(status), before=window.after, limit=window.fetch
        )
        return window.page(found, incident_view)

    @get(
        "/{incident_id:str}",
        guards=[requires("incidents:read")],
        summary="Get an incident and its timeline.",
        opt=operation(),
    )
    async def get_incident(
        self, request: Request[Any, Any, Any], incidents: Injected[IncidentStore], incident_id: FromPath[str]
    ) -> IncidentDetail:
        principal = principal_of(request)
        return await _detail_of(
            incidents, self.found(await incidents.get_incident(principal.tenant_id, incident_id), incident_id)
        )

    @patch(
        "/{incident_id:str}",
        guards=[requires("incidents:write")],
        summary="Acknowledge or resolve an incident.",
        description='Body: {"status": "acknowledged"} or {"status": "resolved"}. Allowed: triggered → acknowledged '
        "→ resolved and triggered → resolved; anything else is a 409.",
        opt=operation(audit="incident.update", body=IncidentPatch, errors=(409, 422)),
    )
    async def update_incident(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        incidents: Injected[IncidentStore],
        bus: Injected[EventBus],
        clock: Injected[Clock],
        incident_id: FromPath[str],
    ) -> IncidentDetail:
        principal = principal_of(request)
        async with audit.record(target_id=incident_id) as note:
            body = decode_body(await read_body(request.stream()), _patch_decoder)
            if body.status == "triggered":  # only an escalation's acknowledgement timeout re-triggers
                current = self.found(await incidents.get_incident(principal.tenant_id, incident_id), incident_id)
                raise Conflict(
                    f"incident {incident_id!r} cannot go from {current.status} to triggered",
                    code="invalid_transition",
                    extra={"from": current.status, "to": "triggered"},
                )
            event_type: TimelineEventType = "resolved" if body.status == "resolved" else "acknowledged"
            entry = _draft(event_type, principal.key_prefix, clock(), content=None, notify=True)
            applied = self.found(
                await incidents.change_status(principal.tenant_id, incident_id, body.status, entry), incident_id
            )
            note.detail = {"status": body.status}
        await publish_change(bus, incidents, applied, now=clock())
        return await _detail_of(incidents, applied.incident)

    @post(
        "/{incident_id:str}/timeline",
        guards=[requires("incidents:write")],
        status_code=201,
        summary="Add a comment to an incident's timeline.",
        description='Body: {"event_type": "comment", "content": …}. Comments notify no channel.',
        opt=operation(audit="incident.comment", body=TimelineCreate, errors=(422,)),
    )
    async def add_timeline_entry(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        incidents: Injected[IncidentStore],
        bus: Injected[EventBus],
        clock: Injected[Clock],
        incident_id: FromPath[str],
    ) -> TimelineEntryView:
        principal = principal_of(request)
        async with audit.record(target_id=incident_id):
            body = decode_body(await read_body(request.stream()), _timeline_decoder)
            entry = _draft("comment", principal.key_prefix, clock(), content=body.content, notify=False)
            applied = self.found(await incidents.append_entry(principal.tenant_id, incident_id, entry), incident_id)
        await publish_change(bus, incidents, applied, now=clock())
        return timeline_entry_view(applied.entry)
