"""Alert rule routes under `/v1/alerts/rules` (scopes `alerts:read`, `alerts:write`). docs/alerting.md is the
reference.

Guarantees:
- a body is checked whole before anything is stored: an unknown or read-only member, a bad value, a query
  the query language cannot parse or an unknown `message` placeholder is a 422 whose `field` names it (and
  `position`, for a query);
- `PUT` and `PATCH` merge: the members given replace the rule's, the others keep their value, and the result
  is checked like a create; a changed rule is evaluated again at once, its alert states kept;
- another tenant's rule answers 404 on every verb;
- every write is in the audit log, refused ones included.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, patch, post, put
from litestar.params import FromPath, QueryParameter

from mintlog.domain.alert_rules import (
    AlertRule,
    AlertRuleSpec,
    AlertRuleUpdate,
    merge_update,
    new_rule_id,
    validate_rule,
)
from mintlog.errors import NotFound
from mintlog.http.guards import Guard, principal_of
from mintlog.ports.alerting import AlertRuleStore, AlertStateRecord
from mintlog.ports.notifications import NotificationStore
from mintlog.roles.api.auditing import AuditTrail, audit_opt
from mintlog.roles.api.channel_refs import check_channel_ids
from mintlog.roles.api.pagination import decode_time_cursor, encode_time_cursor, parse_limit, refuse_unknown_parameters
from mintlog.roles.api.wire import decode_body, read_body

__all__ = ["AlertRuleDetail", "AlertRulePage", "AlertRuleView", "AlertStateView", "alert_rule_routes"]

_BASE = "/v1/alerts/rules"
_create_decoder = msgspec.json.Decoder(AlertRuleSpec)
_update_decoder = msgspec.json.Decoder(AlertRuleUpdate)
_LIST_PARAMETERS = frozenset({"limit", "cursor"})


class AlertRuleView(AlertRuleSpec, frozen=True, kw_only=True):
    """A rule as the API shows it: every member with its effective value, and its id and times."""

    id: str
    tenant_id: str
    created_at: datetime
    updated_at: datetime
    next_evaluation_at: datetime


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


class AlertRulePage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of rules, oldest first; pass `next_cursor` as `cursor` for the next one."""

    items: list[AlertRuleView]
    next_cursor: str | None


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _view(rule: AlertRule) -> AlertRuleView:
    return AlertRuleView(
        **msgspec.structs.asdict(rule.spec),
        id=rule.id,
        tenant_id=rule.tenant_id,
        created_at=rule.created_at,
        updated_at=rule.updated_at,
        next_evaluation_at=rule.next_evaluation_at,
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


def _not_found(rule_id: str) -> NotFound:
    return NotFound(f"no alert rule {rule_id!r}", code="rule_not_found")


def alert_rule_routes(
    rules: AlertRuleStore,
    trail: AuditTrail,
    *,
    channels: NotificationStore,
    requires: Callable[[str], Guard],
    max_rules_per_tenant: int,
    clock: Callable[[], datetime] = _utcnow,
) -> list[Any]:
    """The alert rule routes. `requires` should be the audited guard factory, so refused writes are recorded."""

    @post(
        _BASE,
        guards=[requires("alerts:write")],
        status_code=201,
        opt=audit_opt("alert_rule.create", "alert_rule"),
        summary="Create an alert rule; it is evaluated at once, then every interval_seconds.",
        description=(
            'Body: {"name", "query": {search filters}, "threshold", "window_seconds", optional "comparator", '
            '"interval_seconds", "for_seconds", "keep_firing_for_seconds", "group_by", "severity", "labels", '
            '"message", "channel_ids", "no_data", "auto_resolve_incident", "is_active"}. See docs/alerting.md.'
        ),
    )
    async def create_rule(request: Request[Any, Any, Any]) -> AlertRuleView:
        principal = principal_of(request)
        async with trail.record(
            principal, "alert_rule.create", target_type="alert_rule", tenant_id=principal.tenant_id
        ) as note:
            spec = validate_rule(decode_body(await read_body(request.stream()), _create_decoder))
            await check_channel_ids(channels, principal.tenant_id, spec.channel_ids)
            now = clock()
            rule = AlertRule(
                id=new_rule_id(),
                tenant_id=principal.tenant_id,
                spec=spec,
                created_at=now,
                updated_at=now,
                next_evaluation_at=now,
            )
            await rules.create_rule(rule, max_rules_per_tenant=max_rules_per_tenant)
            note.target_id = rule.id
            note.detail = _audit_detail(spec)
        return _view(rule)

    @get(
        _BASE,
        guards=[requires("alerts:read")],
        summary="List alert rules, oldest first.",
        description="Query: limit (1-200, default 50), cursor (the previous page's next_cursor).",
    )
    async def list_rules(
        request: Request[Any, Any, Any],
        limit: Annotated[str | None, QueryParameter(name="limit", required=False)] = None,
        cursor: Annotated[str | None, QueryParameter(name="cursor", required=False)] = None,
    ) -> AlertRulePage:
        principal = principal_of(request)
        refuse_unknown_parameters(request.query_params, _LIST_PARAMETERS)
        size = parse_limit(limit)
        found = await rules.list_rules(principal.tenant_id, after=decode_time_cursor(cursor), limit=size + 1)
        page = list(found[:size])
        next_cursor = encode_time_cursor(page[-1].created_at, page[-1].id) if len(found) > size else None
        return AlertRulePage(items=[_view(rule) for rule in page], next_cursor=next_cursor)

    @get(
        f"{_BASE}/{{rule_id:str}}",
        guards=[requires("alerts:read")],
        summary="Get an alert rule with the current state of each of its groups.",
    )
    async def get_rule(request: Request[Any, Any, Any], rule_id: FromPath[str]) -> AlertRuleDetail:
        tenant_id = principal_of(request).tenant_id
        rule = await rules.get_rule(tenant_id, rule_id)
        if rule is None:
            raise _not_found(rule_id)
        return _detail(rule, list(await rules.list_states(tenant_id, rule_id)))

    async def update_rule(request: Request[Any, Any, Any], rule_id: str) -> AlertRuleView:
        principal = principal_of(request)
        tenant_id = principal.tenant_id
        async with trail.record(
            principal, "alert_rule.update", target_type="alert_rule", tenant_id=tenant_id, target_id=rule_id
        ) as note:
            update = decode_body(await read_body(request.stream()), _update_decoder)
            current = await rules.get_rule(tenant_id, rule_id)
            if current is None:
                raise _not_found(rule_id)
            spec = validate_rule(merge_update(current.spec, update))
            await check_channel_ids(channels, tenant_id, spec.channel_ids)
            now = clock()
            replaced = await rules.replace_rule(tenant_id, rule_id, spec, updated_at=now, next_evaluation_at=now)
            if replaced is None:
                raise _not_found(rule_id)
            note.detail = {"changed": sorted(msgspec.structs.asdict(update).keys() - _unset(update))}
        return _view(replaced)

    @put(
        f"{_BASE}/{{rule_id:str}}",
        guards=[requires("alerts:write")],
        opt=audit_opt("alert_rule.update", "alert_rule"),
        summary="Update an alert rule: the members given replace the rule's, the others are kept.",
    )
    async def put_rule(request: Request[Any, Any, Any], rule_id: FromPath[str]) -> AlertRuleView:
        return await update_rule(request, rule_id)

    @patch(
        f"{_BASE}/{{rule_id:str}}",
        guards=[requires("alerts:write")],
        opt=audit_opt("alert_rule.update", "alert_rule"),
        summary="Same as PUT: the members given replace the rule's, the others are kept.",
    )
    async def patch_rule(request: Request[Any, Any, Any], rule_id: FromPath[str]) -> AlertRuleView:
        return await update_rule(request, rule_id)

    @delete(
        f"{_BASE}/{{rule_id:str}}",
        guards=[requires("alerts:write")],
        status_code=204,
        opt=audit_opt("alert_rule.delete", "alert_rule"),
        summary="Delete an alert rule and its alert states. Open incidents it opened stay open.",
    )
    async def delete_rule(request: Request[Any, Any, Any], rule_id: FromPath[str]) -> None:
        principal = principal_of(request)
        async with trail.record(
            principal, "alert_rule.delete", target_type="alert_rule", tenant_id=principal.tenant_id, target_id=rule_id
        ):
            if not await rules.delete_rule(principal.tenant_id, rule_id):
                raise _not_found(rule_id)

    return [create_rule, list_rules, get_rule, put_rule, patch_rule, delete_rule]


def _unset(update: AlertRuleUpdate) -> set[str]:
    return {name for name in update.__struct_fields__ if getattr(update, name) is msgspec.UNSET}
