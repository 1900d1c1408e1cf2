"""`/v1/admin/tenants`: the platform operator's tenant management (scope `admin`).

Guarantees:
- tenant ids match `[a-z0-9-]{1,40}` (they end up in NATS subjects and index names), else 422;
- suspending or deleting a tenant stops every one of its keys before the answer is sent; reinstating it
  lets them work again at once (the auth cache entries of its keys are dropped either way);
- a change of `retention_days`, `retention_basis` or `time_zone` reaches ingest's event-time check at once
  in this process (and in every process sharing a Redis cache), within the auth cache TTL elsewhere;
- a deleted tenant stays suspended and read-only; its data is kept until the retention job removes it;
- an operator cannot suspend or delete its own tenant (it would lock itself out): 409 `own_tenant`;
- every write is in the audit log, refused ones included.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, delete, get, patch, post
from litestar.params import FromPath

from mintlog.auth import Authenticator
from mintlog.domain.tenants import Tenant, TenantChanges, is_valid_tenant_id, tenant_id_from_name
from mintlog.errors import Conflict
from mintlog.http.guards import principal_of, requires
from mintlog.ports.metadata import MetadataStore
from mintlog.roles.api.admin.wire import TenantCreate, TenantPatch, TenantView, tenant_view
from mintlog.roles.api.common.auditing import AuditedWrite, audit_target
from mintlog.roles.api.common.dependencies import Clock, Injected
from mintlog.roles.api.common.pagination import (
    Cursor,
    Limit,
    Page,
    decode_cursor,
    encode_cursor,
    parse_limit,
    refuse_undeclared_parameters,
)
from mintlog.roles.api.common.resource import Resource, operation
from mintlog.roles.api.common.wire import check_time_zone, decode_body, invalid_field, read_body

__all__ = ["Tenants"]

_create_decoder = msgspec.json.Decoder(TenantCreate)
_patch_decoder = msgspec.json.Decoder(TenantPatch)


def _refuse_own_tenant(caller_tenant_id: str, tenant_id: str, verb: str) -> None:
    if caller_tenant_id == tenant_id:
        raise Conflict(
            f"an API key cannot {verb} its own tenant {tenant_id!r}: use a key of another tenant",
            code="own_tenant",
        )


class Tenants(Resource):
    """`/v1/admin/tenants`, scope `admin`: every tenant of the platform."""

    path = "/v1/admin/tenants"
    guards = [requires("admin")]
    opt = audit_target("tenant")
    noun = "tenant"
    not_found_code = "tenant_not_found"

    @post(
        status_code=201,
        summary="Create a tenant.",
        description=(
            'Body: {"name": …, "plan": "free", "retention_days": 30, "retention_basis": "event_time", "id": optional}. '
            "Without `id`, the id is derived from the name. 409 if the id exists (deleted tenants included)."
        ),
        opt=operation(audit="tenant.create", body=TenantCreate, errors=(409, 422)),
    )
    async def create_tenant(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        metadata: Injected[MetadataStore],
        clock: Injected[Clock],
    ) -> TenantView:
        async with audit.record() as note:
            body = decode_body(await read_body(request.stream()), _create_decoder)
            if not body.name.strip():
                raise invalid_field("name", "`name` must not be blank")
            tenant_id = body.id if body.id is not None else tenant_id_from_name(body.name)
            if not is_valid_tenant_id(tenant_id):
                raise invalid_field("id", f"`id` must match [a-z0-9-]{{1,40}}, got {tenant_id!r}")
            note.tenant_id = note.target_id = tenant_id
            note.detail = {
                "name": body.name,
                "plan": body.plan,
                "retention_days": body.retention_days,
                "retention_basis": body.retention_basis,
            }
            check_time_zone(body.time_zone)
            tenant = await metadata.create_tenant(
                Tenant(
                    id=tenant_id,
                    name=body.name,
                    plan=body.plan,
                    retention_days=body.retention_days,
                    retention_basis=body.retention_basis,
                    archive_retention_days=body.archive_retention_days,
                    time_zone=body.time_zone,
                    created_at=clock(),
                )
            )
        return tenant_view(tenant)

    @get(summary="List tenants, ordered by id.", opt=operation())
    async def list_tenants(
        self,
        request: Request[Any, Any, Any],
        metadata: Injected[MetadataStore],
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> Page[TenantView]:
        refuse_undeclared_parameters(request)
        size = parse_limit(limit)
        tenants = await metadata.list_tenants(after=decode_cursor(cursor), limit=size + 1)
        page = tenants[:size]
        next_cursor = encode_cursor(page[-1].id) if len(tenants) > size else None
        return Page(items=[tenant_view(tenant) for tenant in page], next_cursor=next_cursor)

    @get("/{tenant_id:str}", summary="Get a tenant.", opt=operation())
    async def get_tenant(self, metadata: Injected[MetadataStore], tenant_id: FromPath[str]) -> TenantView:
        return tenant_view(self.found(await metadata.get_tenant(tenant_id), tenant_id))

    @patch(
        "/{tenant_id:str}",
        status_code=200,
        summary="Change a tenant's plan, retention or suspension.",
        description=(
            'Body: any of {"plan", "retention_days", "retention_basis", "archive_retention_days", "time_zone", '
            '"suspended"} (retention_basis "event_time" or "received_at"; archive_retention_days null: the '
            "default; time_zone an IANA name for the tenant's zone-less log times). Suspending stops every key of "
            "the tenant at once; reinstating lets them work again at once. A deleted tenant cannot change (409)."
        ),
        opt=operation(audit="tenant.update", body=TenantPatch, errors=(409, 422)),
    )
    async def patch_tenant(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        metadata: Injected[MetadataStore],
        authenticator: Injected[Authenticator],
        clock: Injected[Clock],
        tenant_id: FromPath[str],
    ) -> TenantView:
        principal = principal_of(request)
        async with audit.record(tenant_id=tenant_id, target_id=tenant_id) as note:
            body = decode_body(await read_body(request.stream()), _patch_decoder)
            changes = {
                name: value for name, value in msgspec.structs.asdict(body).items() if value is not msgspec.UNSET
            }
            if not changes:
                raise invalid_field(
                    "",
                    "the body changes nothing; send plan, retention_days, retention_basis, archive_retention_days, "
                    "time_zone or suspended",
                )
            note.detail = {"changes": changes}
            if isinstance(body.time_zone, str):
                check_time_zone(body.time_zone)
            if body.suspended is True:
                _refuse_own_tenant(principal.tenant_id, tenant_id, "suspend")
            tenant = self.found(
                await metadata.update_tenant(tenant_id, msgspec.convert(changes, TenantChanges), updated_at=clock()),
                tenant_id,
            )
            # Cached principals carry the suspension and what ingest checks event times against.
            if changes.keys() & {"suspended", "retention_days", "retention_basis", "time_zone"}:
                await authenticator.invalidate_tenant(tenant_id)
        return tenant_view(tenant)

    @delete(
        "/{tenant_id:str}",
        status_code=202,
        summary="Delete a tenant: suspend it at once; its data goes with the retention job.",
        description=(
            "Every key of the tenant stops working before the answer. The tenant's events, keys and settings are "
            "kept until the retention job deletes them; the tenant stays visible with deleted_at set. Idempotent."
        ),
        opt=operation(audit="tenant.delete", errors=(409,)),
    )
    async def delete_tenant(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        metadata: Injected[MetadataStore],
        authenticator: Injected[Authenticator],
        clock: Injected[Clock],
        tenant_id: FromPath[str],
    ) -> TenantView:
        principal = principal_of(request)
        async with audit.record(tenant_id=tenant_id, target_id=tenant_id):
            _refuse_own_tenant(principal.tenant_id, tenant_id, "delete")
            now = clock()
            tenant = self.found(
                await metadata.update_tenant(tenant_id, TenantChanges(suspended=True, deleted_at=now), updated_at=now),
                tenant_id,
            )
            await authenticator.invalidate_tenant(tenant_id)
        return tenant_view(tenant)
