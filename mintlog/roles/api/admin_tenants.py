"""`/v1/admin/tenants`: the platform operator's tenant management (scope `admin`).

Guarantees:
- tenant ids match `[a-z0-9-]{1,40}` (they end up in NATS subjects and index names), else 422;
- suspending or deleting a tenant stops every one of its keys before the answer is sent; reinstating it
  lets them work again at once (the auth cache entries of its keys are dropped either way);
- a deleted tenant stays suspended and read-only; its data is kept until the retention job removes it;
- an operator cannot suspend or delete its own tenant (it would lock itself out): 409 `own_tenant`;
- every write is in the audit log, refused ones included.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, patch, post
from litestar.params import FromPath, QueryParameter

from mintlog.auth import Authenticator
from mintlog.domain.tenants import Tenant, TenantChanges, is_valid_tenant_id, tenant_id_from_name
from mintlog.errors import Conflict, NotFound
from mintlog.http.guards import Guard, principal_of
from mintlog.ports.metadata import MetadataStore
from mintlog.roles.api.auditing import AuditTrail, audit_opt
from mintlog.roles.api.extraction_rules import check_time_zone
from mintlog.roles.api.pagination import (
    decode_cursor,
    encode_cursor,
    parse_limit,
    refuse_unknown_parameters,
)
from mintlog.roles.api.wire import (
    TenantCreate,
    TenantPage,
    TenantPatch,
    TenantView,
    decode_body,
    invalid_field,
    read_body,
    tenant_view,
)

__all__ = ["admin_tenant_routes"]

_create_decoder = msgspec.json.Decoder(TenantCreate)
_patch_decoder = msgspec.json.Decoder(TenantPatch)
_LIST_PARAMETERS = frozenset({"limit", "cursor"})


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _tenant_not_found(tenant_id: str) -> NotFound:
    return NotFound(f"no tenant {tenant_id!r}", code="tenant_not_found")


def _refuse_own_tenant(caller_tenant_id: str, tenant_id: str, verb: str) -> None:
    if caller_tenant_id == tenant_id:
        raise Conflict(
            f"an API key cannot {verb} its own tenant {tenant_id!r}: use a key of another tenant",
            code="own_tenant",
        )


def admin_tenant_routes(
    metadata: MetadataStore,
    authenticator: Authenticator,
    trail: AuditTrail,
    *,
    requires: Callable[[str], Guard],
    clock: Callable[[], datetime] = _utcnow,
) -> list[Any]:
    """The tenant routes, bound to the metadata store. `requires` should record refused writes
    (`audited_requires`)."""
    admin = requires("admin")

    @post(
        "/v1/admin/tenants",
        guards=[admin],
        status_code=201,
        opt=audit_opt("tenant.create", "tenant"),
        summary="Create a tenant.",
        description=(
            'Body: {"name": …, "plan": "free", "retention_days": 30, "id": optional}. Without `id`, the id is '
            "derived from the name. 409 if the id exists (deleted tenants included)."
        ),
    )
    async def create_tenant(request: Request[Any, Any, Any]) -> TenantView:
        principal = principal_of(request)
        async with trail.record(
            principal, "tenant.create", target_type="tenant", tenant_id=principal.tenant_id
        ) as note:
            body = decode_body(await read_body(request.stream()), _create_decoder)
            if not body.name.strip():
                raise invalid_field("name", "`name` must not be blank")
            tenant_id = body.id if body.id is not None else tenant_id_from_name(body.name)
            if not is_valid_tenant_id(tenant_id):
                raise invalid_field("id", f"`id` must match [a-z0-9-]{{1,40}}, got {tenant_id!r}")
            note.tenant_id = note.target_id = tenant_id
            note.detail = {"name": body.name, "plan": body.plan, "retention_days": body.retention_days}
            check_time_zone(body.time_zone)
            tenant = await metadata.create_tenant(
                Tenant(
                    id=tenant_id,
                    name=body.name,
                    plan=body.plan,
                    retention_days=body.retention_days,
                    archive_retention_days=body.archive_retention_days,
                    time_zone=body.time_zone,
                    created_at=clock(),
                )
            )
        return tenant_view(tenant)

    @get(
        "/v1/admin/tenants",
        guards=[admin],
        summary="List tenants, ordered by id.",
        description="Query: limit (1-200, default 50), cursor (the previous page's next_cursor).",
    )
    async def list_tenants(
        request: Request[Any, Any, Any],
        limit: Annotated[str | None, QueryParameter(name="limit", required=False)] = None,
        cursor: Annotated[str | None, QueryParameter(name="cursor", required=False)] = None,
    ) -> TenantPage:
        refuse_unknown_parameters(request.query_params, _LIST_PARAMETERS)
        size = parse_limit(limit)
        tenants = await metadata.list_tenants(after=decode_cursor(cursor), limit=size + 1)
        page = tenants[:size]
        next_cursor = encode_cursor(page[-1].id) if len(tenants) > size else None
        return TenantPage(items=[tenant_view(tenant) for tenant in page], next_cursor=next_cursor)

    @get("/v1/admin/tenants/{tenant_id:str}", guards=[admin], summary="Get a tenant.")
    async def get_tenant(tenant_id: FromPath[str]) -> TenantView:
        tenant = await metadata.get_tenant(tenant_id)
        if tenant is None:
            raise _tenant_not_found(tenant_id)
        return tenant_view(tenant)

    @patch(
        "/v1/admin/tenants/{tenant_id:str}",
        guards=[admin],
        status_code=200,
        opt=audit_opt("tenant.update", "tenant"),
        summary="Change a tenant's plan, retention or suspension.",
        description=(
            'Body: any of {"plan", "retention_days", "archive_retention_days", "time_zone", "suspended"} '
            "(archive_retention_days null: the default; time_zone an IANA name for the tenant's zone-less log "
            "times). Suspending stops every key of the tenant at "
            "once; reinstating lets them work again at once. A deleted tenant cannot change (409)."
        ),
    )
    async def patch_tenant(request: Request[Any, Any, Any], tenant_id: FromPath[str]) -> TenantView:
        principal = principal_of(request)
        async with trail.record(
            principal, "tenant.update", target_type="tenant", tenant_id=tenant_id, target_id=tenant_id
        ) as note:
            body = decode_body(await read_body(request.stream()), _patch_decoder)
            changes = {
                name: value for name, value in msgspec.structs.asdict(body).items() if value is not msgspec.UNSET
            }
            if not changes:
                raise invalid_field(
                    "",
                    "the body changes nothing; send plan, retention_days, archive_retention_days, time_zone or "
                    "suspended",
                )
            note.detail = {"changes": changes}
            if isinstance(body.time_zone, str):
                check_time_zone(body.time_zone)
            if body.suspended is True:
                _refuse_own_tenant(principal.tenant_id, tenant_id, "suspend")
            tenant = await metadata.update_tenant(
                tenant_id, msgspec.convert(changes, TenantChanges), updated_at=clock()
            )
            if tenant is None:
                raise _tenant_not_found(tenant_id)
            if "suspended" in changes:
                await authenticator.invalidate_tenant(tenant_id)
        return tenant_view(tenant)

    @delete(
        "/v1/admin/tenants/{tenant_id:str}",
        guards=[admin],
        status_code=202,
        opt=audit_opt("tenant.delete", "tenant"),
        summary="Delete a tenant: suspend it at once; its data goes with the retention job.",
        description=(
            "Every key of the tenant stops working before the answer. The tenant's events, keys and settings are "
            "kept until the retention job deletes them; the tenant stays visible with deleted_at set. Idempotent."
        ),
    )
    async def delete_tenant(request: Request[Any, Any, Any], tenant_id: FromPath[str]) -> TenantView:
        principal = principal_of(request)
        async with trail.record(
            principal, "tenant.delete", target_type="tenant", tenant_id=tenant_id, target_id=tenant_id
        ):
            _refuse_own_tenant(principal.tenant_id, tenant_id, "delete")
            now = clock()
            tenant = await metadata.update_tenant(
                tenant_id, TenantChanges(suspended=True, deleted_at=now), updated_at=now
            )
            if tenant is None:
                raise _tenant_not_found(tenant_id)
            await authenticator.invalidate_tenant(tenant_id)
        return tenant_view(tenant)

    return [create_tenant, list_tenants, get_tenant, patch_tenant, delete_tenant]
