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

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post
from litestar.params import FromPath, QueryParameter
from msgspec import Meta

from mintlog.domain.silences import Silence, SilenceState, new_silence_id
from mintlog.errors import BadRequest, NotFound
from mintlog.http.guards import Guard, principal_of
from mintlog.ports.incidents import IncidentStore
from mintlog.roles.api.auditing import AuditTrail, audit_opt
from mintlog.roles.api.pagination import decode_time_cursor, encode_time_cursor, parse_limit, refuse_unknown_parameters
from mintlog.roles.api.wire import decode_body, invalid_field, read_body

__all__ = ["MAX_SILENCE_SECONDS", "SilenceCreate", "SilencePage", "SilenceView", "silence_routes"]

_BASE = "/v1/alerts/silences"
_LIST_PARAMETERS = frozenset({"state", "limit", "cursor"})
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


class SilencePage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of silences, newest first; pass `next_cursor` as `cursor` for the next one."""

    items: list[SilenceView]
    next_cursor: str | None


_create_decoder = msgspec.json.Decoder(SilenceCreate)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def silence_view(silence: Silence, now: datetime) -> SilenceView:
    return SilenceView(
        id=silence.id,
        tenant_id=silence.tenant_id,
        rule_id=silence.rule_id,
        labels=dict(silence.labels),
        starts_at=silence.starts_at,
        ends_at=silence.ends_at,
        comment=silence.comment,
        created_by=silence.created_by,
        created_at=silence.created_at,
        state=silence.state(now),
    )


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


def silence_routes(
    incidents: IncidentStore,
    trail: AuditTrail,
    *,
    requires: Callable[[str], Guard],
    clock: Callable[[], datetime] = _utcnow,
) -> list[Any]:
    """The four silence routes."""

    @post(
        _BASE,
        guards=[requires("alerts:write")],
        status_code=201,
        opt=audit_opt("silence.create", "silence"),
        summary="Silence the notifications of matching alerts for a while.",
        description='Body: {"rule_id": …, "labels": {"service": "checkout"}, "starts_at": RFC 3339 (default now), '
        '"ends_at": RFC 3339 | "duration_seconds": 1-2592000, "comment": …}.',
    )
    async def create_silence(request: Request[Any, Any, Any]) -> SilenceView:
        principal = principal_of(request)
        async with trail.record(
            principal, "silence.create", target_type="silence", tenant_id=principal.tenant_id
        ) as note:
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
        _BASE,
        guards=[requires("alerts:read")],
        summary="List silences, newest first.",
        description="Query: state (active, pending, expired or all; default all), limit (1-200), cursor.",
    )
    async def list_silences(
        request: Request[Any, Any, Any],
        state_filter: Annotated[str | None, QueryParameter(name="state", required=False)] = None,
        limit: Annotated[str | None, QueryParameter(name="limit", required=False)] = None,
        cursor: Annotated[str | None, QueryParameter(name="cursor", required=False)] = None,
    ) -> SilencePage:
        principal = principal_of(request)
        refuse_unknown_parameters(request.query_params, _LIST_PARAMETERS)
        state = state_filter or "all"
        if state not in _STATE_FILTERS:
            raise BadRequest(
                f"`state` must be one of {', '.join(_STATE_FILTERS)}, got {state!r}",
                code="invalid_parameter",
                extra={"parameter": "state"},
            )
        size = parse_limit(limit)
        now = clock()
        found = await incidents.list_silences(
            principal.tenant_id,
            now=now,
            states=_STATE_FILTERS[state],
            before=decode_time_cursor(cursor),
            limit=size + 1,
        )
        page = found[:size]
        next_cursor = encode_time_cursor(page[-1].created_at, page[-1].id) if len(found) > size else None
        return SilencePage(items=[silence_view(silence, now) for silence in page], next_cursor=next_cursor)

    @get(f"{_BASE}/{{silence_id:str}}", guards=[requires("alerts:read")], summary="Get a silence.")
    async def get_silence(request: Request[Any, Any, Any], silence_id: FromPath[str]) -> SilenceView:
        silence = await incidents.get_silence(principal_of(request).tenant_id, silence_id)
        if silence is None:
            raise NotFound(f"no silence {silence_id!r}", code="silence_not_found")
        return silence_view(silence, clock())

    @delete(
        f"{_BASE}/{{silence_id:str}}",
        guards=[requires("alerts:write")],
        status_code=200,
        opt=audit_opt("silence.expire", "silence"),
        summary="Expire a silence now; it stays listed as expired. Idempotent.",
    )
    async def expire_silence(request: Request[Any, Any, Any], silence_id: FromPath[str]) -> SilenceView:
        principal = principal_of(request)
        async with trail.record(
            principal, "silence.expire", target_type="silence", tenant_id=principal.tenant_id, target_id=silence_id
        ):
            now = clock()
            silence = await incidents.expire_silence(principal.tenant_id, silence_id, now=now)
            if silence is None:
                raise NotFound(f"no silence {silence_id!r}", code="silence_not_found")
        return silence_view(silence, now)

    return [create_silence, list_silences, get_silence, expire_silence]
