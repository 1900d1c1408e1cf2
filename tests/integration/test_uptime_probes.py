"""The uptime probes against real targets on 127.0.0.1 started by the tests: aiohttp HTTP servers, a TCP
listener, a dnslib DNS server and TLS servers with trustme certificates. The policy allows loopback
(`127.0.0.0/8`, as `MINTLOG_EGRESS_ALLOW` would); the default policy refuses every one of them."""

from __future__ import annotations

import asyncio
import datetime
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path

import pytest
import trustme
from aiohttp import web
from dnslib import QTYPE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSServer

from mintlog.adapters.probes import Prober
from mintlog.domain.egress import EgressPolicy
from mintlog.domain.uptime_checks import (
    CheckOutcome,
    CheckSpec,
    DnsCheck,
    HttpCheck,
    JsonAssertion,
    TcpCheck,
    TlsCheck,
    validate_check,
)

pytestmark = pytest.mark.integration

LOOPBACK_ALLOWED = EgressPolicy.from_setting(["127.0.0.0/8"])
TIMEOUT = 3.0
Handler = Callable[[web.Request], Awaitable[web.Response]]


# --- targets -----------------------------------------------------------------------------------------------


def _http_app() -> web.Application:
    flaps = {"count": 0}

    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="all systems ok")

    async def down(_: web.Request) -> web.Response:
        return web.Response(status=503, text="maintenance")

    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.Response(text="too late")

    async def flap(_: web.Request) -> web.Response:
        flaps["count"] += 1
        return web.Response(status=200 if flaps["count"] % 2 else 503, text="flap")

    async def status_json(_: web.Request) -> web.Response:
        return web.json_response({"status": "up", "checks": [{"name": "db", "healthy": True}], "version": 3})

    async def not_json(_: web.Request) -> web.Response:
        return web.Response(text="{not json", content_type="application/json")

    async def echo_method(request: web.Request) -> web.Response:
        return web.Response(text=f"method={request.method} body={await request.text()}")

    def redirect_to(location: Callable[[web.Request], str], status: int = 301) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            return web.Response(status=status, headers={"Location": location(request)})

        return handler

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/down", down)
    app.router.add_get("/slow", slow)
    app.router.add_get("/flap", flap)
    app.router.add_get("/json", status_json)
    app.router.add_get("/not-json", not_json)
    app.router.add_route("*", "/echo", echo_method)
    app.router.add_get("/moved", redirect_to(lambda _: "/ok"))
    app.router.add_get("/twice", redirect_to(lambda _: "/moved", 302))
    app.router.add_get("/loop", redirect_to(lambda _: "/loop", 302))
    app.router.add_post("/see-other", redirect_to(lambda _: "/echo", 303))
    app.router.add_get("/to-metadata", redirect_to(lambda _: "http://169.254.169.254/latest/meta-data/"))
    app.router.add_get(
        "/to-ipv6-loopback",
        redirect_to(lambda request: f"http://[::1]:{request.url.port}/ok", 302),
    )
    app.router.add_get("/to-private", redirect_to(lambda _: "http://10.0.0.1/", 307))
    return app


@pytest.fixture
async def http_base() -> AsyncIterator[str]:
    runner = web.AppRunner(_http_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def tcp_port() -> AsyncIterator[int]:
    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Zone(BaseResolver):
    """Answers A queries: `up.test` with 127.0.0.10, `wrong.test` with 10.9.9.9; anything else NXDOMAIN."""

    ANSWERS = {"up.test.": "127.0.0.10", "wrong.test.": "10.9.9.9"}

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        reply = request.reply()
        name = str(request.q.qname).lower()
        address = self.ANSWERS.get(name)
        if address is None:
            reply.header.rcode = 3
        elif request.q.qtype == QTYPE.A:
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(address), ttl=60))
        return reply


@pytest.fixture
def dns_nameserver() -> Iterator[str]:
    server = DNSServer(_Zone(), address="127.0.0.1", port=0)
    server.start_thread()
    port = server.server.server_address[1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop()
        server.server.server_close()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


async def _tls_server(ca: trustme.CA, days: int) -> asyncio.Server:
    now = datetime.datetime.now(datetime.UTC)
    leaf = ca.issue_cert(
        "mintlog.test", not_before=now - datetime.timedelta(days=1), not_after=now + datetime.timedelta(days=days)
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    return await asyncio.start_server(accept, "127.0.0.1", 0, ssl=context)


@pytest.fixture
async def tls_ports(ca: trustme.CA) -> AsyncIterator[dict[int, int]]:
    """Days of validity → port of a TLS server whose certificate (for `mintlog.test`) has that many left."""
    servers = {days: await _tls_server(ca, days) for days in (3, 90)}
    try:
        yield {days: server.sockets[0].getsockname()[1] for days, server in servers.items()}
    finally:
        for server in servers.values():
            server.close()
            await server.wait_closed()


@pytest.fixture
async def prober(ca_file: str) -> AsyncIterator[Prober]:
    async with Prober(LOOPBACK_ALLOWED, ca_file=ca_file) as running:
        yield running


async def _run(prober: Prober, spec: CheckSpec, timeout: float = TIMEOUT) -> CheckOutcome:
    validate_check(spec)
    return await prober.run(spec, timeout_seconds=timeout)


# --- HTTP ----------------------------------------------------------------------------------------------------


async def test_http_ok_and_keyword(prober: Prober, http_base: str) -> None:
    outcome = await _run(prober, HttpCheck(url=f"{http_base}/ok", keyword="systems ok"))
    assert outcome.ok, outcome.error
    assert outcome.error is None
    assert outcome.status_code == 200
    assert outcome.latency_ms > 0


async def test_http_unexpected_status(prober: Prober, http_base: str) -> None:
    outcome = await _run(prober, HttpCheck(url=f"{http_base}/down"))
    assert not outcome.ok
    assert outcome.status_code == 503
    assert outcome.error == "status 503 not in 200-299"
    allowed = await _run(prober, HttpCheck(url=f"{http_base}/down", expected_status=["200", "500-599"]))
    assert allowed.ok, allowed.error


async def test_http_slow_target_times_out_within_the_deadline(prober: Prober, http_base: str) -> None:
    started = time.monotonic()
    outcome = await _run(prober, HttpCheck(url=f"{http_base}/slow"), timeout=0.5)
    assert time.monotonic() - started < 1.0
    assert not outcome.ok
    assert outcome.error == "timed out after 0.5s"


async def test_http_max_response_time(prober: Prober, http_base: str) -> None:
    outcome = await _run(prober, HttpCheck(url=f"{http_base}/ok", max_response_ms=1))
    # A loopback answer can take under 1 ms only on a very fast machine; then the check is rightly up.
    assert outcome.ok == (outcome.latency_ms <= 1)
    if not outcome.ok:
        assert outcome.error is not None
        assert outcome.error.endswith("(> 1 ms)")


async def test_http_flapping_target_alternates(prober: Prober, http_base: str) -> None:
    outcomes = [await _run(prober, HttpCheck(url=f"{http_base}/flap")) for _ in range(4)]
    assert [outcome.ok for outcome in outcomes] == [True, False, True, False]


async def test_http_keyword_missing_and_present_when_it_must_be_absent(prober: Prober, http_base: str) -> None:
    missing = await _run(prober, HttpCheck(url=f"{http_base}/ok", keyword="healthy"))
    assert not missing.ok
    assert missing.error == "keyword 'healthy' not found"
    forbidden = await _run(prober, HttpCheck(url=f"{http_base}/ok", keyword="ok", keyword_absent=True))
    assert not forbidden.ok
    assert forbidden.error == "keyword 'ok' found"
    absent = await _run(prober, HttpCheck(url=f"{http_base}/ok", keyword="error", keyword_absent=True))
    assert absent.ok, absent.error


async def test_http_json_assertions(prober: Prober, http_base: str) -> None:
    url = f"{http_base}/json"
    passing = HttpCheck(
        url=url,
        json_assertions=[
            JsonAssertion(path="$.status", equals="up"),
            JsonAssertion(path="$.checks[0].healthy", equals=True),
            JsonAssertion(path="$.version", equals=3.0),
            JsonAssertion(path="$.checks[0].name"),
        ],
    )
    assert (await _run(prober, passing)).ok
    mismatch = await _run(prober, HttpCheck(url=url, json_assertions=[JsonAssertion(path="$.status", equals="down")]))
    assert not mismatch.ok
    # The target is on loopback (allowed, not public): its value is not quoted back.
    assert mismatch.error == 'JSON path $.status is not "down"'
    absent = await _run(prober, HttpCheck(url=url, json_assertions=[JsonAssertion(path="$.checks[1].name")]))
    assert absent.error == "JSON path $.checks[1].name not found"
    not_a_number = await _run(
        prober, HttpCheck(url=url, json_assertions=[JsonAssertion(path="$.checks[0].healthy", equals=1)])
    )
    assert not not_a_number.ok
    bad = await _run(prober, HttpCheck(url=f"{http_base}/not-json", json_assertions=[JsonAssertion(path="$.a")]))
    assert bad.error == "the body is not valid JSON"


async def test_http_redirect_not_followed_unless_asked(prober: Prober, http_base: str) -> None:
    kept = await _run(prober, HttpCheck(url=f"{http_base}/moved"))
    assert not kept.ok
    assert kept.status_code == 301
    assert kept.error == "status 301 not in 200-299"
    assert kept.detail["location"] == "/ok"
    expected_redirect = await _run(prober, HttpCheck(url=f"{http_base}/moved", expected_status=["301"]))
    assert expected_redirect.ok
    followed = await _run(prober, HttpCheck(url=f"{http_base}/twice", follow_redirects=True, keyword="systems ok"))
    assert followed.ok, followed.error
    assert followed.status_code == 200
    assert followed.detail["redirects"] == 2
    assert followed.detail["url"] == f"{http_base}/ok"


async def test_http_redirect_limit_and_method_change(prober: Prober, http_base: str) -> None:
    looping = await _run(prober, HttpCheck(url=f"{http_base}/loop", follow_redirects=True, max_redirects=3))
    assert not looping.ok
    assert looping.error == "more than 3 redirects"
    see_other = HttpCheck(
        url=f"{http_base}/see-other", method="POST", body="x=1", follow_redirects=True, keyword="method=GET body="
    )
    outcome = await _run(prober, see_other)
    assert outcome.ok, outcome.error


async def test_http_connection_refused(prober: Prober, closed_port: int) -> None:
    outcome = await _run(prober, HttpCheck(url=f"http://127.0.0.1:{closed_port}/"))
    assert not outcome.ok
    assert outcome.error == "connection refused"
    assert outcome.status_code is None


@pytest.mark.parametrize(
    ("path", "refused"),
    [("/to-metadata", "169.254.169.254"), ("/to-ipv6-loopback", "::1"), ("/to-private", "10.0.0.1")],
)
async def test_http_redirect_from_an_allowed_target_to_a_refused_address_is_refused(
    prober: Prober, http_base: str, path: str, refused: str
) -> None:
    outcome = await _run(prober, HttpCheck(url=f"{http_base}{path}", follow_redirects=True))
    assert not outcome.ok
    assert outcome.error is not None
    assert outcome.error.startswith("refused by egress policy: ")
    assert refused in outcome.error


# --- TCP -----------------------------------------------------------------------------------------------------


async def test_tcp_listener_up_and_closed_port_down(prober: Prober, tcp_port: int, closed_port: int) -> None:
    up = await _run(prober, TcpCheck(host="127.0.0.1", port=tcp_port))
    assert up.ok, up.error
    assert up.detail["address"] == "127.0.0.1"
    down = await _run(prober, TcpCheck(host="127.0.0.1", port=closed_port))
    assert not down.ok
    assert down.error == "connection refused"


async def test_tcp_name_is_judged_by_what_it_resolves_to(ca_file: str, tcp_port: int) -> None:
    resolved: list[str] = []

    async def resolve(host: str) -> Sequence[str]:
        resolved.append(host)
        return {"public.example": ["127.0.0.1"], "internal.example": ["127.0.0.1", "10.0.0.5"]}[host]

    async with Prober(LOOPBACK_ALLOWED, ca_file=ca_file, resolve=resolve) as prober:
        up = await _run(prober, TcpCheck(host="public.example", port=tcp_port))
        assert up.ok, up.error
        refused = await _run(prober, TcpCheck(host="internal.example", port=tcp_port))
    assert not refused.ok
    assert refused.error is not None
    assert refused.error.startswith("refused by egress policy: ")
    assert "10.0.0.5" in refused.error
    assert resolved == ["public.example", "internal.example"]


async def test_tcp_with_tls_handshake(prober: Prober, tls_ports: dict[int, int], tcp_port: int) -> None:
    verified = await _run(prober, TcpCheck(host="127.0.0.1", port=tls_ports[90], tls=True, verify_tls=False))
    assert verified.ok, verified.error
    no_tls = await _run(prober, TcpCheck(host="127.0.0.1", port=tcp_port, tls=True, verify_tls=False))
    assert not no_tls.ok


# --- DNS -----------------------------------------------------------------------------------------------------


async def test_dns_expected_and_wrong_answer(prober: Prober, dns_nameserver: str) -> None:
    up = await _run(prober, DnsCheck(name="up.test", expected=["127.0.0.10"], nameserver=dns_nameserver))
    assert up.ok, up.error
    assert up.detail["answers"] == "127.0.0.10"
    any_answer = await _run(prober, DnsCheck(name="wrong.test", nameserver=dns_nameserver))
    assert any_answer.ok, any_answer.error
    wrong = await _run(prober, DnsCheck(name="wrong.test", expected=["127.0.0.10"], nameserver=dns_nameserver))
    assert not wrong.ok
    assert wrong.error == "expected 127.0.0.10 not in the answer"
    assert wrong.detail["answers"] == "10.9.9.9"


async def test_dns_missing_name_and_empty_answer(prober: Prober, dns_nameserver: str) -> None:
    missing = await _run(prober, DnsCheck(name="nothing.test", nameserver=dns_nameserver))
    assert not missing.ok
    assert missing.error == "nothing.test does not exist (NXDOMAIN)"
    empty = await _run(prober, DnsCheck(name="up.test", record_type="AAAA", nameserver=dns_nameserver))
    assert not empty.ok
    assert empty.error == "no AAAA records for up.test"


async def test_dns_silent_nameserver_times_out(prober: Prober) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        started = time.monotonic()
        outcome = await _run(prober, DnsCheck(name="up.test", nameserver=f"127.0.0.1:{port}"), timeout=0.5)
    assert time.monotonic() - started < 1.0
    assert not outcome.ok
    assert outcome.error is not None
    assert "0.5s" in outcome.error


# --- TLS -----------------------------------------------------------------------------------------------------


async def test_tls_days_left(prober: Prober, tls_ports: dict[int, int]) -> None:
    healthy = await _run(prober, TlsCheck(host="127.0.0.1", port=tls_ports[90], server_name="mintlog.test"))
    assert healthy.ok, healthy.error
    assert healthy.detail["days_left"] == 89
    expiring = await _run(prober, TlsCheck(host="127.0.0.1", port=tls_ports[3], server_name="mintlog.test"))
    assert not expiring.ok
    assert expiring.error == "certificate expires in 2 days (< 14)"
    lenient = await _run(
        prober, TlsCheck(host="127.0.0.1", port=tls_ports[3], server_name="mintlog.test", min_days_left=1)
    )
    assert lenient.ok, lenient.error


async def test_tls_hostname_mismatch_and_untrusted_chain(prober: Prober, tls_ports: dict[int, int]) -> None:
    mismatch = await _run(prober, TlsCheck(host="127.0.0.1", port=tls_ports[90], server_name="other.test"))
    assert not mismatch.ok
    assert mismatch.error is not None
    assert mismatch.error.startswith("TLS certificate verification failed: ")
    assert "mismatch" in mismatch.error.lower()
    unchecked = await _run(
        prober, TlsCheck(host="127.0.0.1", port=tls_ports[90], server_name="other.test", verify=False)
    )
    assert unchecked.ok, unchecked.error
    async with Prober(LOOPBACK_ALLOWED) as system_store:
        untrusted = await _run(system_store, TlsCheck(host="127.0.0.1", port=tls_ports[90], server_name="mintlog.test"))
        read_anyway = await _run(
            system_store,
            TlsCheck(host="127.0.0.1", port=tls_ports[3], server_name="mintlog.test", verify=False),
        )
    assert not untrusted.ok
    assert untrusted.error is not None
    assert untrusted.error.startswith("TLS certificate verification failed: ")
    assert read_anyway.error == "certificate expires in 2 days (< 14)"


async def test_tls_closed_port(prober: Prober, closed_port: int) -> None:
    outcome = await _run(prober, TlsCheck(host="127.0.0.1", port=closed_port))
    assert outcome.error == "connection refused"


# --- egress: the default policy refuses every probe type ----------------------------------------------------


@pytest.mark.parametrize("address", ["127.0.0.1", "169.254.169.254"])
async def test_default_policy_refuses_internal_targets_for_every_probe(
    address: str, http_base: str, tcp_port: int, dns_nameserver: str, tls_ports: dict[int, int]
) -> None:
    port = int(http_base.rsplit(":", 1)[1]) if address == "127.0.0.1" else 80
    dns_port = dns_nameserver.rsplit(":", 1)[1]
    specs: list[CheckSpec] = [
        HttpCheck(url=f"http://{address}:{port}/ok"),
        TcpCheck(host=address, port=tcp_port),
        TcpCheck(host=address, port=tls_ports[90], tls=True),
        DnsCheck(name="up.test", nameserver=f"{address}:{dns_port}"),
        TlsCheck(host=address, port=tls_ports[90], server_name="mintlog.test"),
    ]
    async with Prober(EgressPolicy()) as prober:
        outcomes = [await _run(prober, spec, timeout=1.0) for spec in specs]
    for spec, outcome in zip(specs, outcomes, strict=True):
        assert not outcome.ok, spec
        assert outcome.error is not None
        assert outcome.error.startswith("refused by egress policy: "), (spec, outcome.error)
        assert address in outcome.error
