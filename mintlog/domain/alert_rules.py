"""Alert rules: what a rule is, how its body is checked, how its count is compared and its message rendered.

Pure code, no I/O. docs/alerting.md is the user-facing reference; the evaluator is `mintlog.roles.alert`.

A rule counts the events of its tenant matching `query` (the selecting members of a search body: `query` in
the query language, `level`, `service`, `host`, `fields`) in a sliding window of `window_seconds`, every
`interval_seconds`, per value of `group_by` when it has one, and compares the count with `threshold` using
`comparator`. Every check msgspec cannot express is made by `validate_rule`, which raises a 422 naming the
member (`query.query` for a query-language error, with its `position`).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from mintlog.domain.events import LEVELS
from mintlog.domain.validation import fits_in_64_bits
from mintlog.errors import UnprocessableEntity
from mintlog.query import Node, QuerySyntaxError, QueryWarning, all_of, any_of, parse, parse_with_warnings
from mintlog.query.ast import MatchNone, field_key
from mintlog.query.filters import equals
from mintlog.query.hints import level_meant, unknown_level_reason

__all__ = [
    "COMPARATORS",
    "DEFAULT_MESSAGE",
    "GROUP_FIELDS",
    "NO_DATA_POLICIES",
    "SEVERITIES",
    "AlertRule",
    "AlertRuleSpec",
    "AlertRuleUpdate",
    "Comparator",
    "NoDataPolicy",
    "RuleQuery",
    "Severity",
    "breaches",
    "group_hash",
    "merge_update",
    "new_rule_id",
    "render_message",
    "rule_filter_node",
    "rule_query_warnings",
    "validate_rule",
]

Comparator = Literal["gt", "gte", "lt", "lte"]
COMPARATORS: tuple[Comparator, ...] = ("gt", "gte", "lt", "lte")
Severity = Literal["critical", "high", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("critical", "high", "warning", "info")
NoDataPolicy = Literal["ok", "nodata", "alerting", "keep_state"]
NO_DATA_POLICIES: tuple[NoDataPolicy, ...] = ("ok", "nodata", "alerting", "keep_state")
GROUP_FIELDS = ("service", "level", "host", "source")
"""Event attributes `group_by` accepts, besides `fields.<key>`."""

MIN_WINDOW_SECONDS = 10
MAX_WINDOW_SECONDS = 7 * 86_400
MIN_INTERVAL_SECONDS = 5
MAX_INTERVAL_SECONDS = 86_400
MAX_HOLD_SECONDS = 86_400
"""Longest `for_seconds` and `keep_firing_for_seconds`."""
MAX_LABELS = 20
MAX_CHANNELS = 20
MAX_FILTER_VALUES = 50

DEFAULT_MESSAGE = "{rule_name}: {value} matching events in the last {window_seconds}s ({comparator} {threshold})"

_Name = Annotated[str, Meta(min_length=1, max_length=200)]
_Description = Annotated[str, Meta(max_length=2000)]
_FilterValue = Annotated[str, Meta(min_length=1, max_length=200)]
_FilterValues = _FilterValue | Annotated[list[_FilterValue], Meta(min_length=1, max_length=MAX_FILTER_VALUES)]
_ChannelId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]
_Threshold = Annotated[float, Meta(ge=0, le=1e12)]
_Window = Annotated[int, Meta(ge=MIN_WINDOW_SECONDS, le=MAX_WINDOW_SECONDS)]
_Interval = Annotated[int, Meta(ge=MIN_INTERVAL_SECONDS, le=MAX_INTERVAL_SECONDS)]
_Hold = Annotated[int, Meta(ge=0, le=MAX_HOLD_SECONDS)]
_Message = Annotated[str, Meta(min_length=1, max_length=2000)]
_Labels = Annotated[dict[str, str], Meta(max_length=MAX_LABELS)]
_Channels = Annotated[list[_ChannelId], Meta(max_length=MAX_CHANNELS)]
_PolicyId = Annotated[str, Meta(min_length=1, max_length=40)]
_GroupBy = Annotated[str, Meta(min_length=1, max_length=200)]

_LABEL_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,62}")
MAX_LABEL_VALUE_LENGTH = 200
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_PLAIN_PLACEHOLDERS = frozenset(
    {"rule_name", "rule_id", "value", "threshold", "comparator", "window_seconds", "state", "severity"}
)


class RuleQuery(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """What a rule counts: a search body without paging or time range (`size`, `sort`, `cursor`, `from`,
    `to` are refused). The members are AND-ed; several values of one filter are alternatives."""

    query: Annotated[str, Meta(max_length=4096)] | None = None
    level: _FilterValues | None = None
    service: _FilterValues | None = None
    host: _FilterValues | None = None
    fields: Annotated[dict[str, str | int | float | bool], Meta(max_length=MAX_FILTER_VALUES)] | None = None


class AlertRuleSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The writable members of a rule: the body of `POST /v1/alerts/rules`, with its defaults."""

    name: _Name
    query: RuleQuery
    threshold: _Threshold
    window_seconds: _Window
    description: _Description | None = None
    comparator: Comparator = "gt"
    interval_seconds: _Interval = 60
    for_seconds: _Hold = 0
    keep_firing_for_seconds: _Hold = 0
    group_by: _GroupBy | None = None
    severity: Severity = "warning"
    labels: _Labels = msgspec.field(default_factory=lambda: {})
    message: _Message = DEFAULT_MESSAGE
    channel_ids: _Channels = msgspec.field(default_factory=lambda: [])
    no_data: NoDataPolicy = "alerting"
    auto_resolve_incident: bool = True
    is_active: bool = True
    escalation_policy_id: _PolicyId | None = None
    """The escalation policy of the rule's incidents (None: the tenant's default policy, if any)."""


class AlertRuleUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The body of `PUT`/`PATCH /v1/alerts/rules/{id}`: the members to change; absent ones keep their value.
    `null` clears an optional member (`description`, `group_by`)."""

    name: _Name | UnsetType = UNSET
    query: RuleQuery | UnsetType = UNSET
    threshold: _Threshold | UnsetType = UNSET
    window_seconds: _Window | UnsetType = UNSET
    description: _Description | UnsetType | None = UNSET
    comparator: Comparator | UnsetType = UNSET
    interval_seconds: _Interval | UnsetType = UNSET
    for_seconds: _Hold | UnsetType = UNSET
    keep_firing_for_seconds: _Hold | UnsetType = UNSET
    group_by: _GroupBy | UnsetType | None = UNSET
    severity: Severity | UnsetType = UNSET
    labels: _Labels | UnsetType = UNSET
    message: _Message | UnsetType = UNSET
    channel_ids: _Channels | UnsetType = UNSET
    no_data: NoDataPolicy | UnsetType = UNSET
    auto_resolve_incident: bool | UnsetType = UNSET
    is_active: bool | UnsetType = UNSET
    escalation_policy_id: _PolicyId | UnsetType | None = UNSET


@dataclass(frozen=True, slots=True)
class AlertRule:
    """A stored rule: its spec, its tenant and its times. `next_evaluation_at` is when it is next due."""

    id: str
    tenant_id: str
    spec: AlertRuleSpec
    created_at: datetime
    updated_at: datetime
    next_evaluation_at: datetime


def new_rule_id() -> str:
    """A new, unguessable rule id."""
    return f"rule_{secrets.token_hex(8)}"


def _invalid(field: str, detail: str, **extra: object) -> UnprocessableEntity:
    return UnprocessableEntity(f"invalid body: {detail}", code="validation_failed", extra={"field": field, **extra})


def _values(value: str | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def rule_filter_node(query: RuleQuery) -> Node:
    """The parsed `query` AND-ed with the structured filters, like a search body's (`filter_node` of the API).

    Raises `QuerySyntaxError`; `validate_rule` has turned that into a 422 before a rule is ever stored.
    """
    clauses = [parse(query.query or "")]
    levels = _values(query.level)
    if levels:
        clauses.append(any_of([equals("level", level) for level in levels]))
    for field, values in (("service", _values(query.service)), ("host", _values(query.host))):
        if values:
            clauses.append(any_of([equals(field, value) for value in values]))
    for key, value in (query.fields or {}).items():
        clauses.append(equals(f"fields.{key}", value) if key else MatchNone())
    return all_of(clauses)


def rule_query_warnings(query: RuleQuery) -> list[QueryWarning]:
    """The warnings of a rule's query-language `query` (docs/query-language.md, "Hints"): it is valid but
    likely not what was meant. Empty for a query `validate_rule` would refuse."""
    try:
        return list(parse_with_warnings(query.query or "").warnings)
    except QuerySyntaxError:
        return []


def _validate_query(query: RuleQuery) -> None:
    try:
        parse(query.query or "")
    except QuerySyntaxError as exc:
        extra: dict[str, object] = {"field": "query.query", "position": exc.position}
        if exc.suggestion is not None:
            extra["suggestion"] = exc.suggestion
        raise UnprocessableEntity(
            f"invalid body: `query.query` {exc.reason} (at position {exc.position})", code="invalid_query", extra=extra
        ) from None
    for level in _values(query.level):
        if level.lower() not in LEVELS:
            meant = level_meant(level)
            raise _invalid(
                "query.level",
                f"`query.level`: {unknown_level_reason(level, meant)}",
                **({} if meant is None else {"suggestion": meant}),
            )
    for key, value in (query.fields or {}).items():
        if not key or len(key) > 1024:
            raise _invalid("query.fields", "`query.fields` keys must be 1 to 1024 characters long")
        if isinstance(value, int) and not fits_in_64_bits(value):  # no stored event holds another integer
            raise _invalid("query.fields", f"`query.fields` {key!r} is an integer outside the 64-bit range")


def _placeholders(template: str) -> list[str]:
    """The placeholder names of `template`; raises `ValueError` for a lone `{` or `}`."""
    names: list[str] = []
    for match in _PLACEHOLDER.finditer(template):
        text = match.group(0)
        if text in ("{{", "}}"):
            continue
        if match.group(1) is None:
            raise ValueError(f"a lone {text!r} (write {text * 2} for a literal one)")
        names.append(match.group(1))
    return names


def _validate_message(template: str, group_by: str | None) -> None:
    try:
        names = _placeholders(template)
    except ValueError as exc:
        raise _invalid("message", f"`message` has {exc}") from None
    allowed = set(_PLAIN_PLACEHOLDERS)
    if group_by is not None:
        allowed.add(f"group.{group_by}")
    for name in names:
        if name not in allowed:
            raise _invalid(
                "message",
                f"`message` uses the unknown placeholder {{{name}}}; known: "
                + ", ".join(f"{{{known}}}" for known in sorted(allowed)),
                placeholder=name,
            )


def validate_rule(spec: AlertRuleSpec) -> AlertRuleSpec:
    """`spec` when every member is usable; else a 422 `validation_failed` (or `invalid_query`) naming it."""
    _validate_query(spec.query)
    if spec.group_by is not None and not (spec.group_by in GROUP_FIELDS or field_key(spec.group_by)):
        raise _invalid(
            "group_by", f"cannot group by {spec.group_by!r}: use one of {', '.join(GROUP_FIELDS)} or fields.<key>"
        )
    _validate_message(spec.message, spec.group_by)
    for key, value in spec.labels.items():
        if not _LABEL_KEY.fullmatch(key):
            raise _invalid(
                "labels", f"label name {key!r} must be 1-63 letters, digits, '_', '.' or '-', not starting with a digit"
            )
        if len(value) > MAX_LABEL_VALUE_LENGTH:
            raise _invalid("labels", f"label {key!r} is longer than {MAX_LABEL_VALUE_LENGTH} characters")
    if len(set(spec.channel_ids)) != len(spec.channel_ids):
        raise _invalid("channel_ids", "`channel_ids` names a channel twice")
    if spec.window_seconds < spec.interval_seconds:
        # Events between two evaluations would never be counted.
        raise _invalid(
            "window_seconds",
            f"`window_seconds` ({spec.window_seconds}) must be at least `interval_seconds` ({spec.interval_seconds})",
        )
    return spec


def merge_update(spec: AlertRuleSpec, update: AlertRuleUpdate) -> AlertRuleSpec:
    """`spec` with every member `update` gives replaced (not yet validated: call `validate_rule`)."""
    changes = {name: value for name in update.__struct_fields__ if (value := getattr(update, name)) is not UNSET}
    return msgspec.structs.replace(spec, **changes)


def breaches(value: float, comparator: Comparator, threshold: float) -> bool:
    """Whether a count of `value` crosses `threshold`: `gt` is "more than", `lte` "at most", and so on."""
    if comparator == "gt":
        return value > threshold
    if comparator == "gte":
        return value >= threshold
    if comparator == "lt":
        return value < threshold
    return value <= threshold


def group_hash(group: Mapping[str, str]) -> str:
    """A short stable digest of a group's values (`{}` for a rule without `group_by`); part of dedup keys."""
    canonical = json.dumps(dict(sorted(group.items())), separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _number_text(value: float | None) -> str:
    if value is None:
        return "no data"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def render_message(
    spec: AlertRuleSpec,
    *,
    rule_id: str,
    value: float | None,
    state: str,
    group: Mapping[str, str],
) -> str:
    """The rule's `message` with its placeholders filled; `{{` and `}}` stand for literal braces."""
    values = {
        "rule_name": spec.name,
        "rule_id": rule_id,
        "value": _number_text(value),
        "threshold": _number_text(spec.threshold),
        "comparator": spec.comparator,
        "window_seconds": str(spec.window_seconds),
        "state": state,
        "severity": spec.severity,
        **{f"group.{key}": text for key, text in group.items()},
    }

    def substitute(match: re.Match[str]) -> str:
        text = match.group(0)
        if text in ("{{", "}}"):
            return text[0]
        name = match.group(1)
        return values.get(name, "") if name is not None else text

    return _PLACEHOLDER.sub(substitute, spec.message)
