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

from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post, route
from litestar.params import FromPath

from mintlog.domain.extraction_rules import (
    ExtractionRule,
    ExtractionRuleSpec,
    ExtractionRuleUpdate,
    merge_update,
    new_extraction_rule_id,
)
from mintlog.domain.tenants import TenantChanges
from mintlog.http.guards import principal_of, requires
from mintlog.parsing.rules import RuleError, compile_rule
from mintlog.ports.metadata import MetadataStore
from mintlog.ports.parsing import ExtractionRuleStore
from mintlog.roles.api.common.auditing import AuditedWrite, audit_target
from mintlog.roles.api.common.dependencies import Clock, Injected
from mintlog.roles.api.common.pagination import Cursor, Limit, Page, TimeWindow
from mintlog.roles.api.common.resource import UPDATE_METHODS, Resource, operation
from mintlog.roles.api.common.wire import TimeZoneName, check_time_zone, decode_body, invalid_field, read_body
from mintlog.settings import ParsingSettings, Settings

__all__ = ["ExtractionRuleView", "ExtractionRules", "Parsing", "ParsingPatch", "ParsingView"]


class ExtractionRuleView(ExtractionRuleSpec, frozen=True, kw_only=True):
    """A rule as the API shows it: every member with its effective value, its id and times."""

    id: str
    tenant_id: str
    created_at: datetime
    updated_at: datetime


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


async def _parsing_view(metadata: MetadataStore, settings: ParsingSettings, tenant_id: str) -> ParsingView:
    tenant = await metadata.get_tenant(tenant_id)
    return ParsingView(
        time_zone="UTC" if tenant is None else tenant.time_zone,
        detect=settings.detect,
        max_rules=settings.max_rules_per_tenant,
        staleness_seconds=settings.tenant_config_ttl_seconds,
    )


class Parsing(Controller):
    """`/v1/logs/parsing`: the tenant's time zone and what the pipeline detects."""

    path = "/v1/logs/parsing"
    opt = audit_target("tenant")

    @get(
        guards=[requires("search:logs")],
        summary="How the tenant's plain text logs are read: time zone and detection.",
        opt=operation(),
    )
    async def get_parsing(
        self, request: Request[Any, Any, Any], metadata: Injected[MetadataStore], settings: Injected[Settings]
    ) -> ParsingView:
        principal = principal_of(request)
        return await _parsing_view(metadata, settings.parsing, principal.tenant_id)

    @patch(
        guards=[requires("parsing:write")],
        status_code=200,
        summary="Set the time zone of wall times written without an offset in the tenant's logs.",
        description='Body: {"time_zone": "Europe/Berlin"} (an IANA name). Applies to events normalized from then on.',
        opt=operation(audit="parsing.update", body=ParsingPatch, errors=(422,)),
    )
    async def patch_parsing(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        metadata: Injected[MetadataStore],
        settings: Injected[Settings],
        clock: Injected[Clock],
    ) -> ParsingView:
        principal = principal_of(request)
        async with audit.record(target_id=principal.tenant_id) as note:
            body = decode_body(await read_body(request.stream()), _parsing_decoder)
            note.detail = {"time_zone": check_time_zone(body.time_zone)}
            await metadata.update_tenant(
                principal.tenant_id, TenantChanges(time_zone=body.time_zone), updated_at=clock()
            )
        return await _parsing_view(metadata, settings.parsing, principal.tenant_id)


class ExtractionRules(Resource):
    """`/v1/logs/extraction-rules`: the tenant's extraction rules, in the order they apply."""

    path = "/v1/logs/extraction-rules"
    opt = audit_target("extraction_rule")
    noun = "extraction rule"
    not_found_code = "rule_not_found"

    @post(
        guards=[requires("parsing:write")],
        status_code=201,
        summary="Create an extraction rule for plain text lines the built-in detection misses.",
        description=(
            'Body: {"name", "pattern", optional "kind" ("regex" or "grok"), "timestamp_format", "service", '
            '"description", "enabled"}. See docs/ingest.md.'
        ),
        opt=operation(audit="extraction_rule.create", body=ExtractionRuleSpec, errors=(409, 422)),
    )
    async def create_rule(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        extraction_rules: Injected[ExtractionRuleStore],
        settings: Injected[Settings],
        clock: Injected[Clock],
    ) -> ExtractionRuleView:
        principal = principal_of(request)
        async with audit.record() as note:
            spec = _checked(decode_body(await read_body(request.stream()), _create_decoder))
            now = clock()
            rule = ExtractionRule(
                id=new_extraction_rule_id(), tenant_id=principal.tenant_id, spec=spec, created_at=now, updated_at=now
            )
            await extraction_rules.create_rule(rule, max_rules_per_tenant=settings.parsing.max_rules_per_tenant)
            note.target_id = rule.id
            note.detail = {"name": spec.name, "kind": spec.kind, "pattern": spec.pattern}
        return _view(rule)

    @get(
        guards=[requires("search:logs")],
        summary="List extraction rules in the order they apply (oldest first).",
        opt=operation(),
    )
    async def list_rules(
        self,
        request: Request[Any, Any, Any],
        extraction_rules: Injected[ExtractionRuleStore],
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> Page[ExtractionRuleView]:
        principal = principal_of(request)
        window = TimeWindow.of(request, limit, cursor)
        found = await extraction_rules.list_rules(principal.tenant_id, after=window.after, limit=window.fetch)
        return window.page(found, _view)

    @get("/{rule_id:str}", guards=[requires("search:logs")], summary="Get an extraction rule.", opt=operation())
    async def get_rule(
        self, request: Request[Any, Any, Any], extraction_rules: Injected[ExtractionRuleStore], rule_id: FromPath[str]
    ) -> ExtractionRuleView:
        principal = principal_of(request)
        return _view(self.found(await extraction_rules.get_rule(principal.tenant_id, rule_id), rule_id))

    @route(
        "/{rule_id:str}",
        http_method=UPDATE_METHODS,
        guards=[requires("parsing:write")],
        status_code=200,
        summary="Update an extraction rule: the members given replace the rule's, the others are kept.",
        description="PUT and PATCH are the same.",
        opt=operation(audit="extraction_rule.update", body=ExtractionRuleUpdate, errors=(422,)),
    )
    async def update_rule(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        extraction_rules: Injected[ExtractionRuleStore],
        clock: Injected[Clock],
        rule_id: FromPath[str],
    ) -> ExtractionRuleView:
        principal = principal_of(request)
        tenant_id = principal.tenant_id
        async with audit.record(target_id=rule_id) as note:
            update = decode_body(await read_body(request.stream()), _update_decoder)
            current = self.found(await extraction_rules.get_rule(tenant_id, rule_id), rule_id)
            spec = _checked(merge_update(current.spec, update))
            replaced = self.found(
                await extraction_rules.replace_rule(tenant_id, rule_id, spec, updated_at=clock()), rule_id
            )
            note.detail = {
                "changed": sorted(
                    name for name in update.__struct_fields__ if getattr(update, name) is not msgspec.UNSET
                )
            }
        return _view(replaced)

    @delete(
        "/{rule_id:str}",
        guards=[requires("parsing:write")],
        status_code=204,
        summary="Delete an extraction rule.",
        opt=operation(audit="extraction_rule.delete"),
    )
    async def delete_rule(
        self, audit: Injected[AuditedWrite], extraction_rules: Injected[ExtractionRuleStore], rule_id: FromPath[str]
    ) -> None:
        async with audit.record(target_id=rule_id):
            if not await extraction_rules.delete_rule(audit.principal.tenant_id, rule_id):
                raise self.not_found(rule_id)
