"""A monitor's incident over the API app in process (SQLite, memory bus), with the uptime role and the notify
role's incident worker driven by the test: `channel_ids` are checked like an alert rule's; pausing or deleting a
down monitor resolves its incident with a timeline entry saying why (only an `alert_resolved` entry without
`resolve_incident_on_up`); a bus outage at the transition delays the incident until the outbox sweep after the
bus is back, and a repeated sweep changes nothing."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mintlog.domain.streams import decode_alert_event
from mintlog.errors import BusUnavailable
from mintlog.ports.bus import EventBus
from mintlog.roles.notify.incident_worker import IncidentWorker
from mintlog.roles.uptime.role import UptimeRole
from tests.e2e.inprocess import ApiClient, api_client
from tests.e2e.test_uptime_api import FakeProber, SteppedClock, problem

pytestmark = pytest.mark.e2e

MONITOR = {
    "name": "shop",
    "check": {"type": "http", "url": "http://93.184.216.34/health"},
    "interval_seconds": 30,
    "timeout_seconds": 5,
    "down_after": 1,
}
_NUMBERS = itertools.count()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ApiClient]:
    async with api_client(tmp_path / "data") as client:
        yield client


@pytest.fixture
async def keys(api: ApiClient) -> dict[str, str]:
    for tenant in ("alpha", "beta"):
        await api.create_tenant(tenant)
    return {"alpha": (await api.create_key("alpha"))["key"], "beta": (await api.create_key("beta"))["key"]}


class Flow:
    """The uptime role (fake prober, stepped clock) and the incident worker on the API's runtime."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api
        self.prober = FakeProber()
        self.clock = SteppedClock(datetime.now(UTC) + timedelta(seconds=1))
        self.role = UptimeRole(api.runtime, prober=self.prober, clock=self.clock)
        self.worker = IncidentWorker(api.runtime)
        self._consumer: Any = None

    async def start(self) -> Flow:
        self._consumer = await self.api.runtime.bus.consumer(
            "ALERTS_EVENTS", f"test-{next(_NUMBERS)}", filter_subject="alerts.events.>", ack_wait_seconds=60
        )
        return self

    async def check(self, ok: bool) -> None:
        # Never behind the wall clock: a monitor created after `Flow` (slowly, on a loaded machine) is due at
        # its creation time, which a clock started before it would not have reached yet.
        self.clock.now = max(self.clock.now, datetime.now(UTC) + timedelta(seconds=1))
        self.prober.ok = ok
        await self.role.scheduler.run_once()
        self.clock.now += timedelta(seconds=30)

    async def deliver_alerts(self) -> int:
        """Hand every alert event on the bus to the incident worker, as its consumer would; how many."""
        delivered = 0
        while batch := await self._consumer.fetch(100, 0.2):
            for message in batch:
                await self.worker.apply(decode_alert_event(message.data))
                await message.ack()
                delivered += 1
        return delivered

    async def incidents(self, key: str) -> list[dict[str, Any]]:
        listed = (await self.api.call("GET", "/v1/incidents", key)).json()["items"]
        return [(await self.api.call("GET", f"/v1/incidents/{item['id']}", key)).json() for item in listed]


async def test_channel_ids_must_be_the_tenants_own_channels(api: ApiClient, keys: dict[str, str]) -> None:
    theirs = await api.call(
        "POST",
        "/v1/notifications/channels",
        keys["beta"],
        {"name": "b", "channel_type": "webhook", "config": {"url": "https://93.184.216.34/hook", "secret": "s"}},
    )
    assert theirs.status_code == 201, theirs.text
    for channel_ids, field in (([theirs.json()["id"]], "channel_ids[0]"), (["ch_missing"], "channel_ids[0]")):
        refused = await api.call("POST", "/v1/uptime/monitors", keys["alpha"], {**MONITOR, "channel_ids": channel_ids})
        assert problem(refused, 422, "validation_failed")["field"] == field
    created = await api.call("POST", "/v1/uptime/monitors", keys["alpha"], MONITOR)
    patched = await api.call(
        "PATCH", f"/v1/uptime/monitors/{created.json()['id']}", keys["alpha"], {"channel_ids": [theirs.json()["id"]]}
    )
    assert problem(patched, 422, "validation_failed")["field"] == "channel_ids[0]"
    for body, field in (({"log_window_minutes": 0}, "log_window_minutes"), ({"linked_service": ""}, "linked_service")):
        refused = await api.call("POST", "/v1/uptime/monitors", keys["alpha"], {**MONITOR, **body})
        assert field in problem(refused, 422, "validation_failed")["detail"]


@pytest.mark.parametrize(("action", "reason"), [("pause", "monitor paused"), ("delete", "monitor deleted")])
async def test_pausing_or_deleting_a_down_monitor_resolves_its_incident(
    api: ApiClient, keys: dict[str, str], action: str, reason: str
) -> None:
    key = keys["alpha"]
    flow = await Flow(api).start()
    monitor = (await api.call("POST", "/v1/uptime/monitors", key, MONITOR)).json()
    await flow.check(ok=False)
    assert await flow.deliver_alerts() == 1
    [incident] = await flow.incidents(key)
    assert incident["status"] == "triggered"

    path = f"/v1/uptime/monitors/{monitor['id']}"
    answer = await (api.call("POST", f"{path}/pause", key) if action == "pause" else api.call("DELETE", path, key))
    assert answer.status_code in (200, 204), answer.text
    assert await flow.deliver_alerts() == 0  # the API only commits it; the uptime role's outbox publishes it
    assert await flow.role.relay.sweep() == 1
    assert await flow.deliver_alerts() == 1
    [incident] = await flow.incidents(key)
    assert incident["status"] == "resolved"
    last = incident["timeline"][-1]
    assert last["event_type"] == "resolved"
    assert reason in last["content"]
    assert last["data"]["context"] == {"reason": reason}


async def test_without_resolve_incident_on_up_a_pause_only_notes_it(api: ApiClient, keys: dict[str, str]) -> None:
    key = keys["alpha"]
    flow = await Flow(api).start()
    monitor = (await api.call("POST", "/v1/uptime/monitors", key, {**MONITOR, "resolve_incident_on_up": False})).json()
    await flow.check(ok=False)
    await flow.deliver_alerts()
    assert (await api.call("POST", f"/v1/uptime/monitors/{monitor['id']}/pause", key)).status_code == 200
    await flow.role.relay.sweep()
    await flow.deliver_alerts()
    [incident] = await flow.incidents(key)
    assert incident["status"] == "triggered"
    assert incident["timeline"][-1]["event_type"] == "alert_resolved"
    assert "monitor paused" in incident["timeline"][-1]["content"]


async def test_pausing_an_up_monitor_publishes_nothing(api: ApiClient, keys: dict[str, str]) -> None:
    key = keys["alpha"]
    flow = await Flow(api).start()
    monitor = (await api.call("POST", "/v1/uptime/monitors", key, MONITOR)).json()
    await flow.check(ok=True)
    assert (await api.call("POST", f"/v1/uptime/monitors/{monitor['id']}/pause", key)).status_code == 200
    assert await flow.role.relay.sweep() == 0
    assert await flow.deliver_alerts() == 0
    assert await flow.incidents(key) == []


class BusOutage:
    """The runtime's bus, whose alert publishes fail while `down`."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self.down = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bus, name)

    async def publish(self, subject: str, payload: bytes, *, msg_id: str | None = None, **kwargs: Any) -> Any:
        if self.down:
            raise BusUnavailable("test outage")
        return await self._bus.publish(subject, payload, msg_id=msg_id, **kwargs)


async def test_a_transition_during_a_bus_outage_is_published_in_order_once_the_bus_is_back(
    api: ApiClient, keys: dict[str, str]
) -> None:
    key = keys["alpha"]
    outage = BusOutage(api.runtime.bus)
    api.runtime.bus = outage  # type: ignore[assignment]
    flow = await Flow(api).start()
    await api.call("POST", "/v1/uptime/monitors", key, MONITOR)
    outage.down = True
    await flow.check(ok=False)  # down: stored, not published
    await flow.check(ok=True)  # up again: stored behind it, not published
    assert await flow.role.relay.sweep() == 0
    outage.down = False
    assert await flow.deliver_alerts() == 0
    assert await flow.role.relay.sweep() == 2
    assert await flow.role.relay.sweep() == 0
    assert await flow.deliver_alerts() == 2
    [incident] = await flow.incidents(key)
    assert incident["status"] == "resolved"
    assert [entry["event_type"] for entry in incident["timeline"]] == ["triggered", "resolved"]
    assert incident["timeline"][0]["data"]["context"]["check"]["error"] == "status 503 not in 200-299"
