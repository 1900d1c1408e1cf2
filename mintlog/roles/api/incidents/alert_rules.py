"""Alert rule routes under `/v1/alerts/rules` (scopes `alerts:read`, `alerts:write`). docs/alerting.md is the
reference.

Guarantees:
- a body is checked whole before anything is stored: an unknown or read-only member, a bad value, a query
  the query language cannot parse or an unknown `message` placeholder is a 422 whose `field` names it (and
  `position`, for a query, and `suggestion` for a plausible mistake such as `level:eror`); a query that is
  valid but likely not what was meant (`a or b`, `status=500`) is stored, and the rule's `warnings` say so;
- `PUT` and `PATCH` merge: the members given replace the rule's, the others keep their value, and the result
  is checked like a create; a changed rule is evaluated again at once, its alert states kept;
- another tenant's rule answers 404 on every verb;
- every write is in the audit log, refused ones included.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Request, delete, get, post, route
from litestar.params import FromPath

from mintlog.domain.alert_rules import (
    AlertRule,
    AlertRuleSpec,
    AlertRuleUpdate,
    merge_update,
    new_rule_id,
    rule_query_warnings,
    validate_rule,
)
from mintlog.http.guards import principal_of, requires
from mintlog.ports.alerting import AlertRuleStore, AlertStateRecord
from mintlog.ports.escalation import EscalationStore
from mintlog.ports.notifications import NotificationStore
from mintlog.query import QueryWarning
from mintlog.roles.api.common.auditing import AuditedWrite, audit_target
from mintlog.roles.api.common.dependencies import Clock, Injected
from mintlog.roles.api.common.pagination import Cursor, Limit, Page, TimeWindow
from mintlog.roles.api.common.resource import UPDATE_METHODS, Resource, operation
from mintlog.roles.api.common.wire import decode_body, read_body
from mintlog.roles.api.incidents.channel_refs import check_channel_ids, check_policy_id
from mintlog.settings import Settings

__all__ = ["AlertRuleDetail", "AlertRuleView", "AlertRules", "AlertStateView"]

_create_decoder = msgspec.json.Decoder(AlertRuleSpec)
_update_decoder = msgspec.json.Decoder(AlertRuleUpdate)


class AlertRuleView(AlertRuleSpec, frozen=True, kw_only=True):
    """A rule as the API shows it: every member with its effective value, its id and times, and `warnings`
    when its `query.query` is valid but likely not what was meant (docs/query-language.md, "Hints")."""

    id: str
    tenant_id: str
    created_at: datetime
    updated_at: datetime
    next_evaluation_at: datetime
    warnings: list[QueryWarning] | msgspec.UnsetType = msgspec.UNSET


class AlertStateView(msgspec.Struct, frozen=True, kw_only=True):
    """The current state of one group of a rule (`group` is `{}` for a rule without `group_by`)."""

    group: dict[str, str]
    dedup_key: str
    state: str
    since: datetime | None
    value: float | None
    last_evaluated_at: datetime | None
    pending_since: datetime | None
    error: str | None


class AlertRuleDetail(AlertRuleView, frozen=True, kw_only=True):
    """A rule with the current state of each of its groups."""

    states: list[AlertStateView]


def _view(rule: AlertRule) -> AlertRuleView:
    return AlertRuleView(
        **msgspec.structs.asdict(rule.spec),
        id=rule.id,
        tenant_id=rule.tenant_id,
        created_at=rule.created_at,
        updated_at=rule.updated_at,
        next_evaluation_at=rule.next_evaluation_at,
        warnings=rule_query_warnings(rule.spec.query) or msgspec.UNSET,
    )


def _state_view(state: AlertStateRecord) -> AlertStateView:
    return AlertStateView(
        group=state.group,
        dedup_key=f"{state.rule_id}:{state.group_hash}",
        state=state.machine.state,
        since=state.machine.since,
        value=state.last_value,
        last_evaluated_at=state.last_evaluated_at,
        pending_since=state.machine.pending_since,
        error=state.last_error,
    )


def _detail(rule: AlertRule, states: list[AlertStateRecord]) -> AlertRuleDetail:
    return AlertRuleDetail(**msgspec.structs.asdict(_view(rule)), states=[_state_view(state) for state in states])


def _audit_detail(spec: AlertRuleSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "threshold": spec.threshold,
        "comparator": spec.comparator,
        "window_seconds": spec.window_seconds,
        "is_active": spec.is_active,
    }


def _unset(update: AlertRuleUpdate) -> set[str]:
    return {name for name in update.__struct_fields__ if getattr(update, name) is msgspec.UNSET}


class AlertRules(Resource):
    """`/v1/alerts/rules`: the tenant's alert rules (at most `MINTLOG_ALERT__MAX_RULES_PER_TENANT`)."""

    path = "/v1/alerts/rules"
    opt = audit_target("alert_rule")
    noun = "alert rule"
    not_found_code = "rule_not_found"

    @post(
        guards=[requires("alerts:write")],
        status_code=201,
        summary="Create an alert rule; it is evaluated at once, then every interval_seconds.",
        description=(
            'Body: {"name", "query": {search filters}, "threshold", "window_seconds", optional "comparator", '
            '"interval_seconds", "for_seconds", "keep_firing_for_seconds", "group_by", "severity", "labels", '
            '"message", "channel_ids", "no_data", "auto_resolve_incident", "is_active", "escalation_policy_id"}. '
            "See docs/alerting.md."
        ),
        opt=operation(audit="alert_rule.create", body=AlertRuleSpec, errors=(409, 422)),
    )
    async def create_rule(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        alert_rules: Injected[AlertRuleStore],
        notifications: Injected[NotificationStore],
        escalation: Injected[EscalationStore],
        settings: Injected[Settings],
        clock: Injected[Clock],
    ) -> AlertRuleView:
        principal = principal_of(request)
        async with audit.record() as note:
            spec = validate_rule(decode_body(await read_body(request.stream()), _create_decoder))
            await check_channel_ids(notifications, principal.tenant_id, spec.channel_ids)
            await check_policy_id(escalation, principal.tenant_id, spec.escalation_policy_id)
            now = clock()
            rule = AlertRule(
                id=new_rule_id(),
                tenant_id=principal.tenant_id,
                spec=spec,
                created_at=now,
                updated_at=now,
                next_evaluation_at=now,
            )
            await alert_rules.create_rule(rule, max_rules_per_tenant=settings.alert.max_rules_per_tenant)
            note.target_id = rule.id
            note.detail = _audit_detail(spec)
        return _view(rule)

    @get(guards=[requires("alerts:read")], summary="List alert rules, oldest first.", opt=operation())
    async def list_rules(
        self,
        request: Request[Any, Any, Any],
        alert_rules: Injected[AlertRuleStore],
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> Page[AlertRuleView]:
        principal = principal_of(request)
        window = TimeWindow.of(request, limit, cursor)
        found = await alert_rules.list_rules(principal.tenant_id, after=window.after, limit=window.fetch)
        return window.page(found, _view)

    @get(
        "/{rule_id:str}",
        guards=[requires("alerts:read")],
        summary="Get an alert rule with the current state of each of its groups.",
        opt=operation(),
    )
    async def get_rule(
        self, request: Request[Any, Any, Any], alert_rules: Injected[AlertRuleStore], rule_id: FromPath[str]
    ) -> AlertRuleDetail:
        principal = principal_of(request)
        tenant_id = principal.tenant_id
        rule = self.found(await alert_rules.get_rule(tenant_id, rule_id), rule_id)
        return _detail(rule, list(await alert_rules.list_states(tenant_id, rule_id)))

    @route(
        "/{rule_id:str}",
        http_method=UPDATE_METHODS,
        guards=[requires("alerts:write")],
        status_code=200,
        summary="Update an alert rule: the members given replace the rule's, the others are kept.",
        description="PUT and PATCH are the same.",
        opt=operation(audit="alert_rule.update", body=AlertRuleUpdate, errors=(422,)),
    )
    async def update_rule(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        alert_rules: Injected[AlertRuleStore],
        notifications: Injected[NotificationStore],
        escalation: Injected[EscalationStore],
        clock: Injected[Clock],
        rule_id: FromPath[str],
    ) -> AlertRuleView:
        principal = principal_of(request)
        tenant_id = principal.tenant_id
        async with audit.record(target_id=rule_id) as note:
            update = decode_body(await read_body(request.stream()), _update_decoder)
            current = self.found(await alert_rules.get_rule(tenant_id, rule_id), rule_id)
            spec = validate_rule(merge_update(current.spec, update))
            await check_channel_ids(notifications, tenant_id, spec.channel_ids)
            await check_policy_id(escalation, tenant_id, spec.escalation_policy_id)
            now = clock()
            replaced = self.found(
                await alert_rules.replace_rule(tenant_id, rule_id, spec, updated_at=now, next_evaluation_at=now),
                rule_id,
            )
            note.detail = {"changed": sorted(msgspec.structs.asdict(update).keys() - _unset(update))}
        return _view(replaced)

    @delete(
        "/{rule_id:str}",
        guards=[requires("alerts:write")],
        status_code=204,
        summary="Delete an alert rule and its alert states. Open incidents it opened stay open.",
        opt=operation(audit="alert_rule.delete"),
    )
    async def delete_rule(
        self,
        request: Request[Any, Any, Any],
        audit: Injected[AuditedWrite],
        alert_rules: Injected[AlertRuleStore],
        rule_id: FromPath[str],
    ) -> None:
        principal = principal_of(request)
        async with audit.record(target_id=rule_id):
            if not await alert_rules.delete_rule(principal.tenant_id, rule_id):
                raise self.not_found(rule_id)
