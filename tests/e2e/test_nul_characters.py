"""A NUL character (U+0000) anywhere a client names or sends something answers a 4xx naming where it is, on SQLite
and on PostgreSQL alike, never `503 metadata database unreachable` (PostgreSQL text cannot hold a NUL, and a
retry would never succeed).

- in a body (`\\u0000` in a string or a member name): `422 validation_failed` with the member in `field`;
- in a path parameter: `404 not_found` (no id holds one);
- in a query parameter: `400 invalid_parameter` naming it; inside a list's `cursor`: `400 invalid_cursor`.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from mintlog.domain.keys import SCOPES
from tests.e2e.inprocess import ApiClient
from tests.e2e.test_security_matrix import api, database_url

pytestmark = pytest.mark.e2e
__all__ = ["api", "database_url"]  # the fixtures (the in-process API on SQLite and on PostgreSQL), re-used

NUL = "a\x00b"
IN_PATH = "a%00b"
RULE = {"name": "errors", "query": {"level": "error"}, "threshold": 1, "window_seconds": 60}


async def created(api: ApiClient, path: str, body: dict[str, Any]) -> str:
    response = await api.call("POST", path, api.admin_key, body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def answers(api: ApiClient, requests: list[tuple[str, str, Any]]) -> dict[str, tuple[int, str, object]]:
    """`(status, code, field or parameter)` of each request, keyed by `METHOD path`."""
    found: dict[str, tuple[int, str, object]] = {}
    for method, path, body in requests:
        response = await api.call(method, path, api.admin_key, body)
        problem = response.json()
        assert response.headers["content-type"] == "application/problem+json", (method, path, response.text)
        found[f"{method} {path}"] = (
            response.status_code,
            problem["code"],
            problem.get("field", problem.get("parameter")),
        )
    return found


async def test_a_nul_in_a_body_is_422_naming_the_member(api: ApiClient) -> None:
    tenant = await api.create_tenant("victim")
    rule = await created(api, "/v1/alerts/rules", RULE)
    incident = await created(api, "/v1/incidents", {"title": "fine"})
    bodies: list[tuple[str, str, Any, str]] = [
        ("POST", "/v1/incidents", {"title": NUL}, "title"),
        ("POST", f"/v1/incidents/{incident}/timeline", {"event_type": "comment", "content": NUL}, "content"),
        ("POST", "/v1/alerts/silences", {"rule_id": rule, "duration_seconds": 600, "comment": NUL}, "comment"),
        ("POST", "/v1/alerts/silences", {"labels": {"team": NUL}, "duration_seconds": 600}, "labels.team"),
        ("POST", "/v1/keys", {"name": NUL}, "name"),
        ("POST", f"/v1/admin/tenants/{tenant['id']}/keys", {"name": NUL}, "name"),
        ("POST", "/v1/alerts/rules", {**RULE, "name": NUL}, "name"),
        ("POST", "/v1/alerts/rules", {**RULE, "query": {"fields": {"user": NUL}}}, "query.fields.user"),
        ("PATCH", f"/v1/alerts/rules/{rule}", {"description": NUL}, "description"),
        ("POST", "/v1/admin/tenants", {"name": NUL}, "name"),
        ("POST", "/v1/admin/tenants", {"name": "fine", "plan": NUL}, "plan"),
        ("PATCH", f"/v1/admin/tenants/{tenant['id']}", {"plan": NUL}, "plan"),
        ("POST", "/v1/notifications/channels", {"name": NUL, "config": {"url": "https://example.com/"}}, "name"),
    ]

    found = await answers(api, [(method, path, body) for method, path, body, _field in bodies])

    assert found == {f"{method} {path}": (422, "validation_failed", field) for method, path, _body, field in bodies}
    tenants = (await api.call("GET", "/v1/admin/tenants", api.admin_key)).json()["items"]
    assert sorted(item["name"] for item in tenants) == ["Ops", "victim"], "nothing refused was stored"


async def test_a_nul_in_a_path_id_names_nothing(api: ApiClient) -> None:
    tenant = await api.create_tenant("victim")
    paths = [
        ("GET", f"/v1/incidents/{IN_PATH}"),
        ("PATCH", f"/v1/incidents/{IN_PATH}"),
        ("GET", f"/v1/alerts/rules/{IN_PATH}"),
        ("DELETE", f"/v1/alerts/rules/{IN_PATH}"),
        ("GET", f"/v1/keys/{IN_PATH}"),
        ("POST", f"/v1/keys/{IN_PATH}/rotate"),
        ("GET", f"/v1/alerts/silences/{IN_PATH}"),
        ("DELETE", f"/v1/alerts/silences/{IN_PATH}"),
        ("GET", f"/v1/admin/tenants/{IN_PATH}"),
        ("DELETE", f"/v1/admin/tenants/{IN_PATH}"),
        ("GET", f"/v1/admin/tenants/{IN_PATH}/keys"),
        ("GET", f"/v1/admin/tenants/{tenant['id']}/keys/a%00"),
        ("GET", f"/v1/notifications/channels/{IN_PATH}"),
        ("POST", f"/v1/notifications/deliveries/{IN_PATH}/retry"),
        ("GET", f"/v1/logs/extraction-rules/{IN_PATH}"),
    ]

    found = await answers(api, [(method, path, None) for method, path in paths])

    assert found == {f"{method} {path}": (404, "not_found", None) for method, path in paths}


def cursor(*values: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


async def test_a_nul_in_a_query_parameter_is_400_naming_it(api: ApiClient) -> None:
    parameters = [
        ("/v1/audit?actor=%00", "actor"),
        ("/v1/admin/audit?actor=%00", "actor"),
        ("/v1/admin/audit?tenant_id=a%00", "tenant_id"),
        ("/v1/notifications/deliveries?channel_id=%00", "channel_id"),
        ("/v1/notifications/deliveries?event_id=x%00", "event_id"),
    ]
    cursors = [
        f"/v1/admin/tenants?cursor={cursor(NUL)}",
        f"/v1/keys?cursor={cursor('2026-01-01T00:00:00Z', NUL)}",
        f"/v1/incidents?cursor={cursor('2026-01-01T00:00:00Z', NUL)}",
        f"/v1/audit?cursor={cursor('2026-01-01T00:00:00Z', NUL)}",
    ]

    found = await answers(api, [("GET", path, None) for path in [path for path, _name in parameters] + cursors])

    assert found == {
        **{f"GET {path}": (400, "invalid_parameter", name) for path, name in parameters},
        **{f"GET {path}": (400, "invalid_cursor", None) for path in cursors},
    }


async def test_a_refused_scope_on_a_path_with_a_nul_is_still_audited(api: ApiClient) -> None:
    tenant = await api.create_tenant("victim")
    reader = (await api.create_key(tenant["id"], scopes=[scope for scope in SCOPES if scope != "admin"]))["key"]

    refused = await api.call("DELETE", f"/v1/admin/tenants/{IN_PATH}", reader)

    assert refused.status_code == 403
    entries = (await api.call("GET", "/v1/admin/audit", api.admin_key, action="tenant.delete")).json()["items"]
    assert [(entry["result"], entry["target_id"]) for entry in entries] == [("denied", "a\N{REPLACEMENT CHARACTER}b")]
