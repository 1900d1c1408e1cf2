"""The management API against a real `mintlog run`: over HTTP, across the ingest and API servers, and across
instances sharing Redis; and the process log never holds a secret, even at debug level."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import MintlogProcess

pytestmark = pytest.mark.e2e

ONE_EVENT = {"events": [{"message": "managed", "service": "admin-e2e"}]}


def call(mintlog: MintlogProcess, method: str, path: str, key: str, body: Any = None, **params: str) -> httpx.Response:
    return httpx.request(
        method, f"{mintlog.api_url}{path}", headers={"X-API-Key": key}, json=body, params=params or None, timeout=30
    )


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    return response.json()


def test_the_admin_flow_over_http_and_no_secret_in_the_process_log(
    mintlog_factory: Callable[..., MintlogProcess],
) -> None:
    mintlog = mintlog_factory(MINTLOG_LOG_LEVEL="debug")
    mintlog.start()
    operator = mintlog.bootstrap("ops")
    tenant = created(call(mintlog, "POST", "/v1/admin/tenants", operator, {"name": "Acme Corp", "plan": "pro"}))
    assert tenant["id"] == "acme-corp"
    key = created(
        call(
            mintlog,
            "POST",
            "/v1/admin/tenants/acme-corp/keys",
            operator,
            {"name": "production-key", "rate_limit": 5000},
        )
    )
    assert mintlog.ingest(key["key"], ONE_EVENT).status_code == 202
    assert mintlog.wait_for_total(key["key"], {"service": "admin-e2e"}, 1)["total"] == 1
    child = created(call(mintlog, "POST", "/v1/keys", key["key"], {"name": "ci", "scopes": ["ingest:logs"]}))
    assert mintlog.ingest(child["key"], ONE_EVENT).status_code == 202
    refused = httpx.get(f"{mintlog.api_url}/v1/keys", params={"api_key": key["key"]}, timeout=30)
    assert refused.status_code == 400
    rotated = created(call(mintlog, "POST", f"/v1/keys/{child['id']}/rotate", key["key"], {"grace_seconds": 0}))
    # The ingest server shares the auth cache: the rotated-out key is refused there at once.
    assert mintlog.ingest(child["key"], ONE_EVENT).status_code == 401
    assert mintlog.ingest(rotated["key"], ONE_EVENT).status_code == 202
    assert call(mintlog, "DELETE", f"/v1/keys/{rotated['id']}", key["key"]).status_code == 200
    assert mintlog.ingest(rotated["key"], ONE_EVENT).status_code == 401
    assert call(mintlog, "PATCH", "/v1/admin/tenants/acme-corp", operator, {"suspended": True}).status_code == 200
    assert mintlog.ingest(key["key"], ONE_EVENT).status_code == 401
    listed = call(mintlog, "GET", "/v1/admin/tenants/acme-corp/keys", operator)
    assert [item["status"] for item in listed.json()["items"]] == ["active", "revoked", "revoked"]
    assert call(mintlog, "GET", "/v1/admin/audit", operator).json()["items"][0]["action"] == "tenant.update"
    assert mintlog.stop() == 0

    assert mintlog.log_path is not None
    log = mintlog.log_path.read_text(errors="replace")
    assert '"level":"debug"' in log, "the process must have logged at debug level"
    for secret in (operator, key["key"], child["key"], rotated["key"]):
        assert secret not in log
        assert secret[len("mlk_") :] not in log


def test_a_revocation_through_the_api_reaches_every_instance_sharing_redis(
    tmp_path: Path, mintlog_factory: Callable[..., MintlogProcess], redis_url: str
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    shared = {"MINTLOG_CACHE__URL": redis_url, "MINTLOG_DATABASE__URL": database_url}
    first = mintlog_factory(tmp_path / "first", **shared)
    first.start()
    second = mintlog_factory(tmp_path / "second", **shared)
    second.start()
    operator = first.bootstrap("ops")
    created(call(first, "POST", "/v1/admin/tenants", operator, {"name": "acme"}))
    one = created(call(first, "POST", "/v1/admin/tenants/acme/keys", operator, {"name": "one"}))
    two = created(call(first, "POST", "/v1/admin/tenants/acme/keys", operator, {"name": "two"}))
    for instance in (first, second):
        for key in (one, two):
            assert instance.ingest(key["key"], ONE_EVENT).status_code == 202  # cached in Redis

    assert call(first, "DELETE", f"/v1/admin/tenants/acme/keys/{one['id']}", operator).status_code == 200
    assert second.ingest(one["key"], ONE_EVENT).status_code == 401
    assert second.ingest(two["key"], ONE_EVENT).status_code == 202

    assert call(second, "PATCH", "/v1/admin/tenants/acme", operator, {"suspended": True}).status_code == 200
    assert first.ingest(two["key"], ONE_EVENT).status_code == 401
    assert call(first, "PATCH", "/v1/admin/tenants/acme", operator, {"suspended": False}).status_code == 200
    assert second.ingest(two["key"], ONE_EVENT).status_code == 202
