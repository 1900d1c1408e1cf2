"""The skeleton of an API resource, written once: how a route is declared (`operation`), the 404 of an id
that names nothing of the caller's tenant (`Resource.found`), and the pages of a list
(`mintlog.roles.api.common.pagination.TimeWindow`).

A resource is a Litestar `Controller` at its collection's path. Each route names its scope with a guard
(`requires("alerts:write")`), and declares in its `opt` (`operation(...)`) the audit action of a write
(the controller's `opt` names the target type, `audit_target(...)`) and what the OpenAPI document cannot read
from the signature: the body it decodes, the bytes it answers, the errors it can give. An update is one
handler for `PUT` and `PATCH` (`UPDATE_METHODS`): both merge the members given into the object.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar, Unpack

from litestar import Controller
from litestar.enums import HttpMethod

from mintlog.domain.audit import AuditAction
from mintlog.errors import NotFound
from mintlog.http.openapi import Documentation, documented
from mintlog.roles.api.common.auditing import audit_opt

__all__ = ["UPDATE_METHODS", "Resource", "operation"]

UPDATE_METHODS = [HttpMethod.PUT, HttpMethod.PATCH]
"""The methods of an update: the members given replace the object's, the others are kept."""

_T = TypeVar("_T")


def operation(*, audit: AuditAction | None = None, **documentation: Unpack[Documentation]) -> dict[str, Any]:
    """The route `opt` of an API operation: the audit action of a write (`AuditedWrite`, and a refused scope
    check recorded as it) and its documentation (`mintlog.http.openapi.documented`)."""
    opt: dict[str, Any] = dict(documented(**documentation))
    return opt | audit_opt(audit) if audit is not None else opt


class Resource(Controller):
    """A collection of the caller's tenant's objects: an id that names none of them (another tenant's
    included) is a 404 `not_found_code` saying `no {noun} {id!r}{where}`."""

    noun: ClassVar[str]
    not_found_code: ClassVar[str]
    where: ClassVar[str] = ""

    @classmethod
    def not_found(cls, object_id: str) -> NotFound:
        return NotFound(f"no {cls.noun} {object_id!r}{cls.where}", code=cls.not_found_code)

    @classmethod
    def found(cls, value: _T | None, object_id: str) -> _T:
        """`value`, or the 404 of `object_id` when it is None."""
        if value is None:
            raise cls.not_found(object_id)
        return value
