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
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from mintlog.auth import Authenticator, presented_key
from mintlog.domain.audit import AuditAction, AuditEntry, AuditResult, audit_result_for_status, new_audit_id
from mintlog.domain.tenants import Principal
from mintlog.errors import Forbidden, MintlogError, ProblemError
from mintlog.http.guards import Admission
from mintlog.ports.metadata import MetadataStore

__all__ = ["AuditNote", "AuditTrail", "AuditedAdmission", "AuditedWrite", "audit_opt", "audit_target"]

logger = logging.getLogger(__name__)

_MAX_ID_LENGTH = 200
AUDIT_ACTION_OPT = "audit_action"
AUDIT_TARGET_OPT = "audit_target"


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


def audit_target(target_type: str) -> dict[str, Any]:
    """The `opt` of a controller whose writes act on objects of `target_type` (`channel`, `api_key`, …)."""
    return {AUDIT_TARGET_OPT: target_type}


def audit_opt(action: AuditAction, target_type: str | None = None) -> dict[str, Any]:
    """The route `opt` of a write recorded as `action` (its target type from the controller's `audit_target`
    unless given): `AuditedWrite.of` reads it, and `AuditedAdmission` records a refused scope check as it."""
    return {AUDIT_ACTION_OPT: action} | ({} if target_type is None else {AUDIT_TARGET_OPT: target_type})


@dataclass(frozen=True, slots=True)
class AuditedWrite:
    """The audit of one write request: its caller, and the action and target type its route declares."""

    trail: AuditTrail
    principal: Principal
    action: AuditAction
    target_type: str

    @classmethod
    def of(cls, handler: BaseRouteHandler, trail: AuditTrail, principal: Principal) -> AuditedWrite:
        """The audit of a request to `handler`; a route without `audit_opt` is a programming error."""
        action: AuditAction | None = handler.opt.get(AUDIT_ACTION_OPT)
        target_type: str | None = handler.opt.get(AUDIT_TARGET_OPT)
        if action is None or target_type is None:
            raise RuntimeError(f"route {handler} asks for its audit but declares no audit action and target")
        return cls(trail, principal, action, target_type)

    def record(
        self, *, tenant_id: str | None = None, target_id: str | None = None
    ) -> AbstractAsyncContextManager[AuditNote]:
        """`AuditTrail.record` of this write: on exit, `ok` or the refusal the block raised (then re-raised).
        The tenant is the caller's unless given."""
        return self.trail.record(
            self.principal,
            self.action,
            target_type=self.target_type,
            tenant_id=self.principal.tenant_id if tenant_id is None else tenant_id,
            target_id=target_id,
        )


class AuditedAdmission:
    """Admits like `inner`; on a route carrying `audit_opt`, a caller whose key is valid but lacks the scope is
    recorded as `denied` before it gets its 403.

    The entry's tenant is the caller's own (a refused caller learns nothing about the tenant it named); the
    target is the `key_id` or `tenant_id` path parameter, when there is one.
    """

    def __init__(self, inner: Admission, authenticator: Authenticator, trail: AuditTrail) -> None:
        self._inner = inner
        self._authenticator = authenticator
        self._trail = trail

    async def admit(
        self, connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler, scope: str
    ) -> None:
        try:
            await self._inner.admit(connection, handler, scope)
        except Forbidden as exc:
            action: AuditAction | None = handler.opt.get(AUDIT_ACTION_OPT)
            if action is not None:
                await self._record_refusal(connection, handler, action, exc)
            raise

    async def _record_refusal(
        self,
        connection: ASGIConnection[Any, Any, Any, Any],
        handler: BaseRouteHandler,
        action: AuditAction,
        exc: Forbidden,
    ) -> None:
        principal = connection.state.get("principal")
        if not isinstance(principal, Principal):
            # The guard refused before storing the caller. Its key was valid a moment ago, so this is a cache
            # hit; should it fail now (revoked meanwhile, database down), the caller still gets its 403.
            try:
                principal = await self._authenticator.authenticate(presented_key(connection.headers))
            except MintlogError:
                return
        params = connection.path_params
        target = params.get("key_id", params.get("tenant_id"))
        # Refused before the NUL check of its parameters: keep the entry (PostgreSQL text holds no NUL).
        target_id = None if target is None else str(target).replace("\x00", "\N{REPLACEMENT CHARACTER}")
        note = AuditNote(tenant_id=principal.tenant_id, target_id=target_id)
        await self._trail.append_refusal(
            principal, action, target_type=handler.opt[AUDIT_TARGET_OPT], note=note, exc=exc
        )
