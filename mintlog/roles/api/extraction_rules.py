"""How a tenant's plain text logs are read: `/v1/logs/parsing` (its time zone and what the pipeline detects)
and `/v1/logs/extraction-rules` (its extraction rules). docs/ingest.md is the reference.

Scopes: reading needs `search:logs`; writing needs `parsing:write`.

Guarantees:
- a rule is compiled and checked whole before anything is stored: a pattern that does not compile, has no
  named group, names a group that is not a field key, uses an unknown grok pattern or backtracks
  catastrophically, or a `timestamp_format` strptime cannot read, is a 422 whose `field` names the member;
- a time zone is an IANA name this process knows (`Europe/Berlin`, `UTC`), else a 422 on `time_zone`;
- a tenant has at most `MINTLOG_PARSING__MAX_RULES_PER_TENANT` rules (409 `too_many_rules`);
- `PUT` and `PATCH` merge: the members given replace the rule's, and the result is checked like a create;
- another tenant's rule answers 404 on every verb;
- the pipeline applies a change within `MINTLOG_PARSING__TENANT_CONFIG_TTL_SECONDS` (10 s) to events it
  normalizes from then on; events already stored keep what they were given;
- every write is in the audit log, refused ones included.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from litestar import Request, delete, get, patch, post, put
from litestar.params import FromPath, QueryParameter

from mintlog.domain.extraction_rules import (
    ExtractionRule,
    ExtractionRuleSpec,
    ExtractionRuleUpdate,
    merge_update,
    new_extraction_rule_id,
)
from mintlog.domain.tenants import TenantChanges
from mintlog.errors import NotFound
from mintlog.http.guards import Guard, principal_of
from mintlog.parsing.rules import RuleError, compile_rule
from mintlog.ports.metadata import MetadataStore
from mintlog.ports.parsing import ExtractionRuleStore
from mintlog.roles.api.auditing import AuditTrail, audit_opt
from mintlog.roles.api.pagination import decode_time_cursor, parse_limit, refuse_unknown_parameters, time_page
from mintlog.roles.api.wire import TimeZoneName, decode_body, invalid_field, read_body
from mintlog.settings import ParsingSettings

__all__ = [
    "ExtractionRulePage",
    "ExtractionRuleView",
    "ParsingPatch",
    "ParsingView",
    "check_time_zone",
    "extraction_rule_routes",
]

_BASE = "/v1/logs/extraction-rules"
_PARSING = "/v1/logs/parsing"
_LIST_PARAMETERS = frozenset({"limit", "cursor"})


class ExtractionRuleView(ExtractionRuleSpec, frozen=True, kw_only=True):
    """A rule as the API shows it: every member with its effective value, its id and times."""

    id: str
    tenant_id: str
    created_at: datetime
    updated_at: datetime


class ExtractionRulePage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of rules in the order they apply (oldest first); pass `next_cursor` as `cursor` for the next."""

    items: list[ExtractionRuleView]
    next_cursor: str | None


class ParsingView(msgspec.Struct, frozen=True, kw_only=True):
    """How the tenant's plain text is read."""

    time_zone: str
    """The zone of wall times written without an offset."""
    detect: bool
    """Whether the built-in level and timestamp detection runs (`MINTLOG_PARSING__DETECT`)."""
    max_rules: int
    """Extraction rules the tenant may have."""
    staleness_seconds: float
    """Longest a change takes to reach the pipeline."""


class ParsingPatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`PATCH /v1/logs/parsing`."""

    time_zone: TimeZoneName


_create_decoder = msgspec.json.Decoder(ExtractionRuleSpec)
_update_decoder = msgspec.json.Decoder(ExtractionRuleUpdate)
_parsing_decoder = msgspec.json.Decoder(ParsingPatch)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def check_time_zone(name: str) -> str:
    """`name` when it is an IANA zone this process knows, else a 422 on `time_zone`."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise invalid_field(
            "time_zone", f"`time_zone` must be an IANA time zone such as Europe/Berlin or UTC, got {name!r}"
        ) from None
    return name


def _checked(spec: ExtractionRuleSpec) -> ExtractionRuleSpec:
    try:
        compile_rule(spec)
    except RuleError as exc:
        raise invalid_field(exc.field, exc.detail) from None
    return spec


def _view(rule: ExtractionRule) -> ExtractionRuleView:
    return ExtractionRuleView(
        **msgspec.structs.asdict(rule.spec),
        id=rule.id,
        tenant_id=rule.tenant_id,
        created_at=rule.created_at,
        updated_at=rule.updated_at,
    )


def _not_found(rule_id: str) -> NotFound:
    return NotFound(f"no extraction rule {rule_id!r}", code="rule_not_found")


def extraction_rule_routes(
    rules: ExtractionRuleStore,
    metadata: MetadataStore,
    trail: AuditTrail,
    *,
    settings: ParsingSettings,
    requires: Callable[[str], Guard],
    clock: Callable[[], datetime] = _utcnow,
) -> list[Any]:
    """The parsing routes. `requires` should be the audited guard factory, so refused writes are recorded."""
    read = requires("search:logs")
    write = requires("parsing:write")

    async def parsing_view(tenant_id: str) -> ParsingView:
        tenant = await metadata.get_tenant(tenant_id)
        return ParsingView(
            time_zone="UTC" if tenant is None else tenant.time_zone,
            detect=settings.detect,
            max_rules=settings.max_rules_per_tenant,
            staleness_seconds=settings.tenant_config_ttl_seconds,
        )

    @get(_PARSING, guards=[read], summary="How the tenant's plain text logs are read: time zone and detection.")
    async def get_parsing(request: Request[Any, Any, Any]) -> ParsingView:
        return await parsing_view(principal_of(request).tenant_id)

    @patch(
        _PARSING,
        guards=[write],
        status_code=200,
        opt=audit_opt("parsing.update", "tenant"),
        summary="Set the time zone of wall times written without an offset in the tenant's logs.",
        description='Body: {"time_zone": "Europe/Berlin"} (an IANA name). Applies to events normalized from then on.',
    )
    async def patch_parsing(request: Request[Any, Any, Any]) -> ParsingView:
        principal = principal_of(request)
        async with trail.record(
            principal,
            "parsing.update",
            target_type="tenant",
            tenant_id=principal.tenant_id,
            target_id=principal.tenant_id,
        ) as note:
            body = decode_body(await read_body(request.stream()), _parsing_decoder)
            note.detail = {"time_zone": check_time_zone(body.time_zone)}
            await metadata.update_tenant(
                principal.tenant_id, TenantChanges(time_zone=body.time_zone), updated_at=clock()
            )
        return await parsing_view(principal.tenant_id)

    @post(
        _BASE,
        guards=[write],
        status_code=201,
        opt=audit_opt("extraction_rule.create", "extraction_rule"),
        summary="Create an extraction rule for plain text lines the built-in detection misses.",
        description=(
            'Body: {"name", "pattern", optional "kind" ("regex" or "grok"), "timestamp_format", "service", '
            '"description", "enabled"}. See docs/ingest.md.'
        ),
    )
    async def create_rule(request: Request[Any, Any, Any]) -> ExtractionRuleView:
        principal = principal_of(request)
        async with trail.record(
            principal, "extraction_rule.create", target_type="extraction_rule", tenant_id=principal.tenant_id
        ) as note:
            spec = _checked(decode_body(await read_body(request.stream()), _create_decoder))
            now = clock()
            rule = ExtractionRule(
                id=new_extraction_rule_id(), tenant_id=principal.tenant_id, spec=spec, created_at=now, updated_at=now
            )
            await rules.create_rule(rule, max_rules_per_tenant=settings.max_rules_per_tenant)
            note.target_id = rule.id
            note.detail = {"name": spec.name, "kind": spec.kind, "pattern": spec.pattern}
        return _view(rule)

    @get(
        _BASE,
        guards=[read],
        summary="List extraction rules in the order they apply (oldest first).",
        description="Query: limit (1-200, default 50), cursor (the previous page's next_cursor).",
    )
    async def list_rules(
        request: Request[Any, Any, Any],
        limit: Annotated[str | None, QueryParameter(name="limit", required=False)] = None,
        cursor: Annotated[str | None, QueryParameter(name="cursor", required=False)] = None,
    ) -> ExtractionRulePage:
        principal = principal_of(request)
        refuse_unknown_parameters(request.query_params, _LIST_PARAMETERS)
        size = parse_limit(limit)
        found = await rules.list_rules(principal.tenant_id, after=decode_time_cursor(cursor), limit=size + 1)
        page, next_cursor = time_page(found, size)
        return ExtractionRulePage(items=[_view(rule) for rule in page], next_cursor=next_cursor)

    @get(f"{_BASE}/{{rule_id:str}}", guards=[read], summary="Get an extraction rule.")
    async def get_rule(request: Request[Any, Any, Any], rule_id: FromPath[str]) -> ExtractionRuleView:
        rule = await rules.get_rule(principal_of(request).tenant_id, rule_id)
        if rule is None:
            raise _not_found(rule_id)
        return _view(rule)

    async def update_rule(request: Request[Any, Any, Any], rule_id: str) -> ExtractionRuleView:
        principal = principal_of(request)
        tenant_id = principal.tenant_id
        async with trail.record(
            principal, "extraction_rule.update", target_type="extraction_rule", tenant_id=tenant_id, target_id=rule_id
        ) as note:
            update = decode_body(await read_body(request.stream()), _update_decoder)
            current = await rules.get_rule(tenant_id, rule_id)
            if current is None:
                raise _not_found(rule_id)
            spec = _checked(merge_update(current.spec, update))
            replaced = await rules.replace_rule(tenant_id, rule_id, spec, updated_at=clock())
            if replaced is None:
                raise _not_found(rule_id)
            note.detail = {
                "changed": sorted(
                    name for name in update.__struct_fields__ if getattr(update, name) is not msgspec.UNSET
                )
            }
        return _view(replaced)

    @put(
        f"{_BASE}/{{rule_id:str}}",
        guards=[write],
        opt=audit_opt("extraction_rule.update", "extraction_rule"),
        summary="Update an extraction rule: the members given replace the rule's, the others are kept.",
    )
    async def put_rule(request: Request[Any, Any, Any], rule_id: FromPath[str]) -> ExtractionRuleView:
        return await update_rule(request, rule_id)

    @patch(
        f"{_BASE}/{{rule_id:str}}",
        guards=[write],
        opt=audit_opt("extraction_rule.update", "extraction_rule"),
        summary="Same as PUT: the members given replace the rule's, the others are kept.",
    )
    async def patch_rule(request: Request[Any, Any, Any], rule_id: FromPath[str]) -> ExtractionRuleView:
        return await update_rule(request, rule_id)

    @delete(
        f"{_BASE}/{{rule_id:str}}",
        guards=[write],
        status_code=204,
        opt=audit_opt("extraction_rule.delete", "extraction_rule"),
        summary="Delete an extraction rule.",
    )
    async def delete_rule(request: Request[Any, Any, Any], rule_id: FromPath[str]) -> None:
        principal = principal_of(request)
        async with trail.record(
            principal,
            "extraction_rule.delete",
            target_type="extraction_rule",
            tenant_id=principal.tenant_id,
            target_id=rule_id,
        ):
            if not await rules.delete_rule(principal.tenant_id, rule_id):
                raise _not_found(rule_id)

    return [get_parsing, patch_parsing, create_rule, list_rules, get_rule, put_rule, patch_rule, delete_rule]
