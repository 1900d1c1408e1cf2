"""Silence routes under `/v1/alerts/silences` (scopes `alerts:read`, `alerts:write`). docs/incidents.md is the
reference.

A silence mutes the notifications of the alert events it matches (a `rule_id` and/or label equalities, on the
event's labels and group) from `starts_at` to `ends_at`; their incidents still open and update, and the
timeline says which silence muted them. Guarantees:
- a silence has at least one matcher and lasts at most 30 days (422 naming the member otherwise);
- `DELETE` expires a silence now and keeps it listed for history (idempotent);
- another tenant's silence answers 404; every write is in the audit log.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post
from litestar.params import FromPath, QueryParameter
from msgspec import Meta

from mintlog.domain.silences import Silence, SilenceState, new_silence_id
from mintlog.errors import BadRequest
from mintlog.http.guards import principal_of, requires
from mintlog.ports.incidents import IncidentStore
from mintlog.roles.api.common.auditing import AuditedWrite, audit_target
from mintlog.roles.api.common.dependencies import Clock, Injected
from mintlog.roles.api.common.pagination import Cursor, Limit, Page, TimeWindow
from mintlog.roles.api.common.resource import Resource, operation
from mintlog.roles.api.common.wire import decode_body, invalid_field, read_body

__all__ = ["MAX_SILENCE_SECONDS", "SilenceCreate", "SilenceView", "Silences", "build_silence"]

_STATE_FILTERS: dict[str, tuple[SilenceState, ...] | None] = {
    "active": ("active",),
    "pending": ("pending",),
    "expired": ("expired",),
    "all": None,
}
MAX_SILENCE_SECONDS = 30 * 86_400
_MAX_START_DELAY = timedelta(days=365)

LabelName = Annotated[str, Meta(min_length=1, max_length=200)]
LabelValue = Annotated[str, Meta(max_length=1000)]


class SilenceCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`POST /v1/alerts/silences`: matchers, and either `ends_at` or `duration_seconds`."""

    rule_id: Annotated[str, Meta(min_length=1, max_length=100)] | None = None
    labels: Annotated[dict[LabelName, LabelValue], Meta(max_length=50)] = msgspec.field(default_factory=lambda: {})
    starts_at: Annotated[datetime, Meta(tz=True)] | None = None
    ends_at: Annotated[datetime, Meta(tz=True)] | None = None
    duration_seconds: Annotated[int, Meta(ge=1, le=MAX_SILENCE_SECONDS)] | None = None
    comment: Annotated[str, Meta(max_length=2000)] | None = None


class SilenceView(msgspec.Struct, frozen=True, kw_only=True):
    """A silence and its state now: `pending` (starts later), `active` or `expired`."""

    id: str
    tenant_id: str
    rule_id: str | None
    labels: dict[str, str]
    starts_at: datetime
    ends_at: datetime
    comment: str | None
    created_by: str
    created_at: datetime
    state: SilenceState


_create_decoder = msgspec.json.Decoder(SilenceCreate)


def silence_view(silence: Silence, now: datetime) -> SilenceView:
    return msgspec.convert({**msgspec.structs.asdict(silence), "state": silence.state(now)}, SilenceView)


def build_silence(body: SilenceCreate, *, tenant_id: str, actor: str, now: datetime) -> Silence:
    """The silence a create body asks for, or a 422 naming the member at fault."""
    if body.rule_id is None and not body.labels:
        raise invalid_field("labels", "a silence needs a `rule_id` or at least one label, or it would mute everything")
    starts_at = body.starts_at or now
    if starts_at > now + _MAX_START_DELAY:
        raise invalid_field("starts_at", "`starts_at` must be within a year from now")
    if (body.ends_at is None) == (body.duration_seconds is None):
        raise invalid_field("ends_at", "give exactly one of `ends_at` and `duration_seconds`")
    ends_at = body.ends_at or starts_at + timedelta(seconds=body.duration_seconds or 0)
    if ends_at <= max(starts_at, now):
        raise invalid_field("ends_at", "`ends_at` must be after `starts_at` and in the future")
    if ends_at - starts_at > timedelta(seconds=MAX_SILENCE_SECONDS):
        raise invalid_field("ends_at", f"a silence lasts at most {MAX_SILENCE_SECONDS // 86_400} days")
    return Silence(
        id=new_silence_id(),
        tenant_id=tenant_id,
        rule_id=body.rule_id,
        labels=dict(body.labels),
        starts_at=starts_at,
        ends_at=ends_at,
        comment=body.comment,
        created_by=actor,
        created_at=now,
    )


class Silences(Resource):
    """`/v1/alerts/silences`: the tenant's silences, expired ones kept for history."""

    path = "/v1/alerts/silences"
    opt = audit_target("silence")
    noun = "silence"
    not_found_code = "silence_not_found"

    @post(
        guards=[requires("alerts:write")],
        status_code=201,
        summary="Silence the notifications of matching alerts for a while.",
        description='Body: {"rule_id": …, "labels": {"service": "checkout"}, "starts_at": RFC 3339 (default now), '
        '"ends_at": RFC 3339 | "duration_seconds": 1-2592000, "comment": …}.',
        opt=operation(audit="silence.create", body=SilenceCreate, errors=(422,)),
    )
    async def create_silence(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        incidents: Injected[IncidentStore],
        clock: Injected[Clock],
    ) -> SilenceView:
        principal = principal_of(request)
        async with audit.record() as note:
            body = decode_body(await read_body(request.stream()), _create_decoder)
            now = clock()
            silence = build_silence(body, tenant_id=principal.tenant_id, actor=principal.key_prefix, now=now)
            await incidents.create_silence(silence)
            note.target_id = silence.id
            note.detail = {
                "rule_id": silence.rule_id,
                "labels": dict(silence.labels),
                "starts_at": msgspec.to_builtins(silence.starts_at),
                "ends_at": msgspec.to_builtins(silence.ends_at),
            }
        return silence_view(silence, now)

    @get(
        guards=[requires("alerts:read")],
        summary="List silences, newest first.",
        description="Query: state (active, pending, expired or all; default all), limit (1-200), cursor.",
        opt=operation(),
    )
    async def list_silences(
        self,
        request: Request[Any, Any, Any],
        incidents: Injected[IncidentStore],
        clock: Injected[Clock],
        state_filter: Annotated[
            Annotated[str, Meta(extra_json_schema={"enum": list(_STATE_FILTERS)})] | None,
            QueryParameter(name="state", required=False),
        ] = None,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> Page[SilenceView]:
        principal = principal_of(request)
        window = TimeWindow.of(request, limit, cursor)
        state = state_filter or "all"
        if state not in _STATE_FILTERS:
            raise BadRequest(
                f"`state` must be one of {', '.join(_STATE_FILTERS)}, got {state!r}",
                code="invalid_parameter",
                extra={"parameter": "state"},
            )
        now = clock()
        found = await incidents.list_silences(
            principal.tenant_id, now=now, states=_STATE_FILTERS[state], before=window.after, limit=window.fetch
        )
        return window.page(found, lambda silence: silence_view(silence, now))

    @get("/{silence_id:str}", guards=[requires("alerts:read")], summary="Get a silence.", opt=operation())
    async def get_silence(
        self,
        request: Request[Any, Any, Any],
        incidents: Injected[IncidentStore],
        clock: Injected[Clock],
        silence_id: FromPath[str],
    ) -> SilenceView:
        principal = principal_of(request)
        silence = self.found(await incidents.get_silence(principal.tenant_id, silence_id), silence_id)
        return silence_view(silence, clock())

    @delete(
        "/{silence_id:str}",
        guards=[requires("alerts:write")],
        status_code=200,
        summary="Expire a silence now; it stays listed as expired. Idempotent.",
        opt=operation(audit="silence.expire"),
    )
    async def expire_silence(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        incidents: Injected[IncidentStore],
        clock: Injected[Clock],
        silence_id: FromPath[str],
    ) -> SilenceView:
        principal = principal_of(request)
        async with audit.record(target_id=silence_id):
            now = clock()
            silence = self.found(await incidents.expire_silence(principal.tenant_id, silence_id, now=now), silence_id)
        return silence_view(silence, now)
