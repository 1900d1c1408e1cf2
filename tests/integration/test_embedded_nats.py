"""The embedded nats-server as a real process: restarts, no orphans, stale servers, durability, outages."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from mintlog.adapters.bus.embedded_nats import EmbeddedNatsServer, find_nats_server_binary
from mintlog.adapters.bus.nats import NatsEventBus
from mintlog.errors import BusUnavailable, ConfigError

pytestmark = pytest.mark.integration

MAX_PAYLOAD = 1024 * 1024

# Starts an embedded server, stores three messages, reports the server's pid, then waits to be killed.
PARENT_SCRIPT = """
import asyncio, json, sys
from pathlib import Path
from mintlog.adapters.bus.embedded_nats import EmbeddedNatsServer
from mintlog.adapters.bus.nats import NatsEventBus

async def main():
    server = EmbeddedNatsServer(Path(sys.argv[1]), max_payload_bytes=1048576)
    url = await server.start()
    bus = NatsEventBus([url], connect_timeout_seconds=5, publish_timeout_seconds=5, stream_max_bytes=1 << 26,
                       stream_max_age_seconds=3600, duplicate_window_seconds=60, replicas=1)
    await bus.start()
    for i in range(3):
        await bus.publish("logs.raw.t1", f"before-crash-{i}".encode(), msg_id=f"m{i}")
    print(json.dumps({"nats_pid": server.pid}), flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def is_running(pid: int) -> bool:
    """True while `pid` runs; a zombie waiting for its parent counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def servers_using(config_path: Path) -> list[int]:
    pids: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or not is_running(int(entry)):
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(config_path).encode() in cmdline:
            pids.append(int(entry))
    return pids


async def wait_until(condition: Callable[[], bool], timeout_seconds: float) -> bool:
    deadline = time.monotonic() + timeout_seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def make_bus(url: str, *, publish_timeout_seconds: float = 5.0) -> NatsEventBus:
    return NatsEventBus(
        [url],
        connect_timeout_seconds=5,
        publish_timeout_seconds=publish_timeout_seconds,
        stream_max_bytes=64 * 1024 * 1024,
        stream_max_age_seconds=3600,
        duplicate_window_seconds=60,
        replicas=1,
    )


async def read_all_raw(bus: NatsEventBus, expected: int) -> list[bytes]:
    consumer = await bus.consumer("LOGS_RAW", "reader", filter_subject="logs.raw.>", ack_wait_seconds=30)
    data: list[bytes] = []
    deadline = time.monotonic() + 5
    while len(data) < expected and time.monotonic() < deadline:
        for message in await consumer.fetch(expected, 0.5):
            data.append(message.data)
            await message.ack()
    await consumer.close()
    return data


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[EmbeddedNatsServer]:
    embedded = EmbeddedNatsServer(tmp_path / "nats", max_payload_bytes=MAX_PAYLOAD)
    await embedded.start()
    try:
        yield embedded
    finally:
        await embedded.stop()


async def test_config_uses_sync_always_by_default(server: EmbeddedNatsServer) -> None:
    config = server.config_path.read_text()
    assert "sync_interval: always" in config
    assert "listen: 127.0.0.1:" in config
    assert f"max_payload: {MAX_PAYLOAD}" in config
    assert server.url.startswith("nats://127.0.0.1:")


async def test_config_uses_the_given_sync_interval(tmp_path: Path) -> None:
    async with EmbeddedNatsServer(tmp_path / "nats", sync_interval="2m", max_payload_bytes=MAX_PAYLOAD) as server:
        config = server.config_path.read_text()
        assert "sync_interval: 2m" in config
        assert "always" not in config
        assert server.pid is not None  # the server accepted the interval


def test_invalid_sync_interval_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sometimes"):
        EmbeddedNatsServer(tmp_path, sync_interval="sometimes", max_payload_bytes=MAX_PAYLOAD)


async def test_stop_leaves_no_process(tmp_path: Path) -> None:
    server = EmbeddedNatsServer(tmp_path / "nats", max_payload_bytes=MAX_PAYLOAD)
    await server.start()
    pid = server.pid
    assert pid is not None
    assert server.pid_file.read_text().strip() == str(pid)
    await server.stop()
    assert not is_running(pid)
    assert server.pid is None
    assert not server.pid_file.exists()
    assert servers_using(server.config_path) == []
    await server.stop()  # idempotent


async def test_server_killed_with_sigkill_is_restarted_on_the_same_port(
    server: EmbeddedNatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    url = server.url
    bus = make_bus(url)
    await bus.start()
    try:
        await bus.publish("logs.raw.t1", b"before-kill", msg_id="before")
        killed = server.pid
        assert killed is not None
        with caplog.at_level(logging.WARNING, logger="mintlog.adapters.bus.embedded_nats"):
            os.kill(killed, signal.SIGKILL)
            # Published while the server is down or restarting: the bus waits for the reconnect.
            ack = await bus.publish("logs.raw.t1", b"after-kill", msg_id="after")
            assert not ack.duplicate
            assert await wait_until(lambda: server.pid not in (None, killed), 10)
        assert server.url == url
        assert any("restart" in record.getMessage() for record in caplog.records)
        assert await read_all_raw(bus, 2) == [b"before-kill", b"after-kill"]
    finally:
        await bus.close()


async def test_server_dies_with_its_parent_and_the_next_start_sees_the_data(tmp_path: Path) -> None:
    store = tmp_path / "nats"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT_SCRIPT, str(store)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert parent.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(parent.stdout.readline), 30)
        nats_pid = json.loads(line)["nats_pid"]
        assert is_running(nats_pid)
        parent.kill()  # SIGKILL: the parent runs no cleanup at all
        parent.wait()
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()

    assert await wait_until(lambda: not is_running(nats_pid), 5), "nats-server outlived its parent"

    async with EmbeddedNatsServer(store, max_payload_bytes=MAX_PAYLOAD) as server:
        bus = make_bus(server.url)
        await bus.start()
        try:
            assert await read_all_raw(bus, 3) == [f"before-crash-{i}".encode() for i in range(3)]
        finally:
            await bus.close()


@pytest.mark.parametrize("pid_file", [True, False], ids=["with-pid-file", "found-in-proc"])
async def test_stale_server_is_killed_by_the_next_start(tmp_path: Path, pid_file: bool) -> None:
    store = tmp_path / "nats"
    first = EmbeddedNatsServer(store, max_payload_bytes=MAX_PAYLOAD)
    await first.start()
    stale_url = first.url
    await first.stop()

    # An orphan as an old Mintlog would leave it: no death signal, its own session, holding the store.
    stale = subprocess.Popen(
        [str(find_nats_server_binary()), "-c", str(first.config_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        if pid_file:
            first.pid_file.write_text(f"{stale.pid}\n")
        probe = make_bus(stale_url)
        await probe.start()  # the stale server really serves the store
        await probe.publish("logs.raw.t1", b"written-by-stale", msg_id="stale")
        await probe.close()

        async with EmbeddedNatsServer(store, max_payload_bytes=MAX_PAYLOAD) as second:
            assert stale.poll() is not None, "the stale server is still running"
            assert second.pid != stale.pid
            bus = make_bus(second.url)
            await bus.start()
            try:
                assert await read_all_raw(bus, 1) == [b"written-by-stale"]
            finally:
                await bus.close()
    finally:
        if stale.poll() is None:
            stale.kill()
        stale.wait()


async def test_pid_file_of_an_unrelated_process_is_left_alone(tmp_path: Path) -> None:
    store = tmp_path / "nats"
    store.mkdir()
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (store / "nats-server.pid").write_text(f"{bystander.pid}\n")
        async with EmbeddedNatsServer(store, max_payload_bytes=MAX_PAYLOAD) as server:
            assert server.pid is not None
            assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


async def test_start_failure_reports_the_server_output(tmp_path: Path) -> None:
    fake = tmp_path / "nats-server"
    fake.write_text("#!/bin/sh\necho 'nats-server: cannot open the store: permission denied' >&2\nexit 3\n")
    fake.chmod(0o755)
    server = EmbeddedNatsServer(tmp_path / "nats", max_payload_bytes=MAX_PAYLOAD, binary=fake)
    with pytest.raises(BusUnavailable, match="cannot open the store") as caught:
        await server.start()
    assert "code 3" in str(caught.value)
    assert server.pid is None
    assert not server.pid_file.exists()


async def test_bus_unavailable_when_the_server_is_down(tmp_path: Path) -> None:
    server = EmbeddedNatsServer(tmp_path / "nats", max_payload_bytes=MAX_PAYLOAD)
    await server.start()
    bus = make_bus(server.url, publish_timeout_seconds=1.0)
    try:
        await bus.start()
        consumer = await bus.consumer("LOGS_RAW", "indexer", filter_subject="logs.raw.>", ack_wait_seconds=30)
        await bus.publish("logs.raw.t1", b"in flight", msg_id="in-flight")
        [in_flight] = await consumer.fetch(1, 5)
        await server.stop()

        started = time.monotonic()
        with pytest.raises(BusUnavailable):
            await in_flight.ack()
        assert time.monotonic() - started < 3

        started = time.monotonic()
        with pytest.raises(BusUnavailable):
            await bus.publish("logs.raw.t1", b"nobody listens", msg_id="lost")
        assert time.monotonic() - started < 3
        with pytest.raises(BusUnavailable):
            await bus.ping()
        with pytest.raises(BusUnavailable):
            await consumer.fetch(1, 0.5)
    finally:
        await bus.close()
        await server.stop()


async def test_connecting_to_nothing_fails_within_the_connect_timeout() -> None:
    bus = NatsEventBus(
        ["nats://127.0.0.1:1"],
        connect_timeout_seconds=1,
        publish_timeout_seconds=1,
        stream_max_bytes=1 << 20,
        stream_max_age_seconds=3600,
        duplicate_window_seconds=60,
        replicas=1,
    )
    started = time.monotonic()
    with pytest.raises(BusUnavailable, match="cannot connect"):
        await bus.start()
    assert time.monotonic() - started < 3
    await bus.close()
