"""Webhook delivery routes: `GET /v1/notifications/deliveries` (scope `notifications:read`) and
`POST /v1/notifications/deliveries/{id}/retry` (scope `notifications:write`).

A delivery is one incident event for one channel, or one message to one person (`channel_id` null, `person_id`
and `contact_type` set); its `id` is the `webhook-id` of all its attempts. The list is newest first and filters
by `status`, `channel_id`, `event_id` and `person_id`. A retry puts the delivery back to
`pending`, due now, with a fresh round of attempts (409 while an attempt is in progress). Another tenant's
delivery is 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import FromPath, QueryParameter
from msgspec import Meta

from mintlog.domain.channels import DELIVERY_STATUSES, Delivery, DeliveryFilter, DeliveryStatus
from mintlog.errors import BadRequest, Conflict, NotFound
from mintlog.http.guards import principal_of, requires
from mintlog.ports.notifications import NotificationStore
from mintlog.roles.api.common.auditing import AuditedWrite, audit_target
from mintlog.roles.api.common.dependencies import Clock, Injected
from mintlog.roles.api.common.pagination import Cursor, Limit, Page, TimeWindow
from mintlog.roles.api.common.resource import operation

__all__ = ["Deliveries", "DeliveryView", "delivery_view"]


class DeliveryView(msgspec.Struct, frozen=True, kw_only=True):
    """A delivery as the API shows it. `next_attempt_at` matters while `pending` or `failed`; `last_error`
    of a `dead` delivery says why it was given up."""

    id: str
    channel_id: str | None
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
    person_id: str | None = None
    """The person notified, for a delivery made by the escalation engine (`channel_id` is then null)."""
    contact_method_id: str | None = None
    contact_type: str | None = None
    """`email`, `webhook` or `chat_webhook`: how the person is reached."""


def delivery_view(delivery: Delivery) -> DeliveryView:
    view = msgspec.convert(delivery, DeliveryView, from_attributes=True)
    contact = delivery.contact
    if contact is not None:
        view = msgspec.structs.replace(
            view, person_id=contact.person_id, contact_method_id=contact.contact_method_id, contact_type=contact.type
        )
    waiting = delivery.status in ("pending", "failed")
    return view if waiting else msgspec.structs.replace(view, next_attempt_at=None)


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


class Deliveries(Controller):
    """`/v1/notifications/deliveries`: the deliveries of the tenant's incident events and person messages."""

    path = "/v1/notifications/deliveries"
    opt = audit_target("delivery")

    @get(
        guards=[requires("notifications:read")],
        summary="List deliveries (to channels and to people), newest first, with their attempts and last error.",
        description=(
            "Query: status (pending, sending, delivered, failed, dead), channel_id, event_id, person_id, limit, cursor."
        ),
        opt=operation(),
    )
    async def list_deliveries(
        self,
        request: Request[Any, Any, Any],
        notifications: Injected[NotificationStore],
        limit: Limit = None,
        cursor: Cursor = None,
        status: Annotated[
            Annotated[str, Meta(extra_json_schema={"enum": list(DELIVERY_STATUSES)})] | None,
            QueryParameter(name="status", required=False),
        ] = None,
        channel_id: Annotated[str | None, QueryParameter(name="channel_id", required=False)] = None,
        event_id: Annotated[str | None, QueryParameter(name="event_id", required=False)] = None,
        person_id: Annotated[str | None, QueryParameter(name="person_id", required=False)] = None,
    ) -> Page[DeliveryView]:
        principal = principal_of(request)
        window = TimeWindow.of(request, limit, cursor)
        query = DeliveryFilter(
            status=_status(status),
            channel_id=channel_id,
            event_id=event_id,
            person_id=person_id,
            before=window.after,
            limit=window.fetch,
        )
        return window.page(await notifications.list_deliveries(principal.tenant_id, query), delivery_view)

    @post(
        "/{delivery_id:str}/retry",
        guards=[requires("notifications:write")],
        status_code=200,
        summary="Send a delivery again now, with a fresh round of attempts (also for delivered or dead ones).",
        opt=operation(audit="delivery.retry", errors=(409,)),
    )
    async def retry_delivery(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        notifications: Injected[NotificationStore],
        clock: Injected[Clock],
        delivery_id: FromPath[str],
    ) -> DeliveryView:
        principal = principal_of(request)
        async with audit.record(target_id=delivery_id) as note:
            before = await notifications.get_delivery(principal.tenant_id, delivery_id)
            retried = await notifications.retry_delivery(principal.tenant_id, delivery_id, now=clock())
            if before is None or retried is None:
                raise NotFound(f"no delivery {delivery_id!r} in this tenant", code="delivery_not_found")
            if retried.status == "sending":
                raise Conflict(
                    f"delivery {delivery_id!r} is being sent right now; retry it once the attempt ends",
                    code="delivery_in_progress",
                )
            note.detail = {"previous_status": before.status, "attempts": before.attempts}
        return delivery_view(retried)
