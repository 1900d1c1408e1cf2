"""The archive's API on the real app and database (SQLite and PostgreSQL): the tenant's archive retention
through the admin API, the `archive:read` scope, tenant isolation and paging of `GET /v1/archive`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mintlog.ports.archive import ArchiveObject
from mintlog.roles.pipeline.archive import object_key
from tests.e2e.inprocess import ApiClient, api_client

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    return None if request.param == "sqlite" else request.getfixturevalue("postgres_database_url")


@pytest.fixture
async def api(database_url: str | None, tmp_path: Path) -> AsyncIterator[ApiClient]:
    async with api_client(tmp_path / "data", database_url) as client:
        yield client


async def test_archive_retention_is_its_own_tenant_setting(api: ApiClient) -> None:
    created = await api.create_tenant("acme", retention_days=30, archive_retention_days=2555)
    assert (created["retention_days"], created["archive_retention_days"]) == (30, 2555)
    assert (await api.create_tenant("globex"))["archive_retention_days"] is None  # the default setting
    patched = await api.call("PATCH", "/v1/admin/tenants/acme", api.admin_key, {"retention_days": 7})
    assert (patched.json()["retention_days"], patched.json()["archive_retention_days"]) == (7, 2555)
    patched = await api.call("PATCH", "/v1/admin/tenants/acme", api.admin_key, {"archive_retention_days": 365})
    assert (patched.json()["retention_days"], patched.json()["archive_retention_days"]) == (7, 365)
    reset = await api.call("PATCH", "/v1/admin/tenants/acme", api.admin_key, {"archive_retention_days": None})
    assert reset.json()["archive_retention_days"] is None
    for bad in (0, -1, "30"):
        refused = await api.call("PATCH", "/v1/admin/tenants/acme", api.admin_key, {"archive_retention_days": bad})
        assert (refused.status_code, refused.json()["field"]) == (422, "archive_retention_days")
    got = await api.call("GET", "/v1/admin/tenants/acme", api.admin_key)
    assert (got.json()["retention_days"], got.json()["archive_retention_days"]) == (7, None)


async def test_the_archive_list_needs_archive_read_and_shows_only_the_callers_objects(api: ApiClient) -> None:
    await api.create_tenant("acme")
    await api.create_tenant("globex")
    reader = (await api.create_key("acme", name="r"))["key"]
    searcher = (await api.create_key("acme", name="s", scopes=["search:logs"]))["key"]
    other = (await api.create_key("globex", name="g"))["key"]
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    for n in range(3):
        await api.runtime.archive.record(
            ArchiveObject(
                tenant_id="acme",
                key=object_key("acme", hour - timedelta(hours=n), f"b{n}-00000"),
                day=(hour - timedelta(hours=n)).date(),
                hour=(hour - timedelta(hours=n)).hour,
                event_count=10 + n,
                bytes=500,
                sha256=f"{n}" * 64,
                first_event_at=hour,
                last_event_at=hour,
                created_at=now,
            )
        )

    refused = await api.call("GET", "/v1/archive", searcher)
    assert (refused.status_code, refused.json()["required_scope"]) == (403, "archive:read")
    assert (await api.call("GET", "/v1/archive", other)).json() == {"items": [], "next_cursor": None}

    first = (await api.call("GET", "/v1/archive", reader, limit="2")).json()
    assert [item["event_count"] for item in first["items"]] == [12, 11]  # oldest hour first
    assert first["items"][0]["hour"] == (hour - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert first["items"][0]["sha256"] == "2" * 64
    rest = (await api.call("GET", "/v1/archive", reader, limit="2", cursor=first["next_cursor"])).json()
    assert ([item["event_count"] for item in rest["items"]], rest["next_cursor"]) == ([10], None)
    since = (hour + timedelta(seconds=1)).isoformat()
    recent = (await api.call("GET", "/v1/archive", reader, **{"from": since, "to": "now+1h"})).json()
    assert [item["event_count"] for item in recent["items"]] == [10]  # the hour of `from` is included

    unknown = await api.call("GET", "/v1/archive", reader, tenant_id="globex")
    assert (unknown.status_code, unknown.json()["code"]) == (400, "unknown_parameter")
    too_many = await api.call("GET", "/v1/archive/verify", reader, limit="101")
    assert (too_many.status_code, too_many.json()["code"]) == (400, "invalid_limit")
    # The manifest rows above have no objects behind them: verify says so.
    report = (await api.call("GET", "/v1/archive/verify", reader)).json()
    assert (report["checked"], report["missing"], report["events_expected"], report["events_found"]) == (3, 3, 33, 0)


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("/v1/archive", {"from": "yesterday"}, "invalid_time"),
        ("/v1/archive", {"from": "now-1h", "to": "now-2h"}, "invalid_time"),
        ("/v1/archive", {"from": "now+1h"}, "invalid_time"),
        ("/v1/archive/verify", {"to": "2026-13-01T00:00:00Z"}, "invalid_time"),
        # Outside the years 1000 to 9999-01-01 (each a 500 before: the range's arithmetic overflowed).
        ("/v1/archive", {"from": "0001-01-01T00:00:00Z", "to": "9999-12-31T23:59:59Z"}, "invalid_time"),
        ("/v1/archive", {"to": "0001-01-01T05:00:00Z"}, "invalid_time"),
        ("/v1/archive/verify", {"to": "9999-12-31T23:59:59-14:00"}, "invalid_time"),
        ("/v1/archive", {"cursor": "not-a-cursor"}, "invalid_cursor"),
        ("/v1/archive", {"limit": "0"}, "invalid_limit"),
    ],
)
async def test_bad_archive_parameters_are_a_400_problem(
    api: ApiClient, path: str, params: dict[str, str], code: str
) -> None:
    await api.create_tenant("acme")
    reader = (await api.create_key("acme", name="r"))["key"]
    answer = await api.call("GET", path, reader, **params)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body = answer.json()
    assert (body["status"], body["code"]) == (400, code), body
    assert body["detail"]


async def test_the_widest_time_range_is_answered(api: ApiClient) -> None:
    await api.create_tenant("acme")
    reader = (await api.create_key("acme", name="r"))["key"]
    widest = {"from": "1000-01-01T00:00:00Z", "to": "9999-01-01T00:00:00Z"}
    listed = await api.call("GET", "/v1/archive", reader, **widest)
    assert (listed.status_code, listed.json()) == (200, {"items": [], "next_cursor": None})
    verified = await api.call("GET", "/v1/archive/verify", reader, **widest)
    assert (verified.status_code, verified.json()["checked"]) == (200, 0)
    earliest_day = await api.call("GET", "/v1/archive", reader, to="1000-01-01T05:00:00Z")  # from: 24 h before
    assert earliest_day.status_code == 200, earliest_day.text
