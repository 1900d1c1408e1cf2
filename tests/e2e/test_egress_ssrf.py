"""SSRF through webhook channels, tried the way an attacker would: every spelling of an internal host is refused
by the channel API (422 naming `config.url`), and at connect time a real receiver on 127.0.0.1 that counts
TCP connections gets none (test event and delivery worker alike) while the allow-list is empty. A receiver
reached only because `MINTLOG_EGRESS_ALLOW` allows it never has its answer body quoted back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mintlog.adapters.http.egress_aiohttp import AiohttpOutboundHttp, egress_connector
from mintlog.domain.channels import ChannelChanges
from mintlog.domain.egress import EgressPolicy, EgressRefused
from mintlog.roles.notify.delivery_worker import DeliveryWorker
from mintlog.settings import NotifySettings
from tests.e2e.inprocess import ApiClient, api_client
from tests.e2e.test_channels_api import BASE, SEED_BODY, api_allowing_loopback, enqueue_delivery, tenant_key
from tests.fakes import FakeSmtpSender
from tests.unit.egress_spellings import INTERNAL, LOOPBACK, UNSAFE_HOSTS

pytestmark = pytest.mark.e2e

SECRET_BODY = "internal-only: db_password=hunter2"


class CountingReceiver:
    """An HTTP server on 127.0.0.1 that counts every TCP connection it accepts and answers every POST with
    `status` and a body that must never leave it."""

    def __init__(self, status: int = 500) -> None:
        self.connections = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = SECRET_BODY.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        class Server(ThreadingHTTPServer):
            def verify_request(self, request: Any, client_address: Any) -> bool:
                with receiver._lock:
                    receiver.connections += 1
                return True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> CountingReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[CountingReceiver]:
    with CountingReceiver() as counting:
        yield counting


def _spelled(table: list[tuple[str, str]], port: int) -> list[tuple[str, str]]:
    return [(name, url.format(port=port)) for name, url in table]


@pytest.mark.parametrize(("name", "url"), LOOPBACK, ids=[name for name, _ in LOOPBACK])
async def test_no_spelling_of_loopback_connects_to_a_receiver_there(
    receiver: CountingReceiver, name: str, url: str
) -> None:
    async with AiohttpOutboundHttp(EgressPolicy()) as outbound:
        result = await outbound.post(url.format(port=receiver.port), b"{}", {}, timeout_seconds=5)
    assert receiver.connections == 0, result
    assert result.error is not None
    assert result.error.startswith("egress refused"), result.error


async def test_a_literal_ip_that_skips_the_resolver_is_refused_by_the_connector(receiver: CountingReceiver) -> None:
    # aiohttp connects to an IP literal without asking its resolver: the socket factory still sees the address.
    async with aiohttp.ClientSession(connector=egress_connector(EgressPolicy())) as session:
        with pytest.raises(aiohttp.ClientConnectorError) as refused:
            await session.post(receiver.url, data=b"{}")
    assert isinstance(refused.value.os_error, EgressRefused)
    assert receiver.connections == 0
    allowing = EgressPolicy.from_setting(["127.0.0.0/8"])
    async with (
        aiohttp.ClientSession(connector=egress_connector(allowing)) as session,
        session.post(receiver.url, data=b"{}") as answer,
    ):
        assert answer.status == 500
    assert receiver.connections == 1


async def test_every_spelling_is_refused_by_the_channel_api_naming_config_url(tmp_path: Path) -> None:
    async with api_client(tmp_path / "data") as api:
        key = await tenant_key(api, "acme")
        channel_id = (await api.call("POST", BASE, key, SEED_BODY)).json()["id"]
        accepted: list[str] = []
        for name, url in _spelled(LOOPBACK + INTERNAL + UNSAFE_HOSTS, 8080):
            created = await api.call("POST", BASE, key, {"name": "n", "config": {"url": url, "secret": "s"}})
            updated = await api.call("PUT", f"{BASE}/{channel_id}", key, {"config": {"url": url}})
            patched = await api.call("PATCH", f"{BASE}/{channel_id}", key, {"config": {"url": url}})
            for verb, answer in (("POST", created), ("PUT", updated), ("PATCH", patched)):
                if answer.status_code != 422 or answer.json().get("field") != "config.url":
                    accepted.append(f"{verb} {name}: {answer.status_code} {answer.text[:200]}")
        assert accepted == []
        channels = (await api.call("GET", BASE, key)).json()["items"]
        assert [channel["config"]["url"] for channel in channels] == [SEED_BODY["config"]["url"]]


async def _stored_with_url(api: ApiClient, channel_id: str, url: str) -> None:
    """Give a channel a URL directly in the store, as if it had been accepted before this guard existed."""
    changes = ChannelChanges(url=url)
    assert await api.runtime.notifications.update_channel("acme", channel_id, changes, updated_at=datetime.now(UTC))


async def test_stored_spellings_never_connect_from_the_test_event_nor_the_delivery_worker(
    tmp_path: Path, receiver: CountingReceiver
) -> None:
    spellings = _spelled(LOOPBACK, receiver.port)
    async with api_client(tmp_path / "data") as api:
        key = await tenant_key(api, "acme")
        channel_ids: list[str] = []
        for name, url in spellings:
            channel_id = (await api.call("POST", BASE, key, {**SEED_BODY, "name": name})).json()["id"]
            await _stored_with_url(api, channel_id, url)
            channel_ids.append(channel_id)
            tested = (await api.call("POST", f"{BASE}/{channel_id}/test", key)).json()
            assert tested["delivered"] is False, name
            assert tested["error"].startswith("egress refused"), (name, tested["error"])
        for channel_id in channel_ids:
            await enqueue_delivery(api, "acme", channel_id)
        worker = delivery_worker(api, batch=len(channel_ids))  # the runtime's client: nothing allowed
        await worker.start(consume=False, send=False)
        try:
            attempted = await worker.run_once()
        finally:
            await worker.stop()
        assert len(attempted) == len(channel_ids)
        deliveries = (await api.call("GET", "/v1/notifications/deliveries", key, limit="200")).json()["items"]
        assert len(deliveries) == len(channel_ids)
        for delivery in deliveries:
            assert delivery["status"] == "dead"
            assert "egress refused" in delivery["last_error"], delivery["last_error"]
    assert receiver.connections == 0


def delivery_worker(api: ApiClient, *, batch: int = 10) -> DeliveryWorker:
    """A delivery worker on the API's runtime, sending through its outbound client (as the notify role does)."""
    settings = NotifySettings(max_attempts=1, retry_delays_seconds=(0.05,), retry_jitter=0.0, concurrency=batch)
    return DeliveryWorker(
        bus=api.runtime.bus,
        notifications=api.runtime.notifications,
        outbound=api.runtime.outbound,
        smtp=FakeSmtpSender(),
        settings=settings,
        pipeline=api.runtime.settings.pipeline,
        metrics=api.runtime.metrics,
        grace_seconds=1.0,
    )


async def test_an_allowed_internal_receivers_body_is_never_quoted_back(
    tmp_path: Path, receiver: CountingReceiver
) -> None:
    async with api_allowing_loopback(tmp_path / "data") as api:
        key = await tenant_key(api, "acme")
        created = await api.call("POST", BASE, key, {"name": "local", "config": {"url": receiver.url}})
        assert created.status_code == 201, created.text
        channel_id = created.json()["id"]
        tested = (await api.call("POST", f"{BASE}/{channel_id}/test", key)).json()
        assert tested["status_code"] == 500
        assert "500" in tested["error"]
        assert "body not shown" in tested["error"]
        assert "hunter2" not in tested["error"]
        await enqueue_delivery(api, "acme", channel_id)
        worker = delivery_worker(api)  # the runtime's client, allowing 127.0.0.0/8
        await worker.start(consume=False, send=False)
        try:
            await worker.run_once()
        finally:
            await worker.stop()
        [delivery] = (await api.call("GET", "/v1/notifications/deliveries", key)).json()["items"]
        assert delivery["last_status_code"] == 500
        assert "hunter2" not in delivery["last_error"]
    assert receiver.connections == 2
