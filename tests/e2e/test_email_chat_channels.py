"""Email and chat-webhook channels through the API (in process, SQLite): create, the write-only password,
422 naming the field for bad input and refused hosts, tenant isolation, and the test notification received
by a real SMTP server and a real HTTP receiver (Slack and Teams payload shapes)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.inprocess import ApiClient, api_client
from tests.e2e.receiver import WebhookReceiver
from tests.e2e.test_channels_api import api_allowing_loopback, problem, tenant_key
from tests.smtp_server import SmtpTestServer

pytestmark = pytest.mark.e2e

BASE = "/v1/notifications/channels"


def email_body(**config: Any) -> dict[str, Any]:
    return {
        "name": "oncall-mail",
        "channel_type": "email",
        "config": {
            "host": "smtp.example.com",
            "port": 587,
            "from_address": "mintlog@example.com",
            "recipients": ["oncall@example.com"],
            **config,
        },
    }


def chat_body(**config: Any) -> dict[str, Any]:
    return {"name": "chat", "channel_type": "chat_webhook", "config": config}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ApiClient]:
    async with api_client(tmp_path / "data") as client:
        yield client


async def test_an_email_channel_never_shows_its_password_and_is_another_tenants_404(api: ApiClient) -> None:
    key = await tenant_key(api, "acme")
    created = await api.call("POST", BASE, key, email_body(username="alerts", password="hunter2"))
    assert created.status_code == 201, created.text
    channel = created.json()
    assert channel["channel_type"] == "email"
    assert channel["config"] == {
        "host": "smtp.example.com",
        "port": 587,
        "security": "starttls",
        "from_address": "mintlog@example.com",
        "recipients": ["oncall@example.com"],
        "username": "alerts",
        "has_password": True,
        "verify_tls": True,
    }
    assert "hunter2" not in created.text
    fetched = await api.call("GET", f"{BASE}/{channel['id']}", key)
    assert "hunter2" not in fetched.text
    assert fetched.json()["config"]["has_password"] is True
    updated = await api.call("PATCH", f"{BASE}/{channel['id']}", key, {"config": {"recipients": ["a@example.com"]}})
    assert updated.status_code == 200, updated.text
    assert updated.json()["config"]["recipients"] == ["a@example.com"]
    assert updated.json()["config"]["has_password"] is True
    other = await tenant_key(api, "globex")
    problem(await api.call("GET", f"{BASE}/{channel['id']}", other), 404, "channel_not_found")
    problem(await api.call("PATCH", f"{BASE}/{channel['id']}", other, {"name": "x"}), 404, "channel_not_found")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (email_body(port=0), "config.port"),
        (email_body(port=70000), "config.port"),
        (email_body(port="587"), "config.port"),
        (email_body(from_address="not an address"), "config.from_address"),
        (email_body(recipients=[]), "config.recipients"),
        (email_body(recipients=["ok@example.com", "bad\r\nBcc: x@example.com"]), "config.recipients[1]"),
        (email_body(recipients=[f"r{n}@example.com" for n in range(51)]), "config.recipients"),
        (email_body(security="ssl"), "config.security"),
        (email_body(username="alerts"), "config.password"),
        (email_body(host="smtp.example.com:25"), "config.host"),
        (email_body(host="169.254.169.254"), "config.host"),
        (email_body(host="127.0.0.1"), "config.host"),
        (email_body(host="localhost"), "config.host"),
        (email_body(url="https://x.example.com"), "config.url"),
        (
            {"name": "c", "channel_type": "chat_webhook", "config": {"url": "https://h.example.com", "format": "irc"}},
            "config.format",
        ),
        ({"name": "c", "channel_type": "chat_webhook", "config": {"url": "http://169.254.169.254/"}}, "config.url"),
        ({"name": "c", "channel_type": "sms", "config": {}}, "channel_type"),
    ],
)
async def test_bad_email_and_chat_channels_are_422_naming_the_field(
    api: ApiClient, body: dict[str, Any], field: str
) -> None:
    key = await tenant_key(api, "acme")
    refused = problem(await api.call("POST", BASE, key, body), 422, "validation_failed")
    assert refused["field"] == field, refused
    listed = await api.call("GET", BASE, key)
    assert listed.json()["items"] == []


async def test_the_type_of_a_channel_cannot_change(api: ApiClient) -> None:
    key = await tenant_key(api, "acme")
    created = (await api.call("POST", BASE, key, email_body())).json()
    changed = await api.call("PATCH", f"{BASE}/{created['id']}", key, {"channel_type": "webhook"})
    assert problem(changed, 422, "validation_failed")["field"] == "channel_type"


async def test_the_test_notification_of_an_email_channel_reaches_the_smtp_server(tmp_path: Path) -> None:
    async with api_allowing_loopback(tmp_path / "data") as api:
        key = await tenant_key(api, "acme")
        with SmtpTestServer() as server:
            body = email_body(host="127.0.0.1", port=server.port, security="none")
            created = (await api.call("POST", BASE, key, body)).json()
            tested = await api.call("POST", f"{BASE}/{created['id']}/test", key)
            assert tested.status_code == 200, tested.text
            assert tested.json()["delivered"] is True, tested.json()
            [received] = server.wait_for(1)
    assert received.recipients == ["oncall@example.com"]
    assert received.message["Subject"] == "[INFO] Test notification: Test of channel oncall-mail"


async def test_chat_channels_post_the_slack_and_teams_shapes(tmp_path: Path) -> None:
    async with api_allowing_loopback(tmp_path / "data") as api:
        key = await tenant_key(api, "acme")
        with WebhookReceiver() as receiver:
            payloads: dict[str, Any] = {}
            for chat_format in ("slack", "teams", "mattermost"):
                body = {
                    "name": chat_format,
                    "channel_type": "chat_webhook",
                    "config": {"url": f"{receiver.url}/{chat_format}", "format": chat_format},
                }
                created = await api.call("POST", BASE, key, body)
                assert created.status_code == 201, created.text
                assert created.json()["config"] == {"url": f"{receiver.url}/{chat_format}", "format": chat_format}
                tested = await api.call("POST", f"{BASE}/{created.json()['id']}/test", key)
                assert tested.json()["delivered"] is True, tested.json()
            for request in receiver.wait_for(3, 30):
                assert request.headers["content-type"] == "application/json"
                assert "webhook-signature" not in request.headers
                payloads[request.path.rsplit("/", 1)[1]] = json.loads(request.body)
    slack = payloads["slack"]
    assert slack["text"] == "[INFO] Test notification: Test of channel slack"
    assert [block["type"] for block in slack["blocks"]] == ["header", "section", "section"]
    teams = payloads["teams"]
    assert teams["type"] == "message"
    [attachment] = teams["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["content"]["type"] == "AdaptiveCard"
    assert attachment["content"]["body"][0]["text"] == "[INFO] Test notification: Test of channel teams"
    mattermost = payloads["mattermost"]
    assert mattermost["attachments"][0]["title"] == "Test notification: Test of channel mattermost"
