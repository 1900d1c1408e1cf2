"""The probes' pure rules: the reasons their failures give, redirect method changes, certificate days left, and
that a refused target never reaches the network (no server is started here)."""

from __future__ import annotations

import datetime
import socket
import ssl
from collections.abc import Sequence

import pytest

from mintlog.adapters.probes import Prober
from mintlog.adapters.probes.connect import describe_os_error
from mintlog.adapters.probes.http import _next_method  # pyright: ignore[reportPrivateUsage]
from mintlog.adapters.probes.tls import days_left
from mintlog.domain.egress import EgressPolicy, EgressRefused
from mintlog.domain.uptime_checks import CheckSpec, DnsCheck, HttpCheck, TcpCheck, TlsCheck


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            EgressRefused("address 10.0.0.1 is refused: private"),
            "refused by egress policy: address 10.0.0.1 is refused",
        ),
        (ConnectionRefusedError(111, "Connection refused"), "connection refused"),
        (ConnectionResetError(104, "reset"), "connection reset by peer"),
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "name resolution failed: Name or service"),
        (TimeoutError(), "timed out"),
        (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"), "TLS handshake failed: "),
    ],
)
def test_failure_reasons(error: OSError, reason: str) -> None:
    assert describe_os_error(error).startswith(reason)


@pytest.mark.parametrize(
    ("method", "status", "next_method"),
    [
        ("POST", 303, "GET"),
        ("HEAD", 303, "HEAD"),
        ("PUT", 303, "GET"),
        ("POST", 301, "GET"),
        ("POST", 302, "GET"),
        ("DELETE", 301, "DELETE"),
        ("POST", 307, "POST"),
        ("PUT", 308, "PUT"),
    ],
)
def test_redirect_method(method: str, status: int, next_method: str) -> None:
    assert _next_method(method, status) == next_method


def test_days_left_rounds_down_and_goes_negative() -> None:
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    assert days_left(now + datetime.timedelta(days=3), now) == 3
    assert days_left(now + datetime.timedelta(days=3, seconds=-1), now) == 2
    assert days_left(now - datetime.timedelta(hours=1), now) == -1


@pytest.mark.parametrize(
    "spec",
    [
        HttpCheck(url="http://169.254.169.254/latest/meta-data/"),
        HttpCheck(url="http://[::ffff:127.0.0.1]:8080/"),
        TcpCheck(host="0x7f.1", port=22),
        TlsCheck(host="localhost"),
        TcpCheck(host="internal.example", port=5432),
        DnsCheck(name="example.com", nameserver="10.0.0.53"),
    ],
    ids=lambda spec: type(spec).__name__,
)
async def test_refused_targets_are_outcomes_without_a_connection(spec: CheckSpec) -> None:
    async def resolve(host: str) -> Sequence[str]:
        return {"internal.example": ["10.20.30.40"]}[host]

    async with Prober(EgressPolicy(), resolve=resolve) as prober:
        outcome = await prober.run(spec, timeout_seconds=2.0)
    assert not outcome.ok
    assert outcome.error is not None
    assert outcome.error.startswith("refused by egress policy: ")
