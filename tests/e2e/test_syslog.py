"""Syslog end to end: real rsyslog and syslog-ng daemons (started here, in the foreground, with generated configs)
and Python's `logging.handlers.SysLogHandler` send to a real `mintlog run` over TCP (octet-counted and newline
framing), UDP and TCP+TLS (certificates made with trustme); the messages are found by search with the right
service, host, level, timestamp and fields, and what must be dropped (no key, a bad key, oversized, invalid
UTF-8, lost framing) is counted in `mintlog_syslog_dropped_total` while the connection survives where it should.

rsyslog and syslog-ng come from Debian's packages, installed by `scripts/install-syslog-clients.sh` (CI runs it);
without them these tests skip, which fails the run in CI (tests/conftest.py).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import shutil
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from mintlog.domain.keys import generate_api_key
from tests.e2e.harness import MintlogProcess, free_port

pytestmark = pytest.mark.e2e

RSYSLOG_ROOT = Path(os.environ.get("MINTLOG_RSYSLOG_ROOT", "/opt/mintlog-test/rsyslog"))
INSTALL_HINT = "run scripts/install-syslog-clients.sh (as root) to install rsyslog and syslog-ng"
SEARCH_FROM = "2000-01-01T00:00:00Z"
MAX_FRAME_BYTES = 4096
LOGGER_PID = 4242
# The daemons write RFC 3164 times as wall times of their zone, which Mintlog reads in the tenant's zone (UTC).
DAEMON_ENV = {**os.environ, "TZ": "UTC"}


@dataclass
class SyslogMintlog:
    process: MintlogProcess
    key: str
    tcp_port: int
    udp_port: int
    tls_port: int
    ca: trustme.CA
    ca_file: Path

    def find(self, text: str, total: int = 1, timeout_seconds: float = 30.0) -> list[dict[str, Any]]:
        answer = self.process.wait_for_total(
            self.key, {"query": f'"{text}"', "from": SEARCH_FROM}, total, timeout_seconds=timeout_seconds
        )
        assert answer.get("total", 0) >= total, f"{text!r} not found: {answer}\n{self.process.logs()}"
        return answer["events"]

    def count(self, text: str) -> int:
        response = self.process.search(self.key, {"query": f'"{text}"', "from": SEARCH_FROM})
        assert response.status_code == 200, response.text
        return int(response.json()["total"])

    def dropped(self, transport: str, reason: str) -> float:
        return _metric(self.process, f'mintlog_syslog_dropped_total{{reason="{reason}",transport="{transport}"}}')


def _metric(process: MintlogProcess, series: str) -> float:
    text = httpx.get(f"{process.ingest_url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _wait_for(predicate: Any, timeout_seconds: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    assert predicate()


@pytest.fixture(scope="module")
def syslog_mintlog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyslogMintlog]:
    """One Mintlog listening for syslog on TCP, UDP and TLS (a certificate for localhost/127.0.0.1)."""
    base = tmp_path_factory.mktemp("syslog")
    ca = trustme.CA()
    server_cert = ca.issue_cert("localhost", "127.0.0.1")
    cert_file, key_file, ca_file = base / "server.pem", base / "server.key", base / "ca.pem"
    server_cert.private_key_pem.write_to_path(str(key_file))
    cert_file.write_bytes(b"".join(blob.bytes() for blob in server_cert.cert_chain_pems))
    ca.cert_pem.write_to_path(str(ca_file))
    tcp_port, udp_port, tls_port = free_port(), free_port(), free_port()
    process = MintlogProcess(
        data_dir=base / "data",
        extra_env={
            "MINTLOG_SYSLOG__TCP_PORT": str(tcp_port),
            "MINTLOG_SYSLOG__UDP_PORT": str(udp_port),
            "MINTLOG_SYSLOG__TLS_PORT": str(tls_port),
            "MINTLOG_SYSLOG__TLS_CERT_FILE": str(cert_file),
            "MINTLOG_SYSLOG__TLS_KEY_FILE": str(key_file),
            "MINTLOG_SYSLOG__MAX_FRAME_BYTES": str(MAX_FRAME_BYTES),
            "MINTLOG_SYSLOG__FLUSH_INTERVAL_MS": "50",
        },
    )
    try:
        key = process.bootstrap("demo")
        process.start()
        yield SyslogMintlog(process, key, tcp_port, udp_port, tls_port, ca, ca_file)
    finally:
        process.cleanup()


def _only(events: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(events) == 1, events
    return events[0]


def _assert_no_key(event: dict[str, Any], key: str) -> None:
    assert key not in str(event), event


def _assert_recent(event: dict[str, Any]) -> None:
    stamp = event["timestamp"]
    assert stamp.startswith(time.strftime("%Y-", time.gmtime())), event
    # The daemon stamped the message when `logger` handed it over: a few seconds before it was stored.
    sent = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    received = datetime.fromisoformat(event["received_at"].replace("Z", "+00:00"))
    assert abs((received - sent).total_seconds()) < 120, event


# --- rsyslog ------------------------------------------------------------------------------------------------


def _rsyslogd() -> tuple[str, list[str]]:
    found = shutil.which("rsyslogd")
    if found:
        return found, []
    extracted = RSYSLOG_ROOT / "usr" / "sbin" / "rsyslogd"
    if not extracted.exists():
        pytest.skip(f"rsyslogd is not installed: {INSTALL_HINT}")
    modules = next((RSYSLOG_ROOT / "usr" / "lib").glob("*/rsyslog"))
    return str(extracted), ["-M", str(modules)]


def _logger(socket_path: Path, tag: str, priority: str, text: str) -> None:
    subprocess.run(
        ["logger", "--socket-errors=on", f"--id={LOGGER_PID}", "-u", str(socket_path), "-t", tag, "-p", priority, text],
        check=True,
        timeout=10,
    )


@pytest.fixture(scope="module")
def rsyslog(syslog_mintlog: SyslogMintlog, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A foreground rsyslogd reading a unix socket (fed by `logger`) and forwarding by program name: `rs-tcp`
    over TCP octet-counted RFC 5424 with the key in structured data, `rs-udp` over UDP as RFC 3164 with the key
    as the message's first word, `rs-tls` over TLS RFC 5424. Yields the socket's path."""
    binary, module_args = _rsyslogd()
    base = tmp_path_factory.mktemp("rsyslog")
    socket_path = base / "log.sock"
    key, sd_key = syslog_mintlog.key, f'[mintlog@32473 key=\\"{syslog_mintlog.key}\\"]'
    header_5424 = "<%PRI%>1 %TIMESTAMP:::date-rfc3339% %HOSTNAME% %APP-NAME% %PROCID% %MSGID% "
    config = base / "rsyslog.conf"
    config.write_text(
        f"""
global(workDirectory="{base}" localHostname="rsyslog-host" DefaultNetstreamDriverCAFile="{syslog_mintlog.ca_file}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{socket_path}" CreatePath="on")
template(name="Mintlog5424" type="string" string="{header_5424}{sd_key}%msg:::sp-if-no-1st-sp%%msg%")
template(name="Mintlog3164" type="string"
  string="<%PRI%>%TIMESTAMP% %HOSTNAME% %syslogtag% {key}%msg:::sp-if-no-1st-sp%%msg%")
if $programname == "rs-tcp" then {{
  action(type="omfwd" target="127.0.0.1" port="{syslog_mintlog.tcp_port}" protocol="tcp"
         TCP_Framing="octet-counted" template="Mintlog5424")
}}
if $programname == "rs-udp" then {{
  action(type="omfwd" target="127.0.0.1" port="{syslog_mintlog.udp_port}" protocol="udp" template="Mintlog3164")
}}
if $programname == "rs-tls" then {{
  action(type="omfwd" target="127.0.0.1" port="{syslog_mintlog.tls_port}" protocol="tcp"
         StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name"
         StreamDriverPermittedPeers="localhost" TCP_Framing="octet-counted" template="Mintlog5424")
}}
"""
    )
    check = subprocess.run([binary, *module_args, "-N1", "-f", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    log = (base / "rsyslogd.out").open("wb")
    daemon = subprocess.Popen(
        [binary, *module_args, "-n", "-f", str(config), "-i", str(base / "rsyslogd.pid")],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=DAEMON_ENV,
    )
    try:
        _wait_for(socket_path.exists)
        yield socket_path
    finally:
        daemon.terminate()
        daemon.wait(timeout=15)
        log.close()


def test_rsyslog_tcp_octet_counted_rfc5424(syslog_mintlog: SyslogMintlog, rsyslog: Path) -> None:
    text = f"rsyslog tcp {uuid.uuid4().hex}"
    _logger(rsyslog, "rs-tcp", "local0.err", text)

    event = _only(syslog_mintlog.find(text))
    assert event["message"] == text
    assert (event["service"], event["host"], event["level"], event["source"]) == (
        "rs-tcp",
        "rsyslog-host",
        "error",
        "syslog",
    )
    assert event["fields"]["syslog.facility"] == "local0"
    assert event["fields"]["syslog.severity"] == "err"
    assert event["fields"]["syslog.procid"] == str(LOGGER_PID)
    _assert_recent(event)
    _assert_no_key(event, syslog_mintlog.key)


def test_rsyslog_udp_rfc3164_with_the_key_as_first_word(syslog_mintlog: SyslogMintlog, rsyslog: Path) -> None:
    text = f"rsyslog udp {uuid.uuid4().hex}"
    _logger(rsyslog, "rs-udp", "daemon.warning", text)

    event = _only(syslog_mintlog.find(text))
    assert event["message"] == text
    assert (event["service"], event["host"], event["level"]) == ("rs-udp", "rsyslog-host", "warn")
    assert event["fields"]["syslog.facility"] == "daemon"
    _assert_recent(event)
    _assert_no_key(event, syslog_mintlog.key)


def test_rsyslog_tls(syslog_mintlog: SyslogMintlog, rsyslog: Path) -> None:
    text = f"rsyslog tls {uuid.uuid4().hex}"
    _logger(rsyslog, "rs-tls", "auth.crit", text)

    event = _only(syslog_mintlog.find(text))
    assert (event["service"], event["host"], event["level"]) == ("rs-tls", "rsyslog-host", "fatal")
    assert event["fields"]["syslog.facility"] == "auth"
    _assert_no_key(event, syslog_mintlog.key)


# --- syslog-ng ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def syslog_ng(syslog_mintlog: SyslogMintlog, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A foreground syslog-ng reading a unix socket and forwarding by program: `ng-tcp` with its `syslog()`
    driver (RFC 5424, octet-counted) over TCP, `ng-tls` the same over TLS, `ng-udp` over UDP; the key is set as
    the structured-data parameter `.SDATA.mintlog@32473.key`. Yields the socket's path."""
    binary = shutil.which("syslog-ng")
    if binary is None:
        pytest.skip(f"syslog-ng is not installed: {INSTALL_HINT}")
    base = tmp_path_factory.mktemp("syslog-ng")
    socket_path = base / "log.sock"
    config = base / "syslog-ng.conf"
    ports = syslog_mintlog
    config.write_text(
        f"""@version: 3.38
options {{ keep-hostname(no); use-dns(no); stats_freq(0); }};
source s_local {{ unix-dgram("{socket_path}"); }};
rewrite r_mintlog {{
  set("ng-host" value("HOST"));
  set("{syslog_mintlog.key}" value(".SDATA.mintlog@32473.key"));
}};
destination d_tcp {{ syslog("127.0.0.1" port({ports.tcp_port}) transport("tcp")); }};
destination d_udp {{ syslog("127.0.0.1" port({ports.udp_port}) transport("udp")); }};
destination d_tls {{
  syslog("127.0.0.1" port({ports.tls_port}) transport("tls")
         tls(ca-file("{syslog_mintlog.ca_file}") peer-verify(required-trusted)));
}};
filter f_tcp {{ program("ng-tcp"); }};
filter f_udp {{ program("ng-udp"); }};
filter f_tls {{ program("ng-tls"); }};
log {{ source(s_local); filter(f_tcp); rewrite(r_mintlog); destination(d_tcp); }};
log {{ source(s_local); filter(f_udp); rewrite(r_mintlog); destination(d_udp); }};
log {{ source(s_local); filter(f_tls); rewrite(r_mintlog); destination(d_tls); }};
"""
    )
    args = [
        binary,
        "-F",
        "-f",
        str(config),
        "--persist-file",
        str(base / "syslog-ng.persist"),
        "--pidfile",
        str(base / "syslog-ng.pid"),
        "--control",
        str(base / "syslog-ng.ctl"),
    ]
    check = subprocess.run([*args, "--syntax-only"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    log = (base / "syslog-ng.out").open("wb")
    daemon = subprocess.Popen([*args, "-e"], stdout=log, stderr=subprocess.STDOUT, env=DAEMON_ENV)
    try:
        _wait_for(socket_path.exists)
        yield socket_path
    finally:
        daemon.terminate()
        daemon.wait(timeout=15)
        log.close()


@pytest.mark.parametrize("transport", ["tcp", "udp", "tls"])
def test_syslog_ng(syslog_mintlog: SyslogMintlog, syslog_ng: Path, transport: str) -> None:
    text = f"syslog-ng {transport} {uuid.uuid4().hex}"
    _logger(syslog_ng, f"ng-{transport}", "local3.info", text)

    event = _only(syslog_mintlog.find(text))
    assert event["message"] == text
    assert (event["service"], event["host"], event["level"]) == (f"ng-{transport}", "ng-host", "info")
    assert event["fields"]["syslog.facility"] == "local3"
    assert event["fields"]["syslog.severity"] == "info"
    _assert_recent(event)
    _assert_no_key(event, syslog_mintlog.key)


# --- Python's SysLogHandler ---------------------------------------------------------------------------------


@pytest.mark.parametrize("socktype", [socket.SOCK_DGRAM, socket.SOCK_STREAM], ids=["udp", "tcp"])
def test_python_sysloghandler(syslog_mintlog: SyslogMintlog, socktype: socket.SocketKind) -> None:
    """RFC 3164 without timestamp or hostname (`<PRI>tag: message`), the key as the message's first word; over
    TCP the handler ends each message with a NUL and no newline."""
    port = syslog_mintlog.udp_port if socktype == socket.SOCK_DGRAM else syslog_mintlog.tcp_port
    handler = logging.handlers.SysLogHandler(
        address=("127.0.0.1", port), facility=logging.handlers.SysLogHandler.LOG_LOCAL5, socktype=socktype
    )
    handler.ident = "pyapp: "
    handler.setFormatter(logging.Formatter(f"{syslog_mintlog.key} %(message)s"))
    log = logging.getLogger(f"test_syslog.{uuid.uuid4().hex}")
    log.propagate = False
    log.addHandler(handler)
    text = f"python handler {uuid.uuid4().hex}"
    try:
        log.error("%s error", text)
        log.warning("%s warning", text)
    finally:
        handler.close()

    events = syslog_mintlog.find(text, total=2)
    levels = {event["message"]: event["level"] for event in events}
    assert levels == {f"{text} error": "error", f"{text} warning": "warn"}
    assert all(event["service"] == "pyapp" for event in events)
    assert all(event["fields"]["syslog.facility"] == "local5" for event in events)


# --- what is dropped, and counted ----------------------------------------------------------------------------


def _octet(message: bytes) -> bytes:
    return str(len(message)).encode() + b" " + message


def test_drops_are_counted_and_the_tcp_connection_survives(syslog_mintlog: SyslogMintlog) -> None:
    key = syslog_mintlog.key
    marker = uuid.uuid4().hex
    before = {
        reason: syslog_mintlog.dropped("tcp", reason)
        for reason in ("oversized", "invalid_utf8", "unauthenticated", "invalid_key")
    }
    unknown_key = generate_api_key().secret  # well formed, but no such key
    with socket.create_connection(("127.0.0.1", syslog_mintlog.tcp_port), timeout=10) as connection:
        connection.sendall(
            _octet(f'<14>1 - h oversized - - [mintlog@32473 key="{key}"] '.encode() + b"x" * (MAX_FRAME_BYTES + 10))
            + f"<14>Dec  5 10:00:00 h app: {key} {marker} newline-too-long ".encode()
            + b"y" * (MAX_FRAME_BYTES + 10)
            + b"\n"
            + _octet(f'<14>1 - h app - - [mintlog@32473 key="{key}"] '.encode() + b"\xff\xfe bad utf-8")
            + f"<14>just garbage without a key {marker}\n".encode()
            + f"<14>app: {unknown_key} {marker} with a key that does not exist\n".encode()
            + _octet(f'<14>1 - h app - - [mintlog@32473 key="{key}"] {marker} still-here'.encode())
        )
        events = syslog_mintlog.find(f"{marker} still-here")
    assert events[0]["service"] == "app"
    _wait_for(lambda: syslog_mintlog.dropped("tcp", "invalid_key") > before["invalid_key"])
    for reason in before:
        assert syslog_mintlog.dropped("tcp", reason) == before[reason] + (2 if reason == "oversized" else 1), reason
    assert syslog_mintlog.count(marker) == 1  # nothing but the good message was stored


def test_lost_framing_closes_the_connection(syslog_mintlog: SyslogMintlog) -> None:
    before = syslog_mintlog.dropped("tcp", "framing_lost")
    with socket.create_connection(("127.0.0.1", syslog_mintlog.tcp_port), timeout=10) as connection:
        connection.sendall(b"12345678901234567890 <14>what length is that\n")
        assert connection.recv(1) == b""  # closed by Mintlog
    assert syslog_mintlog.dropped("tcp", "framing_lost") == before + 1


def test_udp_drops_are_counted(syslog_mintlog: SyslogMintlog) -> None:
    before = {reason: syslog_mintlog.dropped("udp", reason) for reason in ("oversized", "unauthenticated")}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.sendto(b"<14>app: " + b"z" * (MAX_FRAME_BYTES + 1), ("127.0.0.1", syslog_mintlog.udp_port))
        sender.sendto(b"<14>app: no key here", ("127.0.0.1", syslog_mintlog.udp_port))
    _wait_for(
        lambda: all(syslog_mintlog.dropped("udp", reason) == before[reason] + 1 for reason in before),
        timeout_seconds=10,
    )


def test_tls_client_must_speak_tls(syslog_mintlog: SyslogMintlog) -> None:
    """The TLS port takes a verified TLS client (Python's ssl with the test CA) and nothing stored from plain text."""
    marker = uuid.uuid4().hex
    context = ssl.create_default_context(cafile=str(syslog_mintlog.ca_file))
    with (
        socket.create_connection(("127.0.0.1", syslog_mintlog.tls_port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as connection,
    ):
        connection.sendall(
            _octet(f'<11>1 - tls-host tlsapp - - [mintlog@32473 key="{syslog_mintlog.key}"] {marker}'.encode())
        )
        event = _only(syslog_mintlog.find(marker))
    assert (event["host"], event["service"], event["level"]) == ("tls-host", "tlsapp", "error")
    assert _metric(syslog_mintlog.process, 'mintlog_syslog_messages_total{transport="tls"}') >= 1
