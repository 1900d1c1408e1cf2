"""Recording management writes in the audit log, whether they succeed or are refused.

Guarantees:
- every management write by an authenticated caller appends exactly one entry: `ok` when it succeeded,
  `denied` when refused with 403 (by the scope guard or by a scope check in the handler), `error` for any other
  refusal or failure, with the problem's `status` and `code` in `detail`;
- unauthenticated requests (401, or 400 for a key in the query string) are not recorded: there is no actor;
- an entry never holds a secret, only key ids and display prefixes;
- the entry is appended after the write commits, in its own transaction. If that append fails, a successful
  write answers 503 (the change stands; the failure is logged), and a refused one keeps its own answer.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from mintlog.auth import Authenticator
from mintlog.domain.audit import AuditAction, AuditEntry, AuditResult, audit_result_for_status, new_audit_id
from mintlog.domain.tenants import Principal
from mintlog.errors import Forbidden, MintlogError, ProblemError
from mintlog.http.guards import Guard
from mintlog.ports.metadata import MetadataStore

__all__ = ["AuditNote", "AuditTrail", "audit_opt", "audited_requires"]

logger = logging.getLogger(__name__)

_MAX_ID_LENGTH = 200
_AUDIT_ACTION = "audit_action"
_AUDIT_TARGET = "audit_target"


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class AuditNote:
    """What a handler tells the trail about its write while it runs: the tenant and object it acted on (once
    known) and what changed."""

    tenant_id: str
    target_id: str | None
    detail: dict[str, Any] = field(default_factory=lambda: {})


class AuditTrail:
    """Appends audit entries through the metadata store."""

    def __init__(self, metadata: MetadataStore, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self._metadata = metadata
        self._clock = clock

    async def append(
        self,
        principal: Principal,
        action: AuditAction,
        *,
        target_type: str,
        note: AuditNote,
        result: AuditResult,
    ) -> None:
        """Append one entry now; raises `DatabaseUnavailable` when it cannot."""
        await self._metadata.append_audit(
            AuditEntry(
                id=new_audit_id(),
                occurred_at=self._clock(),
                tenant_id=note.tenant_id[:_MAX_ID_LENGTH],
                actor_tenant_id=principal.tenant_id,
                actor_key_id=principal.key_id,
                actor_key_prefix=principal.key_prefix,
                action=action,
                target_type=target_type,
                target_id=None if note.target_id is None else note.target_id[:_MAX_ID_LENGTH],
                result=result,
                detail=note.detail,
            )
        )

    async def append_refusal(
        self, principal: Principal, action: AuditAction, *, target_type: str, note: AuditNote, exc: Exception
    ) -> None:
        """Append the entry of a refused or failed write; a failure to do so is logged, never raised, so the
        caller still gets the answer to its request."""
        status = exc.status if isinstance(exc, ProblemError) else 503 if isinstance(exc, MintlogError) else 500
        code = exc.code if isinstance(exc, ProblemError) else type(exc).__name__
        note.detail = {**note.detail, "status": status, "code": code}
        try:
            await self.append(
                principal, action, target_type=target_type, note=note, result=audit_result_for_status(status)
            )
        except Exception:
            logger.exception("could not append the audit entry of a refused %s by key %s", action, principal.key_prefix)

    @asynccontextmanager
    async def record(
        self,
        principal: Principal,
        action: AuditAction,
        *,
        target_type: str,
        tenant_id: str,
        target_id: str | None = None,
    ) -> AsyncGenerator[AuditNote]:
        """Run a write inside; on exit append `ok`, or the refusal the block raised (then re-raised)."""
        note = AuditNote(tenant_id=tenant_id, target_id=target_id)
        try:
            yield note
        except Exception as exc:
            await self.append_refusal(principal, action, target_type=target_type, note=note, exc=exc)
            raise
        try:
            await self.append(principal, action, target_type=target_type, note=note, result="ok")
        except MintlogError:
            logger.exception("%s by key %s succeeded but its audit entry was not written", action, principal.key_prefix)
            raise


def audit_opt(action: AuditAction, target_type: str) -> dict[str, Any]:
    """The route `opt` that makes `audited_requires` guards record a refused scope check as `action`."""
    return {_AUDIT_ACTION: action, _AUDIT_TARGET: target_type}


def audited_requires(
    requires: Callable[[str], Guard], authenticator: Authenticator, trail: AuditTrail
) -> Callable[[str], Guard]:
    """Wraps the `requires(scope)` guard factory so that, on a route carrying `audit_opt`, a caller whose key
    is valid but lacks the scope is recorded as `denied` before it gets its 403.

    The entry's tenant is the caller's own (a refused caller learns nothing about the tenant it named); the
    target is the `key_id` or `tenant_id` path parameter, when there is one.
    """

    async def record_refusal(
        connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler, action: AuditAction, exc: Forbidden
    ) -> None:
        principal = connection.state.get("principal")
        if not isinstance(principal, Principal):
            # The guard refused before storing the caller. Its key was valid a moment ago, so this is a cache
            # hit; should it fail now (revoked meanwhile, database down), the caller still gets its 403.
            try:
                principal = await authenticator.authenticate(connection.headers.get("x-api-key"))
            except MintlogError:
                return
        params = connection.path_params
        target = params.get("key_id", params.get("tenant_id"))
        note = AuditNote(tenant_id=principal.tenant_id, target_id=None if target is None else str(target))
        await trail.append_refusal(principal, action, target_type=handler.opt[_AUDIT_TARGET], note=note, exc=exc)

    def audited(scope: str) -> Guard:
        inner = requires(scope)

        async def guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
            try:
                await inner(connection, handler)
            except Forbidden as exc:
                action: AuditAction | None = handler.opt.get(_AUDIT_ACTION)
                if action is not None:
                    await record_refusal(connection, handler, action, exc)
                raise

        return guard

    return audited
