"""Tenants, keys and the audit log through the API, as an operator and as a tenant (in process, SQLite)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from mintlog.domain.keys import DEFAULT_SCOPES
from tests.e2e.inprocess import ApiClient, api_client

pytestmark = pytest.mark.e2e


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ApiClient]:
    async with api_client(tmp_path / "data") as client:
        yield client


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code, body
    return body


def in_future(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


async def audit(api: ApiClient, **filters: str) -> list[dict[str, Any]]:
    response = await api.call("GET", "/v1/admin/audit", api.admin_key, **filters)
    assert response.status_code == 200, response.text
    return response.json()["items"]


# Tenants


async def test_a_tenant_is_created_with_an_id_derived_from_its_name_or_given(api: ApiClient) -> None:
    created = await api.create_tenant("Acme Corp!", plan="pro", retention_days=90)
    assert (created["id"], created["name"], created["plan"], created["retention_days"]) == (
        "acme-corp",
        "Acme Corp!",
        "pro",
        90,
    )
    assert (created["suspended"], created["deleted_at"]) == (False, None)
    assert (await api.create_tenant("Whatever", id="tenant-42"))["id"] == "tenant-42"
    fetched = await api.call("GET", "/v1/admin/tenants/acme-corp", api.admin_key)
    assert fetched.json() == created


@pytest.mark.parametrize("tenant_id", ["Acme", "a_b", "a.b", "", "x" * 41, "ü", "a b", "../etc"])
async def test_a_tenant_id_outside_a_to_z_0_to_9_and_dash_is_a_422(api: ApiClient, tenant_id: str) -> None:
    refusal = problem(
        await api.call("POST", "/v1/admin/tenants", api.admin_key, {"name": "n", "id": tenant_id}),
        422,
        "validation_failed",
    )
    assert refusal["field"] == "id"


async def test_tenant_bounds_and_duplicates(api: ApiClient) -> None:
    await api.create_tenant("acme")
    problem(await api.call("POST", "/v1/admin/tenants", api.admin_key, {"name": "acme"}), 409, "tenant_exists")
    problem(await api.call("POST", "/v1/admin/tenants", api.admin_key, {"name": "  "}), 422, "validation_failed")
    for body in ({"name": "n", "retention_days": 0}, {"name": "n", "retention_days": 36501}, {"name": "n", "plan": ""}):
        problem(await api.call("POST", "/v1/admin/tenants", api.admin_key, body), 422, "validation_failed")
    problem(
        await api.http.post("/v1/admin/tenants", content=b'{"name": ', headers={"X-API-Key": api.admin_key}),
        400,
        "malformed_json",
    )
    problem(
        await api.http.post(
            "/v1/admin/tenants",
            content=b'{"name": "' + b"x" * 70_000 + b'"}',
            headers={"X-API-Key": api.admin_key},
        ),
        413,
        "body_too_large",
    )
    problem(await api.call("GET", "/v1/admin/tenants/nobody", api.admin_key), 404, "tenant_not_found")


async def test_tenants_are_listed_by_id_a_page_at_a_time(api: ApiClient) -> None:
    for name in ("delta", "alpha", "charlie", "bravo"):
        await api.create_tenant(name)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = (await api.call("GET", "/v1/admin/tenants", api.admin_key, **params)).json()
        seen += [tenant["id"] for tenant in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["alpha", "bravo", "charlie", "delta", "ops"]
    assert pages == 3
    problem(await api.call("GET", "/v1/admin/tenants", api.admin_key, limit="201"), 400, "invalid_limit")
    problem(await api.call("GET", "/v1/admin/tenants", api.admin_key, cursor="garbage!"), 400, "invalid_cursor")


async def test_patching_a_tenant_changes_only_what_is_sent(api: ApiClient) -> None:
    await api.create_tenant("acme", plan="free", retention_days=30)
    patched = (await api.call("PATCH", "/v1/admin/tenants/acme", api.admin_key, {"retention_days": 7})).json()
    assert (patched["plan"], patched["retention_days"], patched["suspended"]) == ("free", 7, False)
    assert patched["updated_at"] > patched["created_at"]
    problem(await api.call("PATCH", "/v1/admin/tenants/acme", api.admin_key, {}), 422, "validation_failed")
    problem(
        await api.call("PATCH", "/v1/admin/tenants/nobody", api.admin_key, {"plan": "pro"}), 404, "tenant_not_found"
    )


async def test_an_operator_cannot_lock_out_its_own_tenant(api: ApiClient) -> None:
    problem(await api.call("PATCH", "/v1/admin/tenants/ops", api.admin_key, {"suspended": True}), 409, "own_tenant")
    problem(await api.call("DELETE", "/v1/admin/tenants/ops", api.admin_key), 409, "own_tenant")
    assert (await api.call("GET", "/v1/admin/tenants", api.admin_key)).status_code == 200


async def test_a_deleted_tenant_is_kept_suspended_and_read_only(api: ApiClient) -> None:
    await api.create_tenant("acme")
    deleted = await api.call("DELETE", "/v1/admin/tenants/acme", api.admin_key)
    assert deleted.status_code == 202
    body = deleted.json()
    assert body["suspended"] is True
    assert body["deleted_at"] is not None
    assert (await api.call("GET", "/v1/admin/tenants/acme", api.admin_key)).json() == body
    again = await api.call("DELETE", "/v1/admin/tenants/acme", api.admin_key)
    assert (again.status_code, again.json()["deleted_at"]) == (202, body["deleted_at"])
    problem(
        await api.call("PATCH", "/v1/admin/tenants/acme", api.admin_key, {"suspended": False}), 409, "tenant_deleted"
    )
    problem(await api.call("POST", "/v1/admin/tenants/acme/keys", api.admin_key, {"name": "k"}), 409, "tenant_deleted")
    problem(await api.call("POST", "/v1/admin/tenants", api.admin_key, {"name": "acme"}), 409, "tenant_exists")
    problem(await api.call("DELETE", "/v1/admin/tenants/nobody", api.admin_key), 404, "tenant_not_found")


# Keys, by the operator


async def test_an_operators_key_gets_every_scope_but_admin_unless_told(api: ApiClient) -> None:
    await api.create_tenant("acme")
    key = await api.create_key("acme", name="production-key", rate_limit=5000)
    assert key["scopes"] == list(DEFAULT_SCOPES)
    assert (key["rate_limit"], key["expires_at"], key["status"]) == (5000, None, "active")
    assert key["key"].startswith(key["prefix"])
    assert (await api.call("GET", "/v1/keys", key["key"])).status_code == 200
    operator = await api.create_key("acme", scopes=["admin", "ingest:logs", "admin"])
    assert operator["scopes"] == ["ingest:logs", "admin"]
    problem(
        await api.call("POST", "/v1/admin/tenants/acme/keys", api.admin_key, {"name": "k", "scopes": ["root"]}),
        422,
        "validation_failed",
    )
    problem(
        await api.call(
            "POST", "/v1/admin/tenants/acme/keys", api.admin_key, {"name": "k", "expires_at": in_future(seconds=-1)}
        ),
        422,
        "validation_failed",
    )
    problem(
        await api.call("POST", "/v1/admin/tenants/nobody/keys", api.admin_key, {"name": "k"}), 404, "tenant_not_found"
    )
    problem(await api.call("GET", "/v1/admin/tenants/nobody/keys", api.admin_key), 404, "tenant_not_found")


async def test_an_expiry_beyond_what_a_time_can_hold_in_utc_is_a_422(api: ApiClient) -> None:
    """9999-12-31T23:59:59-14:00 is valid RFC 3339 but past year 9999 in UTC: it was a 503 (the database layer
    could not store it), on every endpoint that takes an `expires_at`."""
    await api.create_tenant("acme")
    owner = await api.create_key("acme", name="owner", scopes=["keys:write", "ingest:logs"])
    beyond = {"name": "k", "expires_at": "9999-12-31T23:59:59-14:00"}
    refusals = [
        await api.call("POST", "/v1/admin/tenants/acme/keys", api.admin_key, beyond),
        await api.call("POST", "/v1/keys", owner["key"], beyond),
        await api.call("POST", f"/v1/keys/{owner['id']}/rotate", owner["key"], {"expires_at": beyond["expires_at"]}),
    ]
    for refused in refusals:
        assert problem(refused, 422, "validation_failed")["field"] == "expires_at"
    latest = await api.create_key("acme", name="latest", expires_at="9999-12-31T23:59:59Z")
    assert latest["expires_at"] == "9999-12-31T23:59:59Z"


async def test_keys_are_listed_oldest_first_without_secrets_with_last_use(api: ApiClient) -> None:
    await api.create_tenant("acme")
    created = [await api.create_key("acme", name=f"k{index}") for index in range(3)]
    assert (await api.call("GET", "/v1/keys", created[0]["key"])).status_code == 200
    await api.runtime.authenticator.flush_last_used()
    first = (await api.call("GET", "/v1/admin/tenants/acme/keys", api.admin_key, limit="2")).json()
    rest = (
        await api.call("GET", "/v1/admin/tenants/acme/keys", api.admin_key, limit="2", cursor=first["next_cursor"])
    ).json()
    listed = first["items"] + rest["items"]
    assert [key["id"] for key in listed] == [key["id"] for key in created]
    assert rest["next_cursor"] is None
    assert listed[0]["last_used_at"] is not None
    assert listed[1]["last_used_at"] is None
    assert all("key" not in key and "key_hash" not in key for key in listed)


# Keys, by the tenant itself


async def test_a_tenant_key_creates_keys_with_at_most_what_it_holds(api: ApiClient) -> None:
    await api.create_tenant("acme")
    expires = in_future(days=7)
    parent = await api.create_key(
        "acme", name="parent", scopes=["keys:write", "ingest:logs"], rate_limit=600, expires_at=expires
    )
    child = await api.call("POST", "/v1/keys", parent["key"], {"name": "child"})
    assert child.status_code == 201, child.text
    body = child.json()
    assert (body["scopes"], body["rate_limit"], body["tenant_id"]) == (["ingest:logs", "keys:write"], 600, "acme")
    assert body["expires_at"] == parent["expires_at"]
    narrower = await api.call(
        "POST",
        "/v1/keys",
        parent["key"],
        {"name": "ingest", "scopes": ["ingest:logs"], "rate_limit": 60, "expires_at": in_future(days=1)},
    )
    assert narrower.status_code == 201
    refusals = [
        ({"name": "x", "scopes": ["search:logs"]}, "scope_not_held", "search:logs"),
        ({"name": "x", "scopes": ["admin"]}, "scope_not_held", "admin"),
        ({"name": "x", "rate_limit": 601}, "rate_limit_not_held", None),
        ({"name": "x", "expires_at": in_future(days=8)}, "expiry_not_held", None),
    ]
    for request, code, scope in refusals:
        refusal = problem(await api.call("POST", "/v1/keys", parent["key"], request), 403, code)
        if scope is not None:
            assert refusal["required_scope"] == scope
            assert scope in refusal["detail"]
    listed = (await api.call("GET", "/v1/keys", parent["key"])).json()["items"]
    assert len(listed) == 3


async def test_a_tenant_key_cannot_revoke_or_rotate_a_key_with_more_scopes(api: ApiClient) -> None:
    await api.create_tenant("acme")
    owner = await api.create_key("acme", name="owner")
    limited = await api.create_key("acme", name="limited", scopes=["keys:write", "ingest:logs"])
    for method, path in (("DELETE", f"/v1/keys/{owner['id']}"), ("POST", f"/v1/keys/{owner['id']}/rotate")):
        refusal = problem(await api.call(method, path, limited["key"], {}), 403, "scope_not_held")
        assert refusal["required_scope"] == "search:logs"
    assert (await api.call("GET", "/v1/keys", owner["key"])).status_code == 200
    # The other way round is fine, and a key may revoke itself.
    assert (await api.call("POST", f"/v1/keys/{limited['id']}/rotate", owner["key"], {})).status_code == 201
    assert (await api.call("DELETE", f"/v1/keys/{owner['id']}", owner["key"])).status_code == 200
    problem(await api.call("GET", "/v1/keys", owner["key"]), 401, "unauthorized")


async def test_a_revoked_or_expired_key_cannot_be_rotated(api: ApiClient) -> None:
    await api.create_tenant("acme")
    owner = await api.create_key("acme", name="owner")
    victim = await api.create_key("acme", name="victim")
    await api.call("DELETE", f"/v1/keys/{victim['id']}", owner["key"])
    problem(await api.call("POST", f"/v1/keys/{victim['id']}/rotate", owner["key"]), 409, "key_revoked")
    problem(
        await api.call("POST", f"/v1/keys/{owner['id']}/rotate", owner["key"], {"grace_seconds": -1}),
        422,
        "validation_failed",
    )
    problem(
        await api.call("POST", f"/v1/keys/{owner['id']}/rotate", owner["key"], {"grace_seconds": 31 * 86400}),
        422,
        "validation_failed",
    )


# Audit log


async def test_every_management_write_is_audited_refused_ones_included(api: ApiClient) -> None:
    await api.create_tenant("acme")
    owner = await api.create_key("acme", name="owner", scopes=["keys:write", "audit:read", "ingest:logs"])
    ingest = await api.create_key("acme", name="ingest", scopes=["ingest:logs"])
    await api.call("POST", "/v1/admin/tenants", api.admin_key, {"name": "acme"})  # 409
    await api.call("POST", "/v1/admin/tenants", owner["key"], {"name": "evil"})  # 403 by the guard
    await api.call("POST", "/v1/keys", ingest["key"], {"name": "x"})  # 403 by the guard
    await api.call("POST", "/v1/keys", owner["key"], {"name": "x", "scopes": ["admin"]})  # 403 by the handler
    await api.call("POST", "/v1/keys", owner["key"], {"name": "x", "colour": "red"})  # 422
    await api.call("DELETE", "/v1/keys/key_nope", owner["key"])  # 404
    rotated = (await api.call("POST", f"/v1/keys/{ingest['id']}/rotate", owner["key"], {"grace_seconds": 60})).json()
    await api.call("PATCH", "/v1/admin/tenants/acme", api.admin_key, {"plan": "pro"})
    await api.call("GET", "/v1/keys", owner["key"])  # a read: not audited

    entries = await audit(api)
    summary = [(entry["action"], entry["result"], entry["detail"].get("code")) for entry in entries]
    assert summary == [
        ("tenant.update", "ok", None),
        ("key.rotate", "ok", None),
        ("key.revoke", "error", "key_not_found"),
        ("key.create", "error", "validation_failed"),
        ("key.create", "denied", "scope_not_held"),
        ("key.create", "denied", "missing_scope"),
        ("tenant.create", "denied", "missing_scope"),
        ("tenant.create", "error", "tenant_exists"),
        ("key.create", "ok", None),
        ("key.create", "ok", None),
        ("tenant.create", "ok", None),
    ]
    rotate = entries[1]
    assert (rotate["actor_key_id"], rotate["actor_key_prefix"], rotate["tenant_id"]) == (
        owner["id"],
        owner["prefix"],
        "acme",
    )
    assert (rotate["target_type"], rotate["target_id"]) == ("api_key", ingest["id"])
    assert rotate["detail"]["new_key_id"] == rotated["id"]
    assert rotate["detail"]["grace_seconds"] == 60
    denied_by_guard = entries[6]
    assert (denied_by_guard["tenant_id"], denied_by_guard["actor_tenant_id"]) == ("acme", "acme")
    assert denied_by_guard["detail"]["status"] == 403
    for entry in entries:
        for secret in (owner["key"], ingest["key"], rotated["key"], api.admin_key):
            assert secret not in str(entry)


async def test_the_audit_log_filters_and_pages(api: ApiClient) -> None:
    await api.create_tenant("acme")
    await api.create_tenant("beta")
    owner = await api.create_key("acme", name="owner")
    await api.create_key("beta", name="b")
    before_revoke = datetime.now(UTC).isoformat()
    victim = await api.create_key("acme", name="victim")
    await api.call("DELETE", f"/v1/keys/{victim['id']}", owner["key"])

    assert [entry["action"] for entry in await audit(api, actor=owner["id"])] == ["key.revoke"]
    assert [entry["action"] for entry in await audit(api, actor=owner["prefix"])] == ["key.revoke"]
    assert [entry["target_id"] for entry in await audit(api, action="tenant.create")] == ["beta", "acme"]
    assert len(await audit(api, tenant_id="beta")) == 2
    assert [entry["action"] for entry in await audit(api, **{"from": before_revoke})] == ["key.revoke", "key.create"]
    assert len(await audit(api, to=before_revoke)) == 4
    assert await audit(api, result="denied") == []
    every = await audit(api)
    first = (await api.call("GET", "/v1/admin/audit", api.admin_key, limit="4")).json()
    rest = (await api.call("GET", "/v1/admin/audit", api.admin_key, limit="4", cursor=first["next_cursor"])).json()
    assert first["items"] + rest["items"] == every
    assert rest["next_cursor"] is None
    problem(await api.call("GET", "/v1/admin/audit", api.admin_key, action="key.explode"), 400, "invalid_filter")
    problem(await api.call("GET", "/v1/admin/audit", api.admin_key, **{"from": "yesterday"}), 400, "invalid_time")
    out_of_range = {"from": "9999-12-31T23:59:59-14:00"}  # past year 9999 in UTC: a 500 before
    problem(await api.call("GET", "/v1/admin/audit", api.admin_key, **out_of_range), 400, "invalid_time")
    problem(
        await api.call("GET", "/v1/admin/audit", api.admin_key, **{"from": "now", "to": "now-1h"}), 400, "invalid_time"
    )


async def test_a_tenant_reads_only_its_own_audit_log(api: ApiClient) -> None:
    await api.create_tenant("acme")
    await api.create_tenant("beta")
    acme = await api.create_key("acme", name="acme-owner")
    beta = await api.create_key("beta", name="beta-owner")
    await api.call("POST", "/v1/keys", acme["key"], {"name": "acme-child"})
    await api.call("POST", "/v1/keys", beta["key"], {"name": "beta-child"})
    entries = (await api.call("GET", "/v1/audit", acme["key"])).json()["items"]
    assert [(entry["action"], entry["tenant_id"]) for entry in entries] == [
        ("key.create", "acme"),
        ("key.create", "acme"),
        ("tenant.create", "acme"),
    ]
    assert [entry["detail"]["name"] for entry in entries[:2]] == ["acme-child", "acme-owner"]
    no_scope = await api.create_key("acme", name="no-audit", scopes=["ingest:logs"])
    refusal = problem(await api.call("GET", "/v1/audit", no_scope["key"]), 403, "missing_scope")
    assert refusal["required_scope"] == "audit:read"
