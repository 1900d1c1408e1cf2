"""Uptime locations end to end: two `mintlog run` processes sharing a PostgreSQL database and a NATS server, one
at location `eu` and one at `us`, each asking its own DNS server (`MINTLOG_UPTIME__NAMESERVERS`), so the test
decides what each location sees. A DNS monitor needing 2 of its 2 locations stays up while only `eu` sees the
wrong answer and goes down (one incident) when both do; one needing 1 of 2 goes down as soon as `eu` does. Every
result carries the location that checked it, each location checks every interval, and both come back up."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from dnslib import QTYPE, RR, A, DNSRecord  # pyright: ignore[reportMissingTypeStubs]
from dnslib.server import BaseResolver, DNSLogger, DNSServer  # pyright: ignore[reportMissingTypeStubs]

from tests.distributed.cluster import NatsServer
from tests.e2e.harness import MintlogProcess, free_port

pytestmark = pytest.mark.e2e

RIGHT = "192.0.2.10"
WRONG = "198.51.100.66"


class Answers(BaseResolver):  # pyright: ignore[reportUntypedBaseClass]
    """A DNS server's A records, which the test changes while it runs."""

    def __init__(self) -> None:
        self.addresses: dict[str, str] = {}

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:  # pyright: ignore[reportUnknownParameterType]
        reply = request.reply()  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        name = str(request.q.qname).rstrip(".")  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
        address = self.addresses.get(name)
        if address is not None and request.q.qtype == QTYPE.A:  # pyright: ignore[reportUnknownMemberType]
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(address), ttl=0))  # pyright: ignore[reportUnknownMemberType]
        return reply  # pyright: ignore[reportUnknownVariableType]


@dataclass
class Location:
    name: str
    answers: Answers
    process: MintlogProcess

    def sees(self, address: str) -> None:
        for name in ("two.example.test", "one.example.test"):
            self.answers.addresses[name] = address


@pytest.fixture
def locations(tmp_path: Path, postgres_database_url: str) -> Iterator[tuple[Location, Location, str]]:
    nats = NatsServer(root=tmp_path / "nats")
    nats.start()
    servers: list[Any] = []
    processes: list[MintlogProcess] = []
    try:
        found: list[Location] = []
        for name in ("eu", "us"):
            answers = Answers()
            dns_port = free_port()
            server = DNSServer(answers, port=dns_port, address="127.0.0.1", logger=DNSLogger(logf=lambda _: None))  # pyright: ignore[reportUnknownVariableType]
            server.start_thread()  # pyright: ignore[reportUnknownMemberType]
            servers.append(server)
            process = MintlogProcess(
                data_dir=tmp_path / name,
                extra_env={
                    "MINTLOG_NATS__URL": nats.url,
                    "MINTLOG_DATABASE__URL": postgres_database_url,
                    "MINTLOG_UPTIME__LOCATION": name,
                    "MINTLOG_UPTIME__NAMESERVERS": f"127.0.0.1:{dns_port}",
                    "MINTLOG_UPTIME__MIN_INTERVAL_SECONDS": "1",
                    "MINTLOG_UPTIME__POLL_SECONDS": "0.1",
                },
            )
            processes.append(process)
            location = Location(name, answers, process)
            location.sees(RIGHT)
            found.append(location)
        eu, us = found
        eu.process.start()
        key = eu.process.bootstrap("acme")
        us.process.start()
        yield eu, us, key
    finally:
        for process in processes:
            process.cleanup()
        for server in servers:
            server.stop()  # pyright: ignore[reportUnknownMemberType]
            server.server.server_close()  # pyright: ignore[reportUnknownMemberType]
        nats.stop()


def api(mintlog: MintlogProcess, key: str, method: str, path: str, body: Any = None, **params: str) -> httpx.Response:
    return httpx.request(
        method, f"{mintlog.api_url}{path}", json=body, params=params, headers={"X-API-Key": key}, timeout=30
    )


def wait_until(condition: Callable[[], Any], message: str, timeout_seconds: float = 60) -> Any:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.2)
    raise AssertionError(f"not reached within {timeout_seconds}s: {message}")


def test_a_monitor_goes_down_only_when_its_quorum_of_locations_sees_it_down(
    locations: tuple[Location, Location, str],
) -> None:
    eu, us, key = locations
    mintlog = eu.process

    def create(name: str, quorum: int) -> str:
        body = {
            "name": name,
            "check": {"type": "dns", "name": name, "record_type": "A", "expected": [RIGHT]},
            "interval_seconds": 1,
            "timeout_seconds": 0.5,
            "down_after": 1,
            "locations": ["eu", "us"],
            "quorum": quorum,
        }
        created = api(mintlog, key, "POST", "/v1/uptime/monitors", body)
        assert created.status_code == 201, created.text
        return f"/v1/uptime/monitors/{created.json()['id']}"

    both = create("two.example.test", 2)
    either = create("one.example.test", 1)

    def monitor(path: str) -> dict[str, Any]:
        return api(mintlog, key, "GET", path).json()

    def state_of(path: str, state: str, **location_states: str) -> dict[str, Any] | None:
        view = monitor(path)
        seen = {location: status["state"] for location, status in view["location_states"].items()}
        if view["status"]["state"] == state and all(seen[name] == value for name, value in location_states.items()):
            return view
        return None

    wait_until(lambda: state_of(both, "up", eu="up", us="up"), "2-of-2 up at both locations")
    wait_until(lambda: state_of(either, "up", eu="up", us="up"), "1-of-2 up at both locations")

    # Only eu sees the wrong address: eu is down at both monitors; 1 of 2 is enough to take `either` down.
    eu.sees(WRONG)
    wait_until(lambda: state_of(either, "down", eu="down", us="up"), "1-of-2 down when eu alone is down")
    down_at_eu = wait_until(lambda: state_of(both, "up", eu="down", us="up"), "eu down at the 2-of-2 monitor")
    eu_down_since = down_at_eu["location_states"]["eu"]["since"]
    # us keeps checking (and finding it up) after eu went down; the monitor stays up all along.
    later = wait_until(
        lambda: (
            (view := monitor(both))["location_states"]["us"]["last_check_at"] > eu_down_since
            and view["location_states"]["eu"]["last_check_at"] > eu_down_since
            and view
        ),
        "both locations checked again after eu went down",
    )
    assert later["status"]["state"] == "up"
    assert later["status"]["transition_seq"] == down_at_eu["status"]["transition_seq"]
    triggered = api(mintlog, key, "GET", "/v1/incidents", status="triggered").json()["items"]
    assert [incident["title"] for incident in triggered] == ["uptime: one.example.test"]

    # Both see it now: the 2-of-2 monitor goes down and opens its incident.
    us.sees(WRONG)
    wait_until(lambda: state_of(both, "down", eu="down", us="down"), "2-of-2 down when both are down")
    incidents = wait_until(
        lambda: (
            len(found := api(mintlog, key, "GET", "/v1/incidents", status="triggered").json()["items"]) == 2 and found
        ),
        "the 2-of-2 monitor's incident",
    )
    [opened] = [incident for incident in incidents if incident["title"] == "uptime: two.example.test"]
    incident = api(mintlog, key, "GET", f"/v1/incidents/{opened['id']}").json()
    assert "down at 2 of 2 locations (eu, us; quorum 2)" in json.dumps(incident["timeline"][0]), incident

    # Every result says where it was checked, and each location checked every interval.
    results = api(mintlog, key, "GET", f"{both}/results", limit="200").json()["items"]
    assert {result["location"] for result in results} == {"eu", "us"}
    wrong_at = {result["location"] for result in results if result["ok"] is False}
    assert wrong_at == {"eu", "us"}

    eu.sees(RIGHT)
    us.sees(RIGHT)
    wait_until(lambda: state_of(both, "up", eu="up", us="up"), "2-of-2 up again")
    wait_until(lambda: state_of(either, "up", eu="up", us="up"), "1-of-2 up again")
    wait_until(
        lambda: api(mintlog, key, "GET", "/v1/incidents", status="triggered").json()["items"] == [],
        "both incidents resolved",
    )
