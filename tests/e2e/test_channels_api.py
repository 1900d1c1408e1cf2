"""Notification channels and deliveries through the API (in process, SQLite): CRUD, the write-only secret and
header values, SSRF refusals naming `config.url`, tenant isolation, the test event, and the delivery list and
retry."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from mintlog.adapters.bus.memory import MemoryEventBus
from mintlog.domain.alerting import IncidentEvent
from mintlog.domain.channels import ChannelChanges
from mintlog.domain.webhooks import verify
from mintlog.launch.bootstrap import bootstrap
from mintlog.roles.api.role import build_api_app
from mintlog.roles.notify.delivery_worker import deliveries_for
from mintlog.settings import load_settings
from tests.e2e.inprocess import ApiClient, _operator_key, api_client  # pyright: ignore[reportPrivateUsage]
from tests.e2e.receiver import WebhookReceiver
from tests.unit.test_channel_headers import CREDENTIAL_LIKE

pytestmark = pytest.mark.e2e

BASE = "/v1/notifications/channels"
SEED_BODY: dict[str, Any] = {
    "name": "slack-webhook",
    "channel_type": "webhook",
    "config": {"url": "https://hooks.example.com/xxx", "secret": "mysecret"},
}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ApiClient]:
    async with api_client(tmp_path / "data") as client:
        yield client


@contextlib.asynccontextmanager
async def api_allowing_loopback(data_dir: Path) -> AsyncIterator[ApiClient]:
    """Like `api_client`, with `MINTLOG_EGRESS_ALLOW=127.0.0.0/8` (as local development and tests set it)."""
    environ = {"MINTLOG_DATA_DIR": str(data_dir), "MINTLOG_EGRESS_ALLOW": "127.0.0.0/8"}
    runtime = bootstrap(load_settings(environ, env_file=None), bus=MemoryEventBus())
    await runtime.open()
    try:
        admin_key = await _operator_key(runtime)
        transport = httpx.ASGITransport(app=cast("Any", build_api_app(runtime)))
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
            yield ApiClient(http=http, runtime=runtime, admin_key=admin_key)
    finally:
        await runtime.close()


async def tenant_key(api: ApiClient, tenant: str, *scopes: str) -> str:
    await api.create_tenant(tenant, id=tenant)
    body: dict[str, Any] = {"scopes": list(scopes)} if scopes else {}
    return (await api.create_key(tenant, **body))["key"]


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    return body


async def test_the_seed_channel_is_created_listed_fetched_updated_and_deleted(api: ApiClient) -> None:
    key = await tenant_key(api, "acme")
    created = await api.call("POST", BASE, key, SEED_BODY)
    assert created.status_code == 201, created.text
    channel = created.json()
    assert channel["name"] == "slack-webhook"
    assert channel["channel_type"] == "webhook"
    assert channel["config"] == {"url": "https://hooks.example.com/xxx", "headers": {}, "has_secret": True}
    assert channel["is_active"] is True
    assert channel["disabled_reason"] is None
    assert "mysecret" not in created.text
    assert "secret" not in channel

    listed = await api.call("GET", BASE, key)
    assert [item["id"] for item in listed.json()["items"]] == [channel["id"]]
    fetched = await api.call("GET", f"{BASE}/{channel['id']}", key)
    assert fetched.status_code == 200
    assert "mysecret" not in fetched.text

    updated = await api.call(
        "PATCH",
        f"{BASE}/{channel['id']}",
        key,
        {"name": "team", "config": {"headers": {"X-Team": "sre", "Authorization": "Bearer t0ken"}, "secret": "new"}},
    )
    assert updated.status_code == 200, updated.text
    view = updated.json()
    assert view["name"] == "team"
    assert view["config"]["url"] == "https://hooks.example.com/xxx"
    assert view["config"]["headers"] == {"X-Team": "****", "Authorization": "****"}
    assert "new" not in json.dumps(view["config"])
    assert "t0ken" not in updated.text
    put = await api.call("PUT", f"{BASE}/{channel['id']}", key, {"is_active": False})
    assert put.status_code == 200
    assert put.json()["is_active"] is False
    assert put.json()["disabled_reason"]
    stored = await api.runtime.notifications.get_channel("acme", channel["id"])
    assert stored is not None
    assert stored.secret == "new"

    assert (await api.call("DELETE", f"{BASE}/{channel['id']}", key)).status_code == 204
    problem(await api.call("GET", f"{BASE}/{channel['id']}", key), 404, "channel_not_found")
    problem(await api.call("DELETE", f"{BASE}/{channel['id']}", key), 404, "channel_not_found")
    audit = await api.call("GET", "/v1/admin/audit", api.admin_key, tenant_id="acme")
    actions = [(entry["action"], entry["result"]) for entry in audit.json()["items"]]
    assert ("channel.create", "ok") in actions
    assert ("channel.update", "ok") in actions
    assert ("channel.delete", "error") in actions
    assert all("mysecret" not in json.dumps(entry["detail"]) for entry in audit.json()["items"])


async def test_without_a_secret_a_whsec_secret_is_generated_and_shown_once(api: ApiClient) -> None:
    key = await tenant_key(api, "acme")
    created = await api.call("POST", BASE, key, {"name": "n", "config": {"url": "https://hooks.example.com/x"}})
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    channel_id = created.json()["id"]
    assert secret not in (await api.call("GET", f"{BASE}/{channel_id}", key)).text
    assert secret not in (await api.call("GET", BASE, key)).text
    patched = await api.call("PATCH", f"{BASE}/{channel_id}", key, {"name": "renamed"})
    assert secret not in patched.text


# With the fifteen credential-like names (nine escaped the old name-based masking): 20, the most allowed.
PLAIN_HEADERS = ["X-Team", "X-Env", "X-Request-Source", "Accept", "User-Agent"]


async def test_header_values_are_write_only_in_every_answer(api: ApiClient) -> None:
    key = await tenant_key(api, "acme")
    reader = (await api.create_key("acme", scopes=["notifications:read"]))["key"]
    headers = {name: f"value-{index}-of-{name}-s3cr3t" for index, name in enumerate(CREDENTIAL_LIKE + PLAIN_HEADERS)}
    body = {"name": "n", "config": {"url": "https://hooks.example.com/x", "secret": "s", "headers": headers}}
    created = await api.call("POST", BASE, key, body)
    assert created.status_code == 201, created.text
    path = f"{BASE}/{created.json()['id']}"
    answers = {
        "create": created,
        "get": await api.call("GET", path, key),
        "get with notifications:read": await api.call("GET", path, reader),
        "list": await api.call("GET", BASE, key),
        "list with notifications:read": await api.call("GET", BASE, reader),
        "patch": await api.call("PATCH", path, key, {"name": "renamed"}),
        "put": await api.call("PUT", path, key, {"is_active": True}),
    }
    shown: list[str] = []
    for verb, answer in answers.items():
        assert answer.status_code in (200, 201), answer.text
        view = answer.json()["items"][0] if verb.startswith("list") else answer.json()
        assert view["config"]["headers"] == dict.fromkeys(headers, "****"), verb
        shown += [f"{verb} {name}" for name, value in headers.items() if value in answer.text]
    assert shown == []


async def test_a_channel_read_and_written_back_keeps_its_header_values(tmp_path: Path) -> None:
    async with api_allowing_loopback(tmp_path / "data") as api:
        key = await tenant_key(api, "acme")
        with WebhookReceiver() as receiver:
            headers = {"Authorization": "Bearer real-token", "X-Team": "sre"}
            body = {"name": "n", "config": {"url": receiver.url, "secret": "s", "headers": headers}}
            channel_id = (await api.call("POST", BASE, key, body)).json()["id"]
            path = f"{BASE}/{channel_id}"

            async def stored_headers() -> dict[str, str]:
                channel = await api.runtime.notifications.get_channel("acme", channel_id)
                assert channel is not None
                return channel.headers

            shown = (await api.call("GET", path, key)).json()
            config = {member: shown["config"][member] for member in ("url", "headers")}
            written_back = {"name": shown["name"], "config": config, "is_active": shown["is_active"]}
            for verb in ("PUT", "PATCH"):
                answer = await api.call(verb, path, key, written_back)
                assert answer.status_code == 200, answer.text
                assert await stored_headers() == headers
            tested = (await api.call("POST", f"{path}/test", key)).json()
            assert tested["delivered"] is True, tested
            assert receiver.wait_for(1, timeout_seconds=5)[0].headers["authorization"] == "Bearer real-token"

        kept_and_changed = {"config": {"headers": {"authorization": "****", "X-Team": "ops"}}}
        assert (await api.call("PATCH", path, key, kept_and_changed)).status_code == 200
        assert await stored_headers() == {"authorization": "Bearer real-token", "X-Team": "ops"}
        assert (await api.call("PATCH", path, key, {"config": {"headers": {"X-Team": "****"}}})).status_code == 200
        assert await stored_headers() == {"X-Team": "ops"}

        unknown = await api.call("PATCH", path, key, {"config": {"headers": {"X-Team": "****", "X-New": "****"}}})
        assert problem(unknown, 422, "validation_failed")["field"] == "config.headers.X-New"
        fresh = {"name": "m", "config": {"url": receiver.url, "headers": {"Authorization": "****"}}}
        created = await api.call("POST", BASE, key, fresh)
        assert problem(created, 422, "validation_failed")["field"] == "config.headers.Authorization"
        assert await stored_headers() == {"X-Team": "ops"}


REFUSED = [
    "http://127.0.0.1/hook",
    "http://10.0.0.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://0.0.0.0/hook",
    "http://2130706433/hook",
    "http://0x7f.1/hook",
    "http://localhost:8081/hook",
    "ftp://hooks.example.com/x",
]


@pytest.mark.parametrize("url", REFUSED)
async def test_internal_urls_are_refused_with_422_naming_config_url(api: ApiClient, url: str) -> None:
    key = await tenant_key(api, "acme")
    refused = await api.call("POST", BASE, key, {"name": "n", "config": {"url": url, "secret": "s"}})
    assert problem(refused, 422, "validation_failed")["field"] == "config.url"
    created = await api.call("POST", BASE, key, SEED_BODY)
    update = await api.call("PUT", f"{BASE}/{created.json()['id']}", key, {"config": {"url": url}})
    assert problem(update, 422, "validation_failed")["field"] == "config.url"


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({"Connection": "close"}, "config.headers.Connection"),
        ({"webhook-signature": "v1,forged"}, "config.headers.webhook-signature"),
        ({"Content-Length": "1"}, "config.headers.Content-Length"),
        ({"Bad Name": "x"}, "config.headers.Bad Name"),
        ({"X-Evil": "a\r\nHost: internal"}, "config.headers.X-Evil"),
        ({f"X-{n}": "v" for n in range(21)}, "config.headers"),
    ],
)
async def test_forbidden_or_unbounded_headers_are_refused(api: ApiClient, headers: dict[str, str], field: str) -> None:
    key = await tenant_key(api, "acme")
    body = {"name": "n", "config": {"url": "https://hooks.example.com/x", "headers": headers}}
    assert problem(await api.call("POST", BASE, key, body), 422, "validation_failed")["field"] == field


async def test_bad_bodies_and_scopes_are_refused(api: ApiClient) -> None:
    key = await tenant_key(api, "acme")
    read_only = await tenant_key(api, "ro", "notifications:read")
    problem(await api.call("POST", BASE, key, {**SEED_BODY, "channel_type": "email"}), 422, "validation_failed")
    problem(await api.call("POST", BASE, key, {**SEED_BODY, "tenant_id": "x"}), 422, "validation_failed")
    problem(await api.call("POST", BASE, key, {"name": "n"}), 422, "validation_failed")
    problem(await api.call("POST", BASE, read_only, SEED_BODY), 403, "missing_scope")
    assert (await api.call("GET", BASE, read_only)).status_code == 200


async def test_another_tenants_channel_and_deliveries_are_404(api: ApiClient) -> None:
    mine = await tenant_key(api, "acme")
    theirs = await tenant_key(api, "globex")
    channel_id = (await api.call("POST", BASE, mine, SEED_BODY)).json()["id"]
    for method, path, body in [
        ("GET", f"{BASE}/{channel_id}", None),
        ("PATCH", f"{BASE}/{channel_id}", {"name": "x"}),
        ("PUT", f"{BASE}/{channel_id}", {"name": "x"}),
        ("DELETE", f"{BASE}/{channel_id}", None),
        ("POST", f"{BASE}/{channel_id}/test", None),
    ]:
        problem(await api.call(method, path, theirs, body), 404, "channel_not_found")
    assert (await api.call("GET", BASE, theirs)).json()["items"] == []
    delivery = await enqueue_delivery(api, "acme", channel_id)
    assert (await api.call("GET", "/v1/notifications/deliveries", theirs)).json()["items"] == []
    problem(await api.call("POST", f"/v1/notifications/deliveries/{delivery}/retry", theirs), 404, "delivery_not_found")


async def enqueue_delivery(api: ApiClient, tenant: str, channel_id: str, event_id: str = "evt_1") -> str:
    event = IncidentEvent(
        id=event_id,
        type="incident.triggered",
        tenant_id=tenant,
        incident_id="inc_1",
        title="High errors",
        severity="critical",
        status="triggered",
        occurred_at=datetime.now(UTC),
        actor="system",
        notify=True,
        channel_ids=[channel_id],
    )
    [delivery] = deliveries_for(event, [channel_id], now=datetime.now(UTC))
    await api.runtime.notifications.enqueue_deliveries([delivery])
    return delivery.id


async def test_deliveries_are_listed_with_filters_and_retried(api: ApiClient) -> None:
    key = await tenant_key(api, "acme")
    first = (await api.call("POST", BASE, key, SEED_BODY)).json()["id"]
    second = (await api.call("POST", BASE, key, {**SEED_BODY, "name": "other"})).json()["id"]
    ids = [
        await enqueue_delivery(api, "acme", first, "evt_1"),
        await enqueue_delivery(api, "acme", second, "evt_1"),
        await enqueue_delivery(api, "acme", first, "evt_2"),
    ]
    listed = await api.call("GET", "/v1/notifications/deliveries", key)
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert {item["id"] for item in items} == set(ids)
    assert items[0]["status"] == "pending"
    assert items[0]["attempts"] == 0
    assert items[0]["next_attempt_at"]
    by_channel = await api.call("GET", "/v1/notifications/deliveries", key, channel_id=first)
    assert len(by_channel.json()["items"]) == 2
    by_event = await api.call("GET", "/v1/notifications/deliveries", key, event_id="evt_2")
    assert [item["id"] for item in by_event.json()["items"]] == [ids[2]]
    page = await api.call("GET", "/v1/notifications/deliveries", key, limit="2")
    rest = await api.call("GET", "/v1/notifications/deliveries", key, cursor=page.json()["next_cursor"])
    assert len(page.json()["items"]) == 2
    assert len(rest.json()["items"]) == 1
    assert (await api.call("GET", "/v1/notifications/deliveries", key, status="dead")).json()["items"] == []
    problem(await api.call("GET", "/v1/notifications/deliveries", key, status="lost"), 400, "invalid_parameter")
    problem(await api.call("GET", "/v1/notifications/deliveries", key, foo="1"), 400, "unknown_parameter")

    retried = await api.call("POST", f"/v1/notifications/deliveries/{ids[0]}/retry", key)
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "pending"
    problem(await api.call("POST", "/v1/notifications/deliveries/msg_nope/retry", key), 404, "delivery_not_found")


async def test_the_test_event_is_signed_and_reports_the_receivers_answer(tmp_path: Path) -> None:
    async with api_allowing_loopback(tmp_path / "data") as api:
        key = await tenant_key(api, "acme")
        with WebhookReceiver(statuses=[200, 503]) as receiver:
            body = {"name": "local", "config": {"url": receiver.url, "secret": "mysecret"}}
            created = await api.call("POST", BASE, key, body)
            assert created.status_code == 201, created.text
            channel_id = created.json()["id"]
            ok = await api.call("POST", f"{BASE}/{channel_id}/test", key)
            assert ok.status_code == 200, ok.text
            assert ok.json()["delivered"] is True
            assert ok.json()["status_code"] == 200
            failed = (await api.call("POST", f"{BASE}/{channel_id}/test", key)).json()
            assert failed["delivered"] is False
            assert failed["status_code"] == 503
            assert "503" in failed["error"]
            first = receiver.wait_for(2, timeout_seconds=5)[0]
        assert verify("mysecret", first.headers, first.body)
        assert first.headers["webhook-id"] == ok.json()["webhook_id"]
        assert json.loads(first.body)["type"] == "notification.test"
        # Nothing is stored for a test.
        assert (await api.call("GET", "/v1/notifications/deliveries", key)).json()["items"] == []


async def test_the_test_event_is_refused_at_send_time_for_an_internal_address(api: ApiClient) -> None:
    key = await tenant_key(api, "acme")
    channel_id = (await api.call("POST", BASE, key, SEED_BODY)).json()["id"]
    with WebhookReceiver() as receiver:
        # As if DNS or the allow-list changed since creation: the stored URL now points inside.
        await api.runtime.notifications.update_channel(
            "acme", channel_id, ChannelChanges(url=receiver.url), updated_at=datetime.now(UTC)
        )
        answer = (await api.call("POST", f"{BASE}/{channel_id}/test", key)).json()
        assert answer["delivered"] is False
        assert "egress refused" in answer["error"]
        assert receiver.received == []
