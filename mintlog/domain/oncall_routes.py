"""Routing incidents to escalation policies by severity and labels. Pure code, no I/O.

A tenant's routing is one ordered list of routes. A route matches an incident when every condition it gives
holds: its severity is one of `severities`, each of `labels` is present with exactly that value, and each of
`label_patterns` is present with a value the pattern matches whole (the `regex` module, run with a time bound).
An incident escalates by the policy its source names (the incident itself, its alert rule or monitor), else by
the first route that matches, else by the tenant's default policy.

Guarantees:
- `compile_routes` refuses, with `RouteError` naming the member (`routes[2].label_patterns.service`), a route
  without any condition, and a pattern that does not compile or backtracks catastrophically on a probe;
- `first_match` never raises and never runs a pattern for more than `MATCH_TIMEOUT_SECONDS` on one value: a
  pattern that runs out of time does not match.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import msgspec
import regex
from msgspec import Meta

from mintlog.domain.incidents import IncidentSeverity

__all__ = [
    "MATCH_TIMEOUT_SECONDS",
    "MAX_ROUTES",
    "CompiledRoute",
    "RouteError",
    "RouteSpec",
    "RoutingSpec",
    "RoutingTable",
    "compile_routes",
    "first_match",
]

MAX_ROUTES = 100
MAX_CONDITIONS = 20
MATCH_TIMEOUT_SECONDS = 0.01
_PROBE_TIMEOUT_SECONDS = 0.05
_PROBES = tuple(unit * (2000 // len(unit)) + "!" for unit in ("a", "0", " ", "a ", "a-", "ab12 ", "/"))

_LabelKey = Annotated[str, Meta(min_length=1, max_length=100)]
_LabelValue = Annotated[str, Meta(max_length=500)]
_Pattern = Annotated[str, Meta(min_length=1, max_length=500)]


class RouteSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One route: conditions (at least one) and the policy of the incidents they match."""

    policy_id: Annotated[str, Meta(min_length=1, max_length=40)]
    name: Annotated[str, Meta(max_length=200)] | None = None
    severities: Annotated[list[IncidentSeverity], Meta(min_length=1, max_length=4)] | None = None
    labels: Annotated[dict[_LabelKey, _LabelValue], Meta(max_length=MAX_CONDITIONS)] = msgspec.field(
        default_factory=lambda: {}
    )
    label_patterns: Annotated[dict[_LabelKey, _Pattern], Meta(max_length=MAX_CONDITIONS)] = msgspec.field(
        default_factory=lambda: {}
    )


class RoutingSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The body of `PUT /v1/oncall/routes`: the whole ordered list (an empty list removes every route)."""

    routes: Annotated[list[RouteSpec], Meta(max_length=MAX_ROUTES)]


class RoutingTable(msgspec.Struct, frozen=True, kw_only=True):
    """A tenant's stored routes, in order."""

    tenant_id: str
    routes: list[RouteSpec]
    updated_at: datetime


class RouteError(ValueError):
    """A route that cannot be used: `field` names the member at fault."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field
        self.detail = detail


@dataclass(frozen=True, slots=True)
class CompiledRoute:
    """A route ready to match, with its position (0-based) in the tenant's list."""

    index: int
    spec: RouteSpec
    patterns: tuple[tuple[str, regex.Pattern[str]], ...]

    def matches(self, severity: str, labels: Mapping[str, str]) -> bool:
        """Whether every condition of the route holds for an incident with `severity` and `labels`."""
        spec = self.spec
        if spec.severities is not None and severity not in spec.severities:
            return False
        if any(labels.get(key) != value for key, value in spec.labels.items()):
            return False
        for key, pattern in self.patterns:
            value = labels.get(key)
            if value is None:
                return False
            try:
                if pattern.fullmatch(value, timeout=MATCH_TIMEOUT_SECONDS) is None:
                    return False
            except TimeoutError:
                return False
        return True


def _compile(field: str, source: str, *, probe: bool) -> regex.Pattern[str]:
    try:
        pattern: regex.Pattern[str] = regex.compile(source, regex.VERSION0)
    except (regex.error, OverflowError, RecursionError) as exc:
        raise RouteError(field, f"the pattern does not compile: {exc}") from None
    for sample in _PROBES if probe else ():
        try:
            pattern.fullmatch(sample, timeout=_PROBE_TIMEOUT_SECONDS)
        except TimeoutError:
            raise RouteError(
                field,
                "the pattern backtracks catastrophically on a long value; avoid nested repetition such as (a+)+",
            ) from None
    return pattern


def compile_routes(routes: Sequence[RouteSpec], *, probe: bool = True) -> list[CompiledRoute]:
    """The routes ready to match, in order; `RouteError` for the first one that cannot be used. `probe=False`
    skips the backtracking probes (routes already checked when they were stored)."""
    compiled: list[CompiledRoute] = []
    for index, route in enumerate(routes):
        field = f"routes[{index}]"
        if route.severities is None and not route.labels and not route.label_patterns:
            raise RouteError(field, "a route needs at least one of `severities`, `labels`, `label_patterns`")
        patterns = tuple(
            (key, _compile(f"{field}.label_patterns.{key}", source, probe=probe))
            for key, source in route.label_patterns.items()
        )
        compiled.append(CompiledRoute(index, route, patterns))
    return compiled


def first_match(routes: Sequence[CompiledRoute], severity: str, labels: Mapping[str, str]) -> CompiledRoute | None:
    """The first route matching an incident with `severity` and `labels`, or None."""
    return next((route for route in routes if route.matches(severity, labels)), None)
