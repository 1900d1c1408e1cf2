"""The unit tier's guard: a unit test uses fakes, so one that reaches a real service or process fails.

For every test under tests/unit:
- the service fixtures of tests/services.py (`nats_url`, `postgres_database_url`, `opensearch_url`, ...) fail
  the test instead of starting or naming a service, and so do the helpers that would start one
  (`opensearch_url_or_skip`), `MintlogProcess.start` (tests/e2e/harness.py) and `EmbeddedNatsServer.start`;
- a socket connection to a port of the shared test services (`tests.services.service_ports()`) or to any
  address that is not loopback is refused with `ConnectionRefusedError`, and the test fails even when the
  code under test swallowed that error. Loopback fakes (a local HTTP server on a free port) stay allowed;
- a test carrying the `integration` or `e2e` marker fails: it belongs to tests/integration or tests/e2e.

`make test-unit` therefore passes with every service stopped, and a unit test that needs one cannot pass.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import pytest

import tests.services
from mintlog.adapters.bus.embedded_nats import EmbeddedNatsServer
from tests.e2e.harness import MintlogProcess

SERVICE_FIXTURES = (
    "nats_url",
    "postgres_server_url",
    "postgres_database_url",
    "redis_url",
    "opensearch_url",
    "s3_service",
    "s3_endpoint",
    "s3_bucket",
)


def _refuse(what: str) -> NoReturn:
    pytest.fail(
        f"a unit test may not use {what}: use a fake from tests/fakes.py, or move the test to "
        "tests/integration (real services) or tests/e2e (a real `mintlog run`)",
        pytrace=False,
    )


def _refusing_fixture(name: str) -> Callable[[], NoReturn]:
    @pytest.fixture(name=name)
    def refused() -> NoReturn:
        _refuse(f"the `{name}` fixture (a real service)")

    return refused


for _name in SERVICE_FIXTURES:
    globals()[f"_refused_{_name}"] = _refusing_fixture(_name)


def _forbidden_target(address: Any, service_ports: frozenset[int]) -> str | None:
    """Why a unit test may not connect to `address` (an AF_INET/AF_INET6 address tuple), or None."""
    if not isinstance(address, tuple) or len(address) < 2:  # AF_UNIX paths and the like
        return None
    host, port = str(address[0]), int(address[1])
    try:
        loopback = ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        return f"the network ({host}:{port})"
    if port in service_ports:
        return f"a shared test service (127.0.0.1:{port})"
    return None


@pytest.fixture(autouse=True)
def unit_tier_guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Installs the guard for one unit test; yields what the test reached (the guard's own tests clear it)."""
    for marker in ("integration", "e2e"):
        if request.node.get_closest_marker(marker) is not None:
            _refuse(f"the `{marker}` marker")
    service_ports = tests.services.service_ports()
    reached: list[str] = []

    def checked(original: Callable[..., Any]) -> Callable[..., Any]:
        def connect(sock: socket.socket, address: Any) -> Any:
            target = _forbidden_target(address, service_ports) if sock.family != socket.AF_UNIX else None
            if target is not None:
                reached.append(target)
                raise ConnectionRefusedError(f"unit tests may not connect to {target}")
            return original(sock, address)

        return connect

    monkeypatch.setattr(socket.socket, "connect", checked(socket.socket.connect))
    monkeypatch.setattr(socket.socket, "connect_ex", checked(socket.socket.connect_ex))

    def refused(what: str) -> Callable[..., NoReturn]:
        def call(*_args: Any, **_kwargs: Any) -> NoReturn:
            reached.append(what)
            _refuse(what)

        return call

    monkeypatch.setattr(tests.services, "_service_env", refused("scripts/services.sh (a real service)"))
    monkeypatch.setattr(tests.services, "_opensearch_url_or_reason", refused("the test OpenSearch"))
    monkeypatch.setattr(MintlogProcess, "start", refused("a real `mintlog run` (tests/e2e/harness.py)"))
    monkeypatch.setattr(EmbeddedNatsServer, "start", refused("a real nats-server (EmbeddedNatsServer)"))
    yield reached
    if reached:
        _refuse(", ".join(dict.fromkeys(reached)))
