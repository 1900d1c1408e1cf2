"""Webhook delivery routes: `GET /v1/notifications/deliveries` (scope `notifications:read`) and
`POST /v1/notifications/deliveries/{id}/retry` (scope `notifications:write`).

A delivery is one incident event for one channel; its `id` is the `webhook-id` of all its attempts. The list
is newest first and filters by `status`, `channel_id` and `event_id`. A retry puts the delivery back to
`pending`, due now, with a fresh round of attempts (409 while an attempt is in progress). Another tenant's
delivery is 404.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.params import FromPath, QueryParameter

from mintlog.domain.channels import DELIVERY_STATUSES, Delivery, DeliveryFilter, DeliveryStatus
from mintlog.errors import BadRequest, Conflict, NotFound
from mintlog.http.guards import Guard, principal_of
from mintlog.ports.notifications import NotificationStore
from mintlog.roles.api.auditing import AuditTrail, audit_opt
from mintlog.roles.api.pagination import (
    decode_time_cursor,
    encode_time_cursor,
    parse_limit,
    refuse_unknown_parameters,
)

__all__ = ["DeliveryPage", "DeliveryView", "delivery_routes", "delivery_view"]

_BASE = "/v1/notifications/deliveries"
_LIST_PARAMETERS = frozenset({"limit", "cursor", "status", "channel_id", "event_id"})


class DeliveryView(msgspec.Struct, frozen=True, kw_only=True):
    """A delivery as the API shows it. `next_attempt_at` matters while `pending` or `failed`; `last_error`
    of a `dead` delivery says why it was given up."""

    id: str
    channel_id: str
    event_id: str
    event_type: str
    incident_id: str | None
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    last_duration_ms: int | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of deliveries, newest first."""

    items: list[DeliveryView]
    next_cursor: str | None


def _utcnow() -> datetime:
    return datetime.now(UTC)


def delivery_view(delivery: Delivery) -> DeliveryView:
    waiting = delivery.status in ("pending", "failed")
    return DeliveryView(
        id=delivery.id,
        channel_id=delivery.channel_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        incident_id=delivery.incident_id,
        status=delivery.status,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at if waiting else None,
        last_attempt_at=delivery.last_attempt_at,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        last_duration_ms=delivery.last_duration_ms,
        created_at=delivery.created_at,
        delivered_at=delivery.delivered_at,
    )


def _status(value: str | None) -> DeliveryStatus | None:
    if value is None:
        return None
    if value not in DELIVERY_STATUSES:
        raise BadRequest(
            f"`status` must be one of {', '.join(DELIVERY_STATUSES)}, got {value!r}",
            code="invalid_parameter",
            extra={"parameter": "status"},
        )
    return value


def delivery_routes(
    store: NotificationStore,
    trail: AuditTrail,
    *,
    requires: Callable[[str], Guard],
    clock: Callable[[], datetime] = _utcnow,
) -> list[Any]:
    """The delivery list and the manual retry."""

    @get(
        _BASE,
        guards=[requires("notifications:read")],
        summary="List webhook deliveries, newest first, with their attempts and last error.",
        description="Query: status (pending, sending, delivered, failed, dead), channel_id, event_id, limit, cursor.",
    )
    async def list_deliveries(
        request: Request[Any, Any, Any],
        limit: Annotated[str | None, QueryParameter(name="limit", required=False)] = None,
        cursor: Annotated[str | None, QueryParameter(name="cursor", required=False)] = None,
        status: Annotated[str | None, QueryParameter(name="status", required=False)] = None,
        channel_id: Annotated[str | None, QueryParameter(name="channel_id", required=False)] = None,
        event_id: Annotated[str | None, QueryParameter(name="event_id", required=False)] = None,
    ) -> DeliveryPage:
        principal = principal_of(request)
        refuse_unknown_parameters(request.query_params, _LIST_PARAMETERS)
        size = parse_limit(limit)
        query = DeliveryFilter(
            status=_status(status),
            channel_id=channel_id,
            event_id=event_id,
            before=decode_time_cursor(cursor),
            limit=size + 1,
        )
        deliveries = await store.list_deliveries(principal.tenant_id, query)
        page = deliveries[:size]
        next_cursor = encode_time_cursor(page[-1].created_at, page[-1].id) if len(deliveries) > size else None
        return DeliveryPage(items=[delivery_view(delivery) for delivery in page], next_cursor=next_cursor)

    @post(
        f"{_BASE}/{{delivery_id:str}}/retry",
        guards=[requires("notifications:write")],
        status_code=200,
        opt=audit_opt("delivery.retry", "delivery"),
        summary="Send a delivery again now, with a fresh round of attempts (also for delivered or dead ones).",
    )
    async def retry_delivery(request: Request[Any, Any, Any], delivery_id: FromPath[str]) -> DeliveryView:
        principal = principal_of(request)
        async with trail.record(
            principal, "delivery.retry", target_type="delivery", tenant_id=principal.tenant_id, target_id=delivery_id
        ) as note:
            before = await store.get_delivery(principal.tenant_id, delivery_id)
            retried = await store.retry_delivery(principal.tenant_id, delivery_id, now=clock())
            if before is None or retried is None:
                raise NotFound(f"no delivery {delivery_id!r} in this tenant", code="delivery_not_found")
            if retried.status == "sending":
                raise Conflict(
                    f"delivery {delivery_id!r} is being sent right now; retry it once the attempt ends",
                    code="delivery_in_progress",
                )
            note.detail = {"previous_status": before.status, "attempts": before.attempts}
        return delivery_view(retried)

    return [list_deliveries, retry_delivery]
