"""The unit tier's guard (tests/unit/conftest.py): a unit test cannot reach a real service or process."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from tests.e2e.harness import MintlogProcess
from tests.services import opensearch_url_or_skip, service_ports


@pytest.mark.parametrize("port", sorted(service_ports()))
def test_a_connection_to_a_shared_service_port_is_refused_and_recorded(port: int, unit_tier_guard: list[str]) -> None:
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError, match="unit tests may not connect"):
        sock.connect(("127.0.0.1", port))
    assert unit_tier_guard == [f"a shared test service (127.0.0.1:{port})"]
    unit_tier_guard.clear()  # the guard's teardown would fail this test otherwise


async def test_an_asyncio_connection_to_the_network_is_refused_and_recorded(unit_tier_guard: list[str]) -> None:
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("192.0.2.1", 80)  # TEST-NET-1: never reached
    assert unit_tier_guard == ["the network (192.0.2.1:80)"]
    unit_tier_guard.clear()


def test_a_loopback_fake_on_a_free_port_stays_reachable(unit_tier_guard: list[str]) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=5):
            pass
    assert unit_tier_guard == []


@pytest.mark.parametrize("fixture", ["nats_url", "postgres_database_url", "redis_url", "opensearch_url", "s3_bucket"])
def test_the_service_fixtures_fail_the_test(fixture: str, request: pytest.FixtureRequest) -> None:
    with pytest.raises(pytest.fail.Exception, match="a unit test may not use"):
        request.getfixturevalue(fixture)


def test_starting_a_service_or_a_mintlog_process_fails_the_test(unit_tier_guard: list[str], tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match="the test OpenSearch"):
        opensearch_url_or_skip()
    with pytest.raises(pytest.fail.Exception, match="mintlog run"):
        MintlogProcess(data_dir=tmp_path / "data").start()
    assert len(unit_tier_guard) == 2
    unit_tier_guard.clear()
