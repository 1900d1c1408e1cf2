"""API key routes: an operator's at `/v1/admin/tenants/{tenant_id}/keys` (scope `admin`), a tenant's own at
`/v1/keys` (scope `keys:write`). Both have the same verbs and answers (`Keys`); the rules are in
`key_service`.

Guarantees:
- the secret is in the answer to a create or a rotate, and never again (lists and gets show the prefix);
- the tenant of a self-service request is the key's own: a `tenant_id` in the body is refused (422), and a key
  id of another tenant answers 404 on every verb;
- every write is in the audit log, refused ones included.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.params import FromPath

from mintlog.domain.tenants import Principal
from mintlog.http.guards import principal_of, requires
from mintlog.roles.api.admin.key_service import CreatedKey, KeyService
from mintlog.roles.api.admin.wire import (
    ApiKeyView,
    CreatedApiKeyView,
    KeyCreate,
    KeyRotate,
    RotatedApiKeyView,
    api_key_view,
)
from mintlog.roles.api.common.auditing import AuditedWrite, audit_target
from mintlog.roles.api.common.dependencies import Clock, Injected
from mintlog.roles.api.common.pagination import Cursor, Limit, Page, TimeWindow
from mintlog.roles.api.common.resource import operation
from mintlog.roles.api.common.wire import decode_body, read_body

__all__ = ["Keys", "OperatorKeys", "OwnKeys"]

_create_decoder = msgspec.json.Decoder(KeyCreate)
_rotate_decoder = msgspec.json.Decoder(KeyRotate)


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


class Keys(Controller):
    """The five key routes under `path`. For an operator (`operator`) the tenant is the `tenant_id` path
    parameter and nothing limits what it grants; otherwise the tenant is the caller's and the caller is the
    grantor."""

    opt = audit_target("api_key")
    operator: ClassVar[bool]

    def tenant_and_grantor(self, request: Request[Any, Any, Any], principal: Principal) -> tuple[str, Principal | None]:
        """The tenant whose keys the request manages, and who grants (None: an operator, unlimited)."""
        if self.operator:
            return str(request.path_params["tenant_id"]), None
        return principal.tenant_id, principal

    @post(
        status_code=201,
        summary="Create an API key; the answer holds its secret, shown this once.",
        description='Body: {"name": …, "scopes": [...], "rate_limit": requests/minute, "expires_at": RFC 3339}.',
        opt=operation(audit="key.create", body=KeyCreate, errors=(409, 422)),
    )
    async def create_key(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        keys: Injected[KeyService],
        clock: Injected[Clock],
    ) -> CreatedApiKeyView:
        principal = principal_of(request)
        tenant_id, grantor = self.tenant_and_grantor(request, principal)
        async with audit.record(tenant_id=tenant_id) as note:
            body = decode_body(await read_body(request.stream()), _create_decoder)
            if self.operator:
                await keys.require_tenant(tenant_id, writable=True)
            created = await keys.create(tenant_id, body, grantor=grantor)
            view = _created_view(created, clock())
            note.target_id = created.key.id
            note.detail = _key_detail(view)
        return view

    @get(summary="List API keys, oldest first (never their secrets).", opt=operation())
    async def list_keys(
        self,
        request: Request[Any, Any, Any],
        keys: Injected[KeyService],
        clock: Injected[Clock],
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> Page[ApiKeyView]:
        principal = principal_of(request)
        tenant_id, _ = self.tenant_and_grantor(request, principal)
        window = TimeWindow.of(request, limit, cursor)
        if self.operator:
            await keys.require_tenant(tenant_id)
        found = await keys.list(tenant_id, after=window.after, limit=window.fetch)
        now = clock()
        return window.page(found, lambda key: api_key_view(key, now))

    @get("/{key_id:str}", summary="Get an API key (never its secret).", opt=operation())
    async def get_key(
        self,
        request: Request[Any, Any, Any],
        keys: Injected[KeyService],
        clock: Injected[Clock],
        key_id: FromPath[str],
    ) -> ApiKeyView:
        principal = principal_of(request)
        tenant_id, _ = self.tenant_and_grantor(request, principal)
        return api_key_view(await keys.get(tenant_id, key_id), clock())

    @delete(
        "/{key_id:str}",
        status_code=200,
        summary="Revoke an API key: its next request gets 401. Idempotent; the key stays listed as revoked.",
        opt=operation(audit="key.revoke"),
    )
    async def revoke_key(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        keys: Injected[KeyService],
        clock: Injected[Clock],
        key_id: FromPath[str],
    ) -> ApiKeyView:
        principal = principal_of(request)
        tenant_id, grantor = self.tenant_and_grantor(request, principal)
        async with audit.record(tenant_id=tenant_id, target_id=key_id) as note:
            revoked = api_key_view(await keys.revoke(tenant_id, key_id, grantor=grantor), clock())
            note.detail = {"prefix": revoked.prefix, "name": revoked.name}
        return revoked

    @post(
        "/{key_id:str}/rotate",
        status_code=201,
        summary="Rotate an API key: a new key (secret shown once) replaces it after a grace period.",
        description=(
            'Body (optional): {"grace_seconds": 86400, "expires_at": RFC 3339}. The old key keeps working for '
            "grace_seconds (0 revokes it now); the new one has its name, scopes and rate limit."
        ),
        opt=operation(audit="key.rotate", body=KeyRotate, body_required=False, errors=(409, 422)),
    )
    async def rotate_key(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        keys: Injected[KeyService],
        clock: Injected[Clock],
        key_id: FromPath[str],
    ) -> RotatedApiKeyView:
        principal = principal_of(request)
        tenant_id, grantor = self.tenant_and_grantor(request, principal)
        async with audit.record(tenant_id=tenant_id, target_id=key_id) as note:
            body = decode_body(await read_body(request.stream()), _rotate_decoder, empty=KeyRotate())
            retired, created = await keys.rotate(tenant_id, key_id, body, grantor=grantor)
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


class OperatorKeys(Keys):
    """`/v1/admin/tenants/{tenant_id}/keys…`, scope `admin`: any tenant, any scope."""

    path = "/v1/admin/tenants/{tenant_id:str}/keys"
    guards = [requires("admin")]
    operator = True


class OwnKeys(Keys):
    """`/v1/keys…`, scope `keys:write`: the caller's tenant, never more than the caller holds."""

    path = "/v1/keys"
    guards = [requires("keys:write")]
    operator = False
