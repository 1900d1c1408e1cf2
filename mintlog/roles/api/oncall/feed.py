"""`GET /v1/oncall/ical/{token}.ics`: a schedule's calendar feed, opened by its feed token (no API key).

Guarantees:
- the feed holds the final shifts from 00:00 UTC `FEED_DAYS_BEFORE` days ago to `weeks` weeks ahead (default
  `FEED_DEFAULT_WEEKS`, at most `FEED_MAX_WEEKS`), as `text/calendar` (see `mintlog.domain.oncall_ical`);
- a token that was never minted, was replaced or revoked, or whose tenant is suspended or deleted answers the
  same 404 `feed_not_found`: the answer never tells which.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from litestar import Request, Response, get
from litestar.params import FromPath, QueryParameter

from mintlog.domain.oncall_ical import ICAL_TOKEN_PREFIX, calendar_feed, ical_token_hash
from mintlog.errors import NotFound
from mintlog.ports.oncall_store import OnCallStore
from mintlog.roles.api.common.dependencies import Clock, Injected
from mintlog.roles.api.common.pagination import refuse_undeclared_parameters
from mintlog.roles.api.common.resource import Resource, operation
from mintlog.roles.api.common.wire import invalid_field
from mintlog.roles.api.oncall.schedules import schedule_shifts

__all__ = ["FEED_DAYS_BEFORE", "FEED_DEFAULT_WEEKS", "FEED_MAX_WEEKS", "CalendarFeed"]

FEED_DAYS_BEFORE = 14
FEED_DEFAULT_WEEKS = 12
FEED_MAX_WEEKS = 12
_SUFFIX = ".ics"
_MAX_TOKEN_CHARS = 100

WeeksParameter = Annotated[
    str | None,
    QueryParameter(
        name="weeks", required=False, description=f"Weeks ahead, 1-{FEED_MAX_WEEKS} (default {FEED_DEFAULT_WEEKS})."
    ),
]


def _weeks(value: str | None) -> int:
    if value is None:
        return FEED_DEFAULT_WEEKS
    if not value.isdigit() or not 1 <= int(value) <= FEED_MAX_WEEKS:
        raise invalid_field("weeks", f"`weeks` is a whole number from 1 to {FEED_MAX_WEEKS}")
    return int(value)


class CalendarFeed(Resource):
    """`/v1/oncall/ical`: calendar feeds by token."""

    path = "/v1/oncall/ical"
    noun = "calendar feed"
    not_found_code = "feed_not_found"

    @get(
        "/{feed:str}",
        summary="A schedule's final shifts as an iCalendar feed (the path holds the feed token; no API key).",
        description=(
            "Subscribe to it from a calendar app. Mint the token with POST /v1/oncall/schedules/{id}/ical-token."
        ),
        opt=operation(answer=str, media_type="text/calendar", errors=(400, 404, 422)),
    )
    async def calendar(
        self,
        request: Request[Any, Any, Any],
        oncall: Injected[OnCallStore],
        clock: Injected[Clock],
        feed: FromPath[str],
        weeks: WeeksParameter = None,
    ) -> Response[bytes]:
        refuse_undeclared_parameters(request)
        ahead = _weeks(weeks)
        token = feed.removesuffix(_SUFFIX)
        if not feed.endswith(_SUFFIX) or not token.startswith(ICAL_TOKEN_PREFIX) or len(token) > _MAX_TOKEN_CHARS:
            raise NotFound("no calendar feed at this address", code="feed_not_found")
        schedule = await oncall.schedule_by_ical_token(ical_token_hash(token))
        if schedule is None:
            raise NotFound("no calendar feed at this address", code="feed_not_found")
        now = clock()
        # The window starts at a UTC midnight: a shift cut by it keeps its UID for a day, not for one fetch.
        start = (now - timedelta(days=FEED_DAYS_BEFORE)).replace(hour=0, minute=0, second=0, microsecond=0)
        end = now + timedelta(weeks=ahead)
        shifts = await schedule_shifts(oncall, schedule, start, end)
        body = calendar_feed(
            schedule_id=schedule.id,
            schedule_name=schedule.spec.name,
            time_zone=schedule.spec.time_zone,
            shifts=[shift.as_shift() for shift in shifts],
            names={shift.person_id: shift.person_name or shift.person_id for shift in shifts},
            now=now,
        )
        return Response(
            body,
            status_code=200,
            media_type="text/calendar; charset=utf-8",
            headers={"Cache-Control": "private, max-age=300"},
        )
