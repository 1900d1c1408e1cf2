"""The security matrix of the API, on the real app, guards, auth cache and database (SQLite and PostgreSQL).

- missing, malformed, unknown, revoked and expired keys, and keys of suspended or deleted tenants, all get the
  same 401 body;
- a missing scope is a 403 naming the scope;
- another tenant's ids are a 404 on every verb of every resource, exactly like ids that do not exist;
- a `tenant_id` in a body or a query is refused, never obeyed;
- read-only or unknown members in writes are a 422 naming them;
- a key in the query string is a 400, and the request is not performed;
- secrets never appear in logs, nor in any answer but the one that creates them;
- revocation and suspension take effect on the very next request; rotation keeps the old key working for
  its grace time only.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from mintlog.domain.keys import generate_api_key
from mintlog.domain.tenants import ApiKey
from tests.e2e.inprocess import ApiClient, api_client

pytestmark = pytest.mark.e2e

PROBLEM = "application/problem+json"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    """None: SQLite in the data directory, the embedded default."""
    return None if request.param == "sqlite" else request.getfixturevalue("postgres_database_url")


@pytest.fixture
async def api(database_url: str | None, tmp_path: Path) -> AsyncIterator[ApiClient]:
    async with api_client(tmp_path / "data", database_url) as client:
        yield client


async def two_tenants(api: ApiClient) -> tuple[dict[str, Any], dict[str, Any]]:
    """Tenants `alpha` and `beta`, each with a key holding every scope but `admin` (the default)."""
    await api.create_tenant("alpha")
    await api.create_tenant("beta")
    return await api.create_key("alpha", name="alpha-owner"), await api.create_key("beta", name="beta-owner")


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert (body["status"], body["code"]) == (status, code), body
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in body.items() if name != "request_id"}


# One request per resource and verb of the management API, with a body a valid caller could send.
def management_requests(tenant_id: str, key_id: str) -> list[tuple[str, str, Any]]:
    return [
        ("POST", "/v1/admin/tenants", {"name": "gamma"}),
        ("GET", "/v1/admin/tenants", None),
        ("GET", f"/v1/admin/tenants/{tenant_id}", None),
        ("PATCH", f"/v1/admin/tenants/{tenant_id}", {"plan": "pro"}),
        ("DELETE", f"/v1/admin/tenants/{tenant_id}", None),
        ("POST", f"/v1/admin/tenants/{tenant_id}/keys", {"name": "k"}),
        ("GET", f"/v1/admin/tenants/{tenant_id}/keys", None),
        ("GET", f"/v1/admin/tenants/{tenant_id}/keys/{key_id}", None),
        ("DELETE", f"/v1/admin/tenants/{tenant_id}/keys/{key_id}", None),
        ("POST", f"/v1/admin/tenants/{tenant_id}/keys/{key_id}/rotate", {}),
        ("GET", "/v1/admin/audit", None),
        ("POST", "/v1/keys", {"name": "k"}),
        ("GET", "/v1/keys", None),
        ("GET", f"/v1/keys/{key_id}", None),
        ("DELETE", f"/v1/keys/{key_id}", None),
        ("POST", f"/v1/keys/{key_id}/rotate", {}),
        ("GET", "/v1/audit", None),
        ("POST", "/v1/logs/search", {}),
    ]


async def stored_key(api: ApiClient, tenant_id: str, **state: Any) -> str:
    """A key written straight to the database in a state the API would not create (e.g. already expired)."""
    generated = generate_api_key()
    await api.runtime.metadata.create_api_key(
        ApiKey(
            id=f"key_{secrets.token_hex(8)}",
            tenant_id=tenant_id,
            name="stored",
            key_hash=generated.key_hash,
            prefix=generated.prefix,
            scopes=("keys:write", "audit:read", "search:logs"),
            created_at=datetime.now(UTC) - timedelta(days=2),
            **state,
        )
    )
    return generated.secret


async def test_every_kind_of_bad_key_gets_the_same_401(api: ApiClient) -> None:
    alpha, _ = await two_tenants(api)
    revoked = await api.create_key("alpha", name="to-revoke")
    assert (await api.call("GET", "/v1/keys", revoked["key"])).status_code == 200  # cached as valid
    assert (await api.call("DELETE", f"/v1/keys/{revoked['id']}", alpha["key"])).status_code == 200
    await api.create_tenant("suspended")
    suspended = await api.create_key("suspended")
    assert (await api.call("PATCH", "/v1/admin/tenants/suspended", api.admin_key, {"suspended": True})).is_success
    await api.create_tenant("deleted")
    deleted = await api.create_key("deleted")
    assert (await api.call("DELETE", "/v1/admin/tenants/deleted", api.admin_key)).status_code == 202
    bad_keys = {
        "missing": None,
        "empty": "",
        "malformed": "not-a-key",
        "bad-checksum": alpha["key"][:-1] + ("A" if alpha["key"][-1] != "A" else "B"),
        "unknown": generate_api_key().secret,
        "revoked": revoked["key"],
        "expired": await stored_key(api, "alpha", expires_at=datetime.now(UTC) - timedelta(seconds=1)),
        "suspended-tenant": suspended["key"],
        "deleted-tenant": deleted["key"],
    }
    bodies: set[tuple[tuple[str, Any], ...]] = set()
    for method, path, body in management_requests("alpha", alpha["id"]):
        for name, key in bad_keys.items():
            response = await api.call(method, path, key, body)
            refusal = without_request_id(problem(response, 401, "unauthorized"))
            assert response.headers["www-authenticate"], name
            bodies.add(tuple(sorted(refusal.items())))
    assert len(bodies) == 1, bodies


async def test_a_missing_scope_is_a_403_naming_it(api: ApiClient) -> None:
    alpha, _ = await two_tenants(api)
    ingest_only = await api.create_key("alpha", name="ingest", scopes=["ingest:logs"])
    for method, path, body in management_requests("alpha", alpha["id"]):
        required = "admin" if path.startswith("/v1/admin/") else "search:logs" if "logs" in path else None
        required = required or ("audit:read" if path == "/v1/audit" else "keys:write")
        refusal = problem(await api.call(method, path, ingest_only["key"], body), 403, "missing_scope")
        assert refusal["required_scope"] == required
        assert required in refusal["detail"]


async def test_another_tenants_ids_are_404_on_every_verb_like_ids_that_do_not_exist(api: ApiClient) -> None:
    alpha, beta = await two_tenants(api)
    requests = [
        ("GET", "/v1/keys/{id}", None),
        ("DELETE", "/v1/keys/{id}", None),
        ("POST", "/v1/keys/{id}/rotate", {"grace_seconds": 0}),
    ]
    for method, template, body in requests:
        foreign = problem(
            await api.call(method, template.format(id=beta["id"]), alpha["key"], body), 404, "key_not_found"
        )
        missing = problem(
            await api.call(method, template.format(id="key_nope"), alpha["key"], body), 404, "key_not_found"
        )
        assert foreign["detail"].replace(beta["id"], "?") == missing["detail"].replace("key_nope", "?")
    # The operator's routes keep tenants apart too: beta's key is not found under alpha.
    for method, path, body in management_requests("alpha", beta["id"]):
        if "/keys/" in path and path.startswith("/v1/admin/"):
            problem(await api.call(method, path, api.admin_key, body), 404, "key_not_found")
    # Nothing happened to beta's key, and it never showed up in alpha's lists.
    assert (await api.call("GET", "/v1/keys", beta["key"])).status_code == 200
    listed = (await api.call("GET", "/v1/keys", alpha["key"])).json()["items"]
    assert beta["id"] not in {key["id"] for key in listed}
    beta_keys = (await api.call("GET", "/v1/keys", beta["key"])).json()["items"]
    assert [key["status"] for key in beta_keys] == ["active"]
    # Tenants are an operator's resource: a tenant's key cannot reach them at all.
    for method in ("GET", "PATCH", "DELETE"):
        problem(await api.call(method, "/v1/admin/tenants/beta", alpha["key"], {"plan": "x"}), 403, "missing_scope")


async def test_a_tenant_id_in_a_body_or_a_query_is_refused_never_obeyed(api: ApiClient) -> None:
    alpha, beta = await two_tenants(api)
    refusal = problem(
        await api.call("POST", "/v1/keys", alpha["key"], {"name": "sneaky", "tenant_id": "beta"}),
        422,
        "validation_failed",
    )
    assert refusal["field"] == "tenant_id"
    refusal = problem(
        await api.call("POST", f"/v1/keys/{alpha['id']}/rotate", alpha["key"], {"tenant_id": "beta"}),
        422,
        "validation_failed",
    )
    assert refusal["field"] == "tenant_id"
    for path in ("/v1/keys", "/v1/audit"):
        refusal = problem(await api.call("GET", path, alpha["key"], tenant_id="beta"), 400, "unknown_parameter")
        assert refusal["parameter"] == "tenant_id"
    problem(await api.call("POST", "/v1/logs/search", alpha["key"], {"tenant_id": "beta"}), 400, "invalid_search")
    beta_keys = (await api.call("GET", "/v1/keys", beta["key"])).json()["items"]
    assert [key["id"] for key in beta_keys] == [beta["id"]]
    alpha_keys = (await api.call("GET", "/v1/keys", alpha["key"])).json()["items"]
    assert [key["id"] for key in alpha_keys] == [alpha["id"]]


WRITES_WITH_BAD_MEMBERS = [
    ("POST", "/v1/admin/tenants", {"name": "gamma", "created_at": "2026-01-01T00:00:00Z"}, "created_at"),
    ("POST", "/v1/admin/tenants", {"name": "gamma", "suspended": True}, "suspended"),
    ("POST", "/v1/admin/tenants", {"name": "gamma", "owner": "me"}, "owner"),
    ("PATCH", "/v1/admin/tenants/alpha", {"id": "other"}, "id"),
    ("PATCH", "/v1/admin/tenants/alpha", {"name": "Renamed"}, "name"),
    ("PATCH", "/v1/admin/tenants/alpha", {"deleted_at": None}, "deleted_at"),
    ("POST", "/v1/admin/tenants/alpha/keys", {"name": "k", "key": "mlk_mine"}, "key"),
    ("POST", "/v1/admin/tenants/alpha/keys", {"name": "k", "prefix": "mlk_x"}, "prefix"),
    ("POST", "/v1/keys", {"name": "k", "revoked_at": None}, "revoked_at"),
    ("POST", "/v1/keys", {"name": "k", "last_used_at": None}, "last_used_at"),
    ("POST", "/v1/keys", {"name": "k", "id": "key_mine"}, "id"),
    ("POST", "/v1/keys/{key_id}/rotate", {"scopes": ["admin"]}, "scopes"),
    ("POST", "/v1/admin/tenants/alpha/keys/{key_id}/rotate", {"name": "new"}, "name"),
]


async def test_read_only_or_unknown_members_in_writes_are_a_422_naming_them(api: ApiClient) -> None:
    alpha, _ = await two_tenants(api)
    for method, path, body, field in WRITES_WITH_BAD_MEMBERS:
        key = alpha["key"] if path.startswith("/v1/keys") else api.admin_key
        refusal = problem(await api.call(method, path.format(key_id=alpha["id"]), key, body), 422, "validation_failed")
        assert refusal["field"] == field, (path, refusal)
        assert f"`{field}`" in refusal["detail"]
    tenants = (await api.call("GET", "/v1/admin/tenants", api.admin_key)).json()["items"]
    assert [tenant["id"] for tenant in tenants] == ["alpha", "beta", "ops"]
    assert [key["status"] for key in (await api.call("GET", "/v1/keys", alpha["key"])).json()["items"]] == ["active"]


async def test_a_key_in_the_query_string_is_a_400_and_nothing_is_done(api: ApiClient) -> None:
    alpha, _ = await two_tenants(api)
    for method, path, body in management_requests("beta", alpha["id"]):
        for name in ("api_key", "key", "token"):
            response = await api.http.request(method, path, params={name: api.admin_key}, json=body)
            problem(response, 400, "key_in_query")
    tenants = (await api.call("GET", "/v1/admin/tenants", api.admin_key)).json()["items"]
    assert [tenant["id"] for tenant in tenants] == ["alpha", "beta", "ops"]
    assert (await api.call("GET", "/v1/keys", alpha["key"])).status_code == 200


async def test_secrets_never_show_up_in_logs_or_after_creation(
    api: ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    alpha, _ = await two_tenants(api)
    child = (await api.call("POST", "/v1/keys", alpha["key"], {"name": "child"})).json()
    rotated = (await api.call("POST", f"/v1/keys/{child['id']}/rotate", alpha["key"], {"grace_seconds": 0})).json()
    await api.call("GET", "/v1/keys", child["key"])  # refused: rotated with no grace
    await api.call("GET", "/v1/keys", api.admin_key, api_key=rotated["key"])  # refused: key in the query
    await api.call("DELETE", f"/v1/keys/{rotated['id']}", alpha["key"])
    all_secrets = [alpha["key"], child["key"], rotated["key"], api.admin_key]
    reads = [
        await api.call("GET", "/v1/keys", alpha["key"]),
        await api.call("GET", f"/v1/keys/{child['id']}", alpha["key"]),
        await api.call("GET", "/v1/admin/tenants/alpha/keys", api.admin_key),
        await api.call("GET", f"/v1/admin/tenants/alpha/keys/{rotated['id']}", api.admin_key),
        await api.call("GET", "/v1/audit", alpha["key"]),
        await api.call("GET", "/v1/admin/audit", api.admin_key),
    ]
    for response in reads:
        assert response.status_code == 200, response.text
        for secret in all_secrets:
            assert secret not in response.text
            assert secret[len("mlk_") :] not in response.text
        assert "key_hash" not in response.text
    assert caplog.records, "the test must capture the logs it checks"
    # The test's own HTTP client logs the URLs it requests (a key in the query among them); the rest is the
    # server side: Mintlog, Litestar, SQLAlchemy and the database drivers, at DEBUG.
    server_lines = [
        record.getMessage() for record in caplog.records if not record.name.startswith(("httpx", "httpcore"))
    ]
    server_log = "\n".join(server_lines)
    for secret in all_secrets:
        assert secret not in server_log
        assert secret[len("mlk_") :] not in server_log


async def test_revoking_refuses_the_key_on_its_next_request(api: ApiClient) -> None:
    alpha, _ = await two_tenants(api)
    victim = await api.create_key("alpha", name="leaked")
    assert (await api.call("GET", "/v1/keys", victim["key"])).status_code == 200  # now cached
    revoked = await api.call("DELETE", f"/v1/keys/{victim['id']}", alpha["key"])
    assert revoked.status_code == 200
    assert (revoked.json()["status"], revoked.json()["revoked_at"] is not None) == ("revoked", True)
    problem(await api.call("GET", "/v1/keys", victim["key"]), 401, "unauthorized")
    problem(await api.call("POST", "/v1/logs/search", victim["key"], {}), 401, "unauthorized")
    # Revoking again is harmless and keeps the first time.
    again = await api.call("DELETE", f"/v1/keys/{victim['id']}", alpha["key"])
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]


async def test_suspending_a_tenant_refuses_all_its_keys_on_their_next_request(api: ApiClient) -> None:
    alpha, beta = await two_tenants(api)
    second = await api.create_key("alpha", name="second")
    for key in (alpha["key"], second["key"], beta["key"]):
        assert (await api.call("GET", "/v1/keys", key)).status_code == 200
    suspended = await api.call("PATCH", "/v1/admin/tenants/alpha", api.admin_key, {"suspended": True})
    assert suspended.json()["suspended"] is True
    for key in (alpha["key"], second["key"]):
        problem(await api.call("GET", "/v1/keys", key), 401, "unauthorized")
    assert (await api.call("GET", "/v1/keys", beta["key"])).status_code == 200
    await api.call("PATCH", "/v1/admin/tenants/alpha", api.admin_key, {"suspended": False})
    for key in (alpha["key"], second["key"]):
        assert (await api.call("GET", "/v1/keys", key)).status_code == 200
    deleted = await api.call("DELETE", "/v1/admin/tenants/alpha", api.admin_key)
    assert deleted.status_code == 202
    for key in (alpha["key"], second["key"]):
        problem(await api.call("GET", "/v1/keys", key), 401, "unauthorized")


async def test_rotation_keeps_the_old_key_for_its_grace_time_only(api: ApiClient) -> None:
    alpha, _ = await two_tenants(api)
    old = await api.create_key("alpha", name="ci", scopes=["search:logs", "keys:write"], rate_limit=120)
    assert (await api.call("GET", "/v1/keys", old["key"])).status_code == 200  # cached without an expiry
    response = await api.call("POST", f"/v1/keys/{old['id']}/rotate", alpha["key"], {"grace_seconds": 1})
    assert response.status_code == 201, response.text
    new = response.json()
    assert (new["name"], new["scopes"], new["rate_limit"], new["rotated_from"]) == (
        "ci",
        ["search:logs", "keys:write"],
        120,
        old["id"],
    )
    assert new["key"] != old["key"]
    assert new["previous"]["expires_at"] is not None
    for key in (old["key"], new["key"]):
        assert (await api.call("GET", "/v1/keys", key)).status_code == 200
    await asyncio.sleep(1.1)
    problem(await api.call("GET", "/v1/keys", old["key"]), 401, "unauthorized")
    assert (await api.call("GET", "/v1/keys", new["key"])).status_code == 200
    # Without grace, the old key stops at once.
    response = await api.call("POST", f"/v1/keys/{new['id']}/rotate", alpha["key"], {"grace_seconds": 0})
    newest = response.json()
    assert newest["previous"]["status"] == "revoked"
    problem(await api.call("GET", "/v1/keys", new["key"]), 401, "unauthorized")
    assert (await api.call("GET", "/v1/keys", newest["key"])).status_code == 200


async def incident_flow_objects(api: ApiClient, key: str) -> dict[str, str]:
    """A rule, a channel, a silence and an incident of the key's tenant; their ids by kind."""
    channel = await api.call(
        "POST",
        "/v1/notifications/channels",
        key,
        {"name": "team", "channel_type": "webhook", "config": {"url": "https://hooks.example.com/x", "secret": "s"}},
    )
    rule = await api.call(
        "POST",
        "/v1/alerts/rules",
        key,
        {"name": "r", "query": {"level": "error"}, "threshold": 5, "window_seconds": 300},
    )
    silence = await api.call("POST", "/v1/alerts/silences", key, {"labels": {"service": "x"}, "duration_seconds": 60})
    incident = await api.call("POST", "/v1/incidents", key, {"title": "Database outage", "severity": "critical"})
    for response in (channel, rule, silence, incident):
        assert response.status_code == 201, response.text
    return {
        "channel": channel.json()["id"],
        "rule": rule.json()["id"],
        "silence": silence.json()["id"],
        "incident": incident.json()["id"],
    }


# (method, path template, body, scope, the 404 code when the template names an object)
INCIDENT_FLOW_REQUESTS: list[tuple[str, str, Any, str, str | None]] = [
    (
        "POST",
        "/v1/alerts/rules",
        {"name": "r2", "query": {}, "threshold": 1, "window_seconds": 60},
        "alerts:write",
        None,
    ),
    ("GET", "/v1/alerts/rules", None, "alerts:read", None),
    ("GET", "/v1/alerts/rules/{rule}", None, "alerts:read", "rule_not_found"),
    ("PUT", "/v1/alerts/rules/{rule}", {"threshold": 7}, "alerts:write", "rule_not_found"),
    ("PATCH", "/v1/alerts/rules/{rule}", {"threshold": 8}, "alerts:write", "rule_not_found"),
    ("DELETE", "/v1/alerts/rules/{rule}", None, "alerts:write", "rule_not_found"),
    ("POST", "/v1/alerts/silences", {"labels": {"a": "b"}, "duration_seconds": 60}, "alerts:write", None),
    ("GET", "/v1/alerts/silences", None, "alerts:read", None),
    ("GET", "/v1/alerts/silences/{silence}", None, "alerts:read", "silence_not_found"),
    ("DELETE", "/v1/alerts/silences/{silence}", None, "alerts:write", "silence_not_found"),
    ("GET", "/v1/notifications/channels", None, "notifications:read", None),
    ("GET", "/v1/notifications/channels/{channel}", None, "notifications:read", "channel_not_found"),
    ("PATCH", "/v1/notifications/channels/{channel}", {"name": "n"}, "notifications:write", "channel_not_found"),
    ("POST", "/v1/notifications/channels/{channel}/test", None, "notifications:write", "channel_not_found"),
    ("DELETE", "/v1/notifications/channels/{channel}", None, "notifications:write", "channel_not_found"),
    ("GET", "/v1/notifications/deliveries", None, "notifications:read", None),
    ("POST", "/v1/incidents", {"title": "t", "severity": "high"}, "incidents:write", None),
    ("GET", "/v1/incidents", None, "incidents:read", None),
    ("GET", "/v1/incidents/{incident}", None, "incidents:read", "incident_not_found"),
    (
        "POST",
        "/v1/incidents/{incident}/timeline",
        {"event_type": "comment", "content": "looking"},
        "incidents:write",
        "incident_not_found",
    ),
    ("PATCH", "/v1/incidents/{incident}", {"status": "acknowledged"}, "incidents:write", "incident_not_found"),
]


async def test_the_incident_flow_routes_keep_the_matrix(api: ApiClient) -> None:
    """401 alike for bad keys, 403 naming the scope, 404 for another tenant's ids exactly as for missing ones,
    400 for a key in the query string, and nothing of the other tenant changes."""
    alpha, beta = await two_tenants(api)
    ingest_only = await api.create_key("alpha", name="ingest", scopes=["ingest:logs"])
    mine = await incident_flow_objects(api, alpha["key"])
    theirs = await incident_flow_objects(api, beta["key"])
    missing = {kind: f"{object_id[:4]}nope" for kind, object_id in theirs.items()}
    before = {
        path: (await api.call("GET", path, beta["key"])).json()
        for path in (f"/v1/alerts/rules/{theirs['rule']}", f"/v1/incidents/{theirs['incident']}")
    }
    bodies: set[tuple[tuple[str, Any], ...]] = set()
    for method, template, body, scope, not_found in INCIDENT_FLOW_REQUESTS:
        path = template.format(**mine)
        for key in (None, "not-a-key", generate_api_key().secret):
            bodies.add(
                tuple(
                    sorted(
                        without_request_id(
                            problem(await api.call(method, path, key, body), 401, "unauthorized")
                        ).items()
                    )
                )
            )
        refusal = problem(await api.call(method, path, ingest_only["key"], body), 403, "missing_scope")
        assert refusal["required_scope"] == scope, (method, template)
        problem(await api.http.request(method, path, params={"api_key": alpha["key"]}, json=body), 400, "key_in_query")
        if not_found is not None:
            foreign_path, missing_path = template.format(**theirs), template.format(**missing)
            foreign = problem(await api.call(method, foreign_path, alpha["key"], body), 404, not_found)
            absent = problem(await api.call(method, missing_path, alpha["key"], body), 404, not_found)
            kind = template.split("{", 1)[1].split("}", 1)[0]
            assert foreign["detail"].replace(theirs[kind], "?") == absent["detail"].replace(missing[kind], "?")
    assert len(bodies) == 1, bodies
    for path, answer in before.items():
        assert (await api.call("GET", path, beta["key"])).json() == answer
