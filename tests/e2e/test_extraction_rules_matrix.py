"""The security matrix of `/v1/logs/parsing` and `/v1/logs/extraction-rules`, on the real app, guards, auth
cache and database (SQLite and PostgreSQL): the same 401 for bad keys, a 403 naming the scope, another
tenant's rules a 404 exactly like missing ones, a key in the query string a 400, nothing of the other tenant
changes, and a tenant's time zone is its own."""

from __future__ import annotations

from typing import Any

import pytest

from mintlog.domain.keys import generate_api_key
from tests.e2e.inprocess import ApiClient
from tests.e2e.test_security_matrix import api, database_url, problem, two_tenants, without_request_id

pytestmark = pytest.mark.e2e
__all__ = ["api", "database_url"]  # the fixtures, re-used from the matrix of the other resources

RULE = {"name": "r", "pattern": r"^(?P<level>[A-Z]+) (?P<user>\w+)"}

# (method, path template, body, scope, names a rule)
REQUESTS: list[tuple[str, str, Any, str, bool]] = [
    ("POST", "/v1/logs/extraction-rules", RULE, "parsing:write", False),
    ("GET", "/v1/logs/extraction-rules", None, "search:logs", False),
    ("GET", "/v1/logs/extraction-rules/{rule}", None, "search:logs", True),
    ("PUT", "/v1/logs/extraction-rules/{rule}", {"enabled": False}, "parsing:write", True),
    ("PATCH", "/v1/logs/extraction-rules/{rule}", {"name": "renamed"}, "parsing:write", True),
    ("DELETE", "/v1/logs/extraction-rules/{rule}", None, "parsing:write", True),
    ("GET", "/v1/logs/parsing", None, "search:logs", False),
    ("PATCH", "/v1/logs/parsing", {"time_zone": "Asia/Tokyo"}, "parsing:write", False),
]


async def test_the_parsing_routes_keep_the_matrix(api: ApiClient) -> None:
    alpha, beta = await two_tenants(api)
    ingest_only = await api.create_key("alpha", name="ingest", scopes=["ingest:logs"])
    mine = (await api.call("POST", "/v1/logs/extraction-rules", alpha["key"], RULE)).json()["id"]
    theirs = (await api.call("POST", "/v1/logs/extraction-rules", beta["key"], RULE)).json()["id"]
    before = (await api.call("GET", f"/v1/logs/extraction-rules/{theirs}", beta["key"])).json()
    unauthorized: set[tuple[tuple[str, Any], ...]] = set()
    for method, template, body, scope, names_rule in REQUESTS:
        path = template.format(rule=mine)
        for key in (None, "not-a-key", generate_api_key().secret):
            answer = without_request_id(problem(await api.call(method, path, key, body), 401, "unauthorized"))
            unauthorized.add(tuple(sorted(answer.items())))
        refusal = problem(await api.call(method, path, ingest_only["key"], body), 403, "missing_scope")
        assert refusal["required_scope"] == scope, (method, template)
        problem(await api.http.request(method, path, params={"api_key": alpha["key"]}, json=body), 400, "key_in_query")
        if names_rule:
            foreign = problem(
                await api.call(method, template.format(rule=theirs), alpha["key"], body), 404, "rule_not_found"
            )
            absent = problem(
                await api.call(method, template.format(rule="xrule_nope"), alpha["key"], body), 404, "rule_not_found"
            )
            assert foreign["detail"].replace(theirs, "?") == absent["detail"].replace("xrule_nope", "?")
    assert len(unauthorized) == 1, unauthorized
    assert (await api.call("GET", f"/v1/logs/extraction-rules/{theirs}", beta["key"])).json() == before
    listed = (await api.call("GET", "/v1/logs/extraction-rules", beta["key"])).json()["items"]
    assert [rule["id"] for rule in listed] == [theirs]


async def test_a_tenant_sets_only_its_own_time_zone_and_cannot_name_another(api: ApiClient) -> None:
    alpha, beta = await two_tenants(api)

    changed = await api.call("PATCH", "/v1/logs/parsing", alpha["key"], {"time_zone": "Europe/Berlin"})
    sneaky = await api.call("PATCH", "/v1/logs/parsing", alpha["key"], {"time_zone": "UTC", "tenant_id": "beta"})

    assert changed.status_code == 200
    assert problem(sneaky, 422, "validation_failed")["field"] == "tenant_id"
    assert (await api.call("GET", "/v1/logs/parsing", alpha["key"])).json()["time_zone"] == "Europe/Berlin"
    assert (await api.call("GET", "/v1/logs/parsing", beta["key"])).json()["time_zone"] == "UTC"
