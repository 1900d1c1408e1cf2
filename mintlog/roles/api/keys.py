"""API key routes: an operator's at `/v1/admin/tenants/{tenant_id}/keys` (scope `admin`), a tenant's own at
`/v1/keys` (scope `keys:write`). Both have the same verbs and answers; the rules are in `key_service`.

Guarantees:
- the secret is in the answer to a create or a rotate, and never again (lists and gets show the prefix);
- the tenant of a self-service request is the key's own: a `tenant_id` in the body is refused (422), and a key
  id of another tenant answers 404 on every verb;
- every write is in the audit log, refused ones included.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post
from litestar.params import FromPath, QueryParameter

from mintlog.domain.tenants import Principal
from mintlog.http.guards import Guard, principal_of
from mintlog.roles.api.auditing import AuditTrail, audit_opt
from mintlog.roles.api.key_service import CreatedKey, KeyService
from mintlog.roles.api.pagination import (
    decode_time_cursor,
    encode_time_cursor,
    parse_limit,
    refuse_unknown_parameters,
)
from mintlog.roles.api.wire import (
    ApiKeyPage,
    ApiKeyView,
    CreatedApiKeyView,
    KeyCreate,
    KeyRotate,
    RotatedApiKeyView,
    api_key_view,
    decode_body,
    read_body,
)

__all__ = ["admin_key_routes", "own_key_routes"]

_create_decoder = msgspec.json.Decoder(KeyCreate)
_rotate_decoder = msgspec.json.Decoder(KeyRotate)
_LIST_PARAMETERS = frozenset({"limit", "cursor"})


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _created_view(created: CreatedKey, now: datetime) -> CreatedApiKeyView:
    view = api_key_view(created.key, now)
    return CreatedApiKeyView(**msgspec.structs.asdict(view), key=created.secret)


def _key_detail(view: ApiKeyView) -> dict[str, Any]:
    return {
        "name": view.name,
        "prefix": view.prefix,
        "scopes": view.scopes,
        "rate_limit": view.rate_limit,
        "expires_at": msgspec.to_builtins(view.expires_at),
    }


def _key_routes(
    service: KeyService,
    trail: AuditTrail,
    *,
    base: str,
    guard: Guard,
    operator: bool,
    clock: Callable[[], datetime],
) -> list[Any]:
    """The five key routes under `base`. For an operator the tenant is the `tenant_id` path parameter and
    nothing limits what it grants; otherwise the tenant is the caller's and the caller is the grantor."""

    def caller(request: Request[Any, Any, Any]) -> tuple[Principal, str, Principal | None]:
        principal = principal_of(request)
        if operator:
            return principal, str(request.path_params["tenant_id"]), None
        return principal, principal.tenant_id, principal

    @post(
        base,
        guards=[guard],
        status_code=201,
        opt=audit_opt("key.create", "api_key"),
        summary="Create an API key; the answer holds its secret, shown this once.",
        description='Body: {"name": …, "scopes": [...], "rate_limit": requests/minute, "expires_at": RFC 3339}.',
    )
    async def create_key(request: Request[Any, Any, Any]) -> CreatedApiKeyView:
        principal, tenant_id, grantor = caller(request)
        async with trail.record(principal, "key.create", target_type="api_key", tenant_id=tenant_id) as note:
            body = decode_body(await read_body(request.stream()), _create_decoder)
            if operator:
                await service.require_tenant(tenant_id, writable=True)
            created = await service.create(tenant_id, body, grantor=grantor)
            view = _created_view(created, clock())
            note.target_id = created.key.id
            note.detail = _key_detail(view)
        return view

    @get(
        base,
        guards=[guard],
        summary="List API keys, oldest first (never their secrets).",
        description="Query: limit (1-200, default 50), cursor (the previous page's next_cursor).",
    )
    async def list_keys(
        request: Request[Any, Any, Any],
        limit: Annotated[str | None, QueryParameter(name="limit", required=False)] = None,
        cursor: Annotated[str | None, QueryParameter(name="cursor", required=False)] = None,
    ) -> ApiKeyPage:
        _, tenant_id, _ = caller(request)
        refuse_unknown_parameters(request.query_params, _LIST_PARAMETERS)
        size = parse_limit(limit)
        after = decode_time_cursor(cursor)
        if operator:
            await service.require_tenant(tenant_id)
        keys = await service.list(tenant_id, after=after, limit=size + 1)
        page = keys[:size]
        next_cursor = encode_time_cursor(page[-1].created_at, page[-1].id) if len(keys) > size else None
        now = clock()
        return ApiKeyPage(items=[api_key_view(key, now) for key in page], next_cursor=next_cursor)

    @get(f"{base}/{{key_id:str}}", guards=[guard], summary="Get an API key (never its secret).")
    async def get_key(request: Request[Any, Any, Any], key_id: FromPath[str]) -> ApiKeyView:
        _, tenant_id, _ = caller(request)
        return api_key_view(await service.get(tenant_id, key_id), clock())

    @delete(
        f"{base}/{{key_id:str}}",
        guards=[guard],
        status_code=200,
        opt=audit_opt("key.revoke", "api_key"),
        summary="Revoke an API key: its next request gets 401. Idempotent; the key stays listed as revoked.",
    )
    async def revoke_key(request: Request[Any, Any, Any], key_id: FromPath[str]) -> ApiKeyView:
        principal, tenant_id, grantor = caller(request)
        async with trail.record(
            principal, "key.revoke", target_type="api_key", tenant_id=tenant_id, target_id=key_id
        ) as note:
            revoked = api_key_view(await service.revoke(tenant_id, key_id, grantor=grantor), clock())
            note.detail = {"prefix": revoked.prefix, "name": revoked.name}
        return revoked

    @post(
        f"{base}/{{key_id:str}}/rotate",
        guards=[guard],
        status_code=201,
        opt=audit_opt("key.rotate", "api_key"),
        summary="Rotate an API key: a new key (secret shown once) replaces it after a grace period.",
        description=(
            'Body (optional): {"grace_seconds": 86400, "expires_at": RFC 3339}. The old key keeps working for '
            "grace_seconds (0 revokes it now); the new one has its name, scopes and rate limit."
        ),
    )
    async def rotate_key(request: Request[Any, Any, Any], key_id: FromPath[str]) -> RotatedApiKeyView:
        principal, tenant_id, grantor = caller(request)
        async with trail.record(
            principal, "key.rotate", target_type="api_key", tenant_id=tenant_id, target_id=key_id
        ) as note:
            body = decode_body(await read_body(request.stream()), _rotate_decoder, empty=KeyRotate())
            retired, created = await service.rotate(tenant_id, key_id, body, grantor=grantor)
            now = clock()
            view = RotatedApiKeyView(
                **msgspec.structs.asdict(_created_view(created, now)), previous=api_key_view(retired, now)
            )
            note.detail = {
                "new_key_id": created.key.id,
                "new_key_prefix": created.key.prefix,
                "grace_seconds": body.grace_seconds,
                "previous_expires_at": msgspec.to_builtins(retired.expires_at),
            }
        return view

    return [create_key, list_keys, get_key, revoke_key, rotate_key]


def admin_key_routes(
    service: KeyService,
    trail: AuditTrail,
    *,
    requires: Callable[[str], Guard],
    clock: Callable[[], datetime] = _utcnow,
) -> list[Any]:
    """`/v1/admin/tenants/{tenant_id}/keys…`, scope `admin`: any tenant, any scope."""
    return _key_routes(
        service,
        trail,
        base="/v1/admin/tenants/{tenant_id:str}/keys",
        guard=requires("admin"),
        operator=True,
        clock=clock,
    )


def own_key_routes(
    service: KeyService,
    trail: AuditTrail,
    *,
    requires: Callable[[str], Guard],
    clock: Callable[[], datetime] = _utcnow,
) -> list[Any]:
    """`/v1/keys…`, scope `keys:write`: the caller's tenant, never more than the caller holds."""
    return _key_routes(service, trail, base="/v1/keys", guard=requires("keys:write"), operator=False, clock=clock)
