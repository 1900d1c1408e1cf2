"""`GET /v1/incidents/stats` (scope `incidents:read`): counts, MTTA and MTTR p50/p90 of the incidents opened in
[from, to), grouped (`mintlog.domain.incident_stats`). docs/incidents.md is the reference.

Limits: at most `_MAX_INCIDENTS` incidents are read (newest first); `truncated` says when the window held more.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get
from litestar.params import QueryParameter
from msgspec import Meta

from mintlog.domain.incident_stats import GROUP_BYS, GroupBy, IncidentGroupStats, incident_stats
from mintlog.domain.incidents import Incident, TimelineEntry
from mintlog.errors import BadRequest, UnprocessableEntity
from mintlog.http.guards import principal_of, requires
from mintlog.ports.incidents import IncidentStore
from mintlog.roles.api.common.dependencies import Clock, Injected
from mintlog.roles.api.common.pagination import refuse_undeclared_parameters
from mintlog.roles.api.common.resource import operation
from mintlog.roles.api.common.wire import FromParameter, ToParameter, time_parameter

__all__ = ["IncidentStats", "IncidentStatsReport"]

_MAX_INCIDENTS = 10_000
_PAGE = 200
_DEFAULT_WINDOW = timedelta(days=30)


class IncidentStatsReport(msgspec.Struct, frozen=True, kw_only=True):
    """The report: its window, grouping, totals and groups (most incidents first)."""

    start: datetime
    end: datetime
    group_by: GroupBy
    total: int
    truncated: bool
    groups: list[IncidentGroupStats]


class IncidentStats(Controller):
    """`/v1/incidents/stats`."""

    path = "/v1/incidents/stats"

    @get(
        guards=[requires("incidents:read")],
        summary="Incident counts, MTTA and MTTR (p50/p90) over [from, to) by service, rule, monitor, policy or person.",
        description="Query: from, to (default: the last 30 days), group_by (default service). Times in seconds, "
        "computed from the timelines. See docs/incidents.md.",
        opt=operation(errors=(422,)),
    )
    async def stats(
        self,
        request: Request[Any, Any, Any],
        incidents: Injected[IncidentStore],
        clock: Injected[Clock],
        from_: FromParameter = None,
        to: ToParameter = None,
        group_by: Annotated[
            Annotated[str, Meta(extra_json_schema={"enum": list(GROUP_BYS)})] | None,
            QueryParameter(name="group_by", required=False),
        ] = None,
    ) -> IncidentStatsReport:
        refuse_undeclared_parameters(request)
        chosen = group_by or "service"
        if chosen not in GROUP_BYS:
            raise UnprocessableEntity(
                f"`group_by` must be one of {', '.join(GROUP_BYS)}, got {chosen!r}",
                code="validation_failed",
                extra={"field": "group_by"},
            )
        now = clock()
        end = time_parameter("to", to, now) or now
        start = time_parameter("from", from_, now) or end - _DEFAULT_WINDOW
        if start >= end:
            raise BadRequest("`from` must be earlier than `to`", code="invalid_time")
        tenant_id = principal_of(request).tenant_id
        found, truncated = await _incidents_in(incidents, tenant_id, start, end)
        pairs: list[tuple[Incident, list[TimelineEntry]]] = [
            (incident, list(await incidents.timeline(tenant_id, incident.id))) for incident in found
        ]
        return IncidentStatsReport(
            start=start,
            end=end,
            group_by=msgspec.convert(chosen, GroupBy),
            total=len(pairs),
            truncated=truncated,
            groups=incident_stats(pairs, msgspec.convert(chosen, GroupBy)),
        )


async def _incidents_in(
    incidents: IncidentStore, tenant_id: str, start: datetime, end: datetime
) -> tuple[list[Incident], bool]:
    """The tenant's incidents created in [start, end), newest first, at most `_MAX_INCIDENTS` (and whether more)."""
    found: list[Incident] = []
    before: tuple[datetime, str] = (end, "")
    while True:
        page = await incidents.list_incidents(tenant_id, before=before, limit=_PAGE)
        for incident in page:
            if incident.created_at < start:
                return found, False
            if len(found) == _MAX_INCIDENTS:
                return found, True
            found.append(incident)
        if len(page) < _PAGE:
            return found, False
        before = (page[-1].created_at, page[-1].id)
