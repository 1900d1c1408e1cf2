"""Routes from an incident's severity and labels to a policy: which route wins, what each condition means, and
the routes refused before they are stored."""

from __future__ import annotations

import pytest

from mintlog.domain.oncall_routes import RouteError, RouteSpec, compile_routes, first_match

ROUTES = compile_routes(
    [
        RouteSpec(policy_id="esp_db", name="database team", labels={"team": "db"}),
        RouteSpec(policy_id="esp_pay_critical", severities=["critical"], label_patterns={"service": "pay(ments)?-.*"}),
        RouteSpec(policy_id="esp_critical", severities=["critical", "high"]),
    ]
)


def routed(severity: str, labels: dict[str, str]) -> str | None:
    route = first_match(ROUTES, severity, labels)
    return None if route is None else route.spec.policy_id


def test_the_first_matching_route_wins_in_order() -> None:
    assert routed("critical", {"team": "db", "service": "payments-api"}) == "esp_db"
    assert routed("critical", {"service": "payments-api"}) == "esp_pay_critical"
    assert routed("high", {"service": "payments-api"}) == "esp_critical"
    assert routed("warning", {"service": "payments-api"}) is None
    assert routed("info", {}) is None


def test_every_condition_of_a_route_must_hold_and_patterns_match_the_whole_value() -> None:
    assert routed("critical", {"service": "pay-api"}) == "esp_pay_critical"
    assert routed("critical", {"service": "prepay-api"}) == "esp_critical"  # not a match of the whole value
    assert routed("warning", {"service": "pay-api"}) is None  # the pattern holds, the severity does not
    assert routed("warning", {"team": "DB"}) is None  # label values are compared exactly
    assert routed("warning", {"team": "db"}) == "esp_db"


def test_a_missing_label_never_matches_a_pattern_even_one_that_matches_empty() -> None:
    (route,) = compile_routes([RouteSpec(policy_id="esp_x", label_patterns={"env": ".*"})])
    assert route.matches("info", {"env": ""})
    assert not route.matches("info", {})


@pytest.mark.parametrize(
    ("route", "field"),
    [
        (RouteSpec(policy_id="esp_x"), "routes[1]"),
        (RouteSpec(policy_id="esp_x", label_patterns={"service": "pay("}), "routes[1].label_patterns.service"),
        (RouteSpec(policy_id="esp_x", label_patterns={"host": "(a|aa)+b"}), "routes[1].label_patterns.host"),
    ],
)
def test_a_route_without_conditions_or_with_a_bad_pattern_is_refused_naming_it(route: RouteSpec, field: str) -> None:
    with pytest.raises(RouteError) as refused:
        compile_routes([RouteSpec(policy_id="esp_ok", severities=["info"]), route])
    assert refused.value.field == field
