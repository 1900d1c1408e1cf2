"""Slow, idle and half-open clients cannot hold the HTTP ports: real sockets against real `mintlog run` processes.

With short timeouts (headers 2 s, body parts 2 s, whole body 4 s), on both ports and in both serving modes (the
embedded server, and Granian worker processes):

- a connection that sends nothing, or only part of its headers, or dribbles its headers, or stays idle after a
  response, is closed by the server within the header read timeout;
- a request whose body stalls (a `Content-Length` larger than what is sent) is answered 408 problem+json and
  closed within the body idle timeout; a body dribbled slowly is answered 408 at the whole-body timeout;
- a normal client gets its answer within a few seconds while 1,500 idle connections, header dribblers and
  stalled bodies are connected;
- past `MINTLOG_HTTP__MAX_CONNECTIONS`, a new connection waits until a slow one is closed, then is served (in
  the embedded server; with workers each has its own share and accept queue, see docs/operations.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.distributed.cluster import RoleProcess
from tests.e2e.harness import MintlogProcess
from tests.services import SHARED_STREAMS_ENV

HEADER_TIMEOUT = 2.0
BODY_IDLE_TIMEOUT = 2.0
BODY_TOTAL_TIMEOUT = 4.0
# Added to a timeout before a close counts as late: the machine running the suite may be loaded.
MARGIN = 3.0
TIMEOUT_ENV = {
    "MINTLOG_HTTP__HEADER_READ_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
    "MINTLOG_HTTP__BODY_IDLE_TIMEOUT_SECONDS": str(BODY_IDLE_TIMEOUT),
    "MINTLOG_HTTP__BODY_READ_TIMEOUT_SECONDS": str(BODY_TOTAL_TIMEOUT),
}
IDLE_CONNECTIONS = 1_500
DRIBBLERS = 50
STALLED_BODIES = 50


@dataclass(frozen=True)
class Port:
    number: int
    post_path: str
    key: str

    def stalled_post(self, *, announced: int = 100) -> bytes:
        """The headers of a POST announcing `announced` body bytes, and its first 10."""
        return (
            f"POST {self.post_path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {self.key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {announced}\r\n\r\n"
        ).encode() + b'{"events":'


@dataclass(frozen=True)
class Ending:
    """How a slow connection ended: after how long the server closed it (None: still open), and what it sent."""

    closed_after: float | None
    answer: bytes

    @property
    def status(self) -> int | None:
        return int(self.answer.split(b" ", 2)[1]) if self.answer.startswith(b"HTTP/1.1 ") else None

    def problem(self) -> dict[str, object]:
        head, _, body = self.answer.partition(b"\r\n\r\n")
        assert b"content-type: application/problem+json" in head.lower(), head
        return json.loads(body)


class SlowClient:
    """One raw connection that writes `writes` (delay before each, bytes) and reads until the server closes."""

    def __init__(self, port: int, writes: Sequence[tuple[float, bytes]] = ()) -> None:
        self._port = port
        self._writes = list(writes)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._writing: asyncio.Task[None] | None = None
        self._opened = 0.0

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self._port)
        self._opened = time.monotonic()
        self._writing = asyncio.create_task(self._write())

    async def _write(self) -> None:
        assert self._writer is not None
        with contextlib.suppress(OSError):
            for delay, data in self._writes:
                await asyncio.sleep(delay)
                self._writer.write(data)
                await self._writer.drain()

    async def ending(self, wait_seconds: float) -> Ending:
        """Wait up to `wait_seconds` from the connection's opening for the server to close it."""
        assert self._reader is not None
        assert self._writer is not None
        assert self._writing is not None
        answer = b""
        closed_after: float | None = None
        try:
            async with asyncio.timeout_at(asyncio.get_running_loop().time() + wait_seconds - self.age()):
                while chunk := await self._reader.read(65536):
                    answer += chunk
            closed_after = self.age()
        except TimeoutError:
            pass
        except ConnectionError:  # reset, or a broken pipe when the dribbler wrote after the server closed
            closed_after = self.age()
        finally:
            await self.close()
        return Ending(closed_after, answer)

    async def close(self) -> None:
        if self._writing is not None:
            self._writing.cancel()
        if self._writer is not None and not self._writer.is_closing():
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()

    def age(self) -> float:
        return time.monotonic() - self._opened


def dribble(data: bytes, every_seconds: float) -> list[tuple[float, bytes]]:
    return [(every_seconds, data[index : index + 1]) for index in range(len(data))]


@contextlib.asynccontextmanager
async def connected(clients: Sequence[SlowClient], *, at_once: int = 200) -> AsyncIterator[None]:
    """Connect every client (at most `at_once` handshakes at a time); close those still open on the way out."""
    gate = asyncio.Semaphore(at_once)

    async def connect(client: SlowClient) -> None:
        async with gate:
            await client.connect()

    try:
        await asyncio.gather(*(connect(client) for client in clients))
        yield
    finally:
        await asyncio.gather(*(client.close() for client in clients))


@pytest.fixture(scope="module", autouse=True)
def enough_open_files() -> None:
    """This test process holds a few thousand sockets at once."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 8_192 if hard == resource.RLIM_INFINITY else min(8_192, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


@pytest.fixture(scope="module")
def slow_timeouts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MintlogProcess, str]]:
    """An all-in-one Mintlog with short read timeouts and the default connection cap."""
    process = MintlogProcess(data_dir=tmp_path_factory.mktemp("slow") / "data", extra_env=TIMEOUT_ENV)
    try:
        process.start()
        yield process, process.bootstrap("demo")
    finally:
        process.cleanup()


def both_ports(mintlog: MintlogProcess, key: str) -> list[Port]:
    return [
        Port(mintlog.ingest_port, "/v1/ingest/logs", key),
        Port(mintlog.api_port, "/v1/logs/search", key),
    ]


async def assert_slow_clients_are_cut_off(port: Port) -> None:
    """Every kind of slow client is closed (or answered 408 and closed) within its timeout."""
    healthz = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    clients = {
        "sends nothing": SlowClient(port.number),
        "half its headers": SlowClient(port.number, [(0, b"GET /healthz HTTP/1.1\r\nHo")]),
        "dribbles headers": SlowClient(port.number, dribble(b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"a" * 40, 0.25)),
        "idle after a response": SlowClient(port.number, [(0, healthz)]),
        "stalled body": SlowClient(port.number, [(0, port.stalled_post())]),
        "dribbled body": SlowClient(port.number, [(0, port.stalled_post()), *dribble(b"[" * 40, 1.0)]),
    }
    async with connected(list(clients.values())):
        endings = await asyncio.gather(*(client.ending(20.0) for client in clients.values()))
    ended = dict(zip(clients, endings, strict=True))
    for name in ("sends nothing", "half its headers", "dribbles headers"):
        ending = ended[name]
        assert ending.closed_after is not None, f"{name}: still open after 20 s"
        assert HEADER_TIMEOUT - 0.5 <= ending.closed_after <= HEADER_TIMEOUT + MARGIN, (name, ending)
        assert ending.answer == b"", (name, ending)
    idle = ended["idle after a response"]
    assert idle.status == 200
    assert idle.closed_after is not None
    assert idle.closed_after <= HEADER_TIMEOUT + MARGIN, idle
    for name, timeout, detail in (
        ("stalled body", BODY_IDLE_TIMEOUT, f"no part of the request body arrived for {BODY_IDLE_TIMEOUT:g} s"),
        ("dribbled body", BODY_TOTAL_TIMEOUT, f"the request body did not arrive within {BODY_TOTAL_TIMEOUT:g} s"),
    ):
        ending = ended[name]
        assert ending.status == 408, (name, ending)
        assert ending.closed_after is not None, f"{name}: still open after 20 s"
        assert timeout - 0.5 <= ending.closed_after <= timeout + MARGIN, (name, ending)
        problem = ending.problem()
        assert problem["code"] == "body_timeout"
        assert problem["detail"] == f"{detail}; the connection is closed"


async def assert_served_among_slow_clients(
    ports: Sequence[tuple[Port, int]], normal_requests: Callable[[], Awaitable[None]]
) -> None:
    """With (per port) that many idle connections, plus header dribblers and stalled bodies, connected,
    `normal_requests` succeed within 5 s; then the server closes every slow connection within its timeouts."""
    header = b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"a" * 40
    slow: list[SlowClient] = []
    for port, idle in ports:
        slow += [SlowClient(port.number) for _ in range(idle)]
        slow += [SlowClient(port.number, dribble(header, 0.25)) for _ in range(DRIBBLERS)]
        slow += [SlowClient(port.number, [(0, port.stalled_post())]) for _ in range(STALLED_BODIES)]
    async with connected(slow):
        await asyncio.sleep(0.2)
        started = time.monotonic()
        await normal_requests()
        assert time.monotonic() - started < 5.0
        endings = await asyncio.gather(*(client.ending(BODY_TOTAL_TIMEOUT + 2 * MARGIN) for client in slow))
    still_open = [ending for ending in endings if ending.closed_after is None]
    assert not still_open, f"{len(still_open)} of {len(slow)} slow connections still open"
    assert sum(ending.status == 408 for ending in endings) == len(ports) * STALLED_BODIES


@pytest.mark.parametrize("port_name", ["ingest", "api"])
async def test_slow_clients_are_cut_off_by_the_read_timeouts(
    slow_timeouts: tuple[MintlogProcess, str], port_name: str
) -> None:
    mintlog, key = slow_timeouts
    ingest, api = both_ports(mintlog, key)
    await assert_slow_clients_are_cut_off(ingest if port_name == "ingest" else api)


async def ingest_one(url: str, key: str) -> None:
    async with httpx.AsyncClient(headers={"X-API-Key": key}, timeout=30) as client:
        response = await client.post(f"{url}/v1/ingest/logs", json={"events": [{"message": "served"}]})
    assert response.status_code == 202, response.text


async def search(url: str, key: str) -> None:
    async with httpx.AsyncClient(headers={"X-API-Key": key}, timeout=30) as client:
        response = await client.post(f"{url}/v1/logs/search", json={"query": "served"})
    assert response.status_code == 200, response.text


async def test_a_normal_client_is_served_while_many_slow_clients_are_connected(
    slow_timeouts: tuple[MintlogProcess, str],
) -> None:
    mintlog, key = slow_timeouts
    ingest, api = both_ports(mintlog, key)

    async def normal_requests() -> None:
        await ingest_one(mintlog.ingest_url, key)
        await search(mintlog.api_url, key)

    await assert_served_among_slow_clients([(ingest, IDLE_CONNECTIONS), (api, 500)], normal_requests)


async def assert_connections_past_the_cap_wait_for_a_slot(url: str, port: int, cap: int) -> None:
    """With `cap` idle connections open, a new request is answered only once the header timeout closes them."""
    idle = [SlowClient(port) for _ in range(cap)]
    # The first slot frees when the first idle connection reaches its header timeout, counted from when the
    # server accepted it, which is no earlier than `opening`: so the answer cannot come before `opening` + the
    # timeout, however slowly a loaded machine opens the connections.
    opening = time.monotonic()
    async with connected(idle):
        await asyncio.sleep(0.2)
        started = time.monotonic()
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.get(f"{url}/healthz")
        answered = time.monotonic()
        assert response.status_code == 200
        assert answered - opening >= HEADER_TIMEOUT - 0.1, answered - opening
        assert answered - started <= HEADER_TIMEOUT + MARGIN, answered - started
        for ending in await asyncio.gather(*(client.ending(HEADER_TIMEOUT + MARGIN) for client in idle)):
            assert ending.closed_after is not None


async def test_connections_past_the_cap_wait_until_a_slow_one_is_closed(
    mintlog_factory: Callable[..., MintlogProcess],
) -> None:
    mintlog = mintlog_factory(**TIMEOUT_ENV, MINTLOG_HTTP__MAX_CONNECTIONS="16")
    mintlog.start()
    await assert_connections_past_the_cap_wait_for_a_slot(mintlog.ingest_url, mintlog.ingest_port, 16)
    await assert_connections_past_the_cap_wait_for_a_slot(mintlog.api_url, mintlog.api_port, 16)


@pytest.fixture
def start_workers(tmp_path: Path, nats_url: str) -> Iterator[Callable[[str], tuple[RoleProcess, str]]]:
    """Starts `mintlog run --role=<role>` served by 2 Granian workers; returns the process and a key of its
    database."""
    started: list[RoleProcess] = []

    def start(role: str) -> tuple[RoleProcess, str]:
        env = {
            **TIMEOUT_ENV,
            **SHARED_STREAMS_ENV,
            "MINTLOG_NATS__URL": nats_url,
            "MINTLOG_HTTP__SHUTDOWN_GRACE_SECONDS": "2",
        }
        process = RoleProcess(name=role, role=role, env=env, data_dir=tmp_path / role, workers=2)
        process.data_dir.mkdir(parents=True)
        bootstrap = subprocess.run(
            [sys.executable, "-m", "mintlog", "admin", "bootstrap", "--tenant", "slowclients"],
            env={
                **{name: value for name, value in os.environ.items() if not name.startswith("MINTLOG_")},
                **env,
                "MINTLOG_DATA_DIR": str(process.data_dir),
            },
            cwd=process.data_dir,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        started.append(process)
        process.start(timeout_seconds=60)
        return process, bootstrap.stdout.strip().splitlines()[-1]

    yield start
    for process in started:
        process.cleanup()


@pytest.mark.parametrize("role", ["ingest", "api"])
async def test_worker_processes_cut_off_slow_clients_and_serve_normal_ones(
    start_workers: Callable[[str], tuple[RoleProcess, str]], role: str
) -> None:
    process, key = start_workers(role)
    port = Port(process.port, "/v1/ingest/logs" if role == "ingest" else "/v1/logs/search", key)
    await assert_slow_clients_are_cut_off(port)

    async def normal_request() -> None:
        await (ingest_one if role == "ingest" else search)(process.url, key)

    await assert_served_among_slow_clients([(port, IDLE_CONNECTIONS)], normal_request)


def _alive(pid: int) -> bool:
    """Whether `pid` is a running process (a zombie waiting to be reaped has exited)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_workers_stop_when_their_manager_is_killed(start_workers: Callable[[str], tuple[RoleProcess, str]]) -> None:
    """`kill -9` of a role process serving with Granian workers leaves no worker serving its port."""
    process, _key = start_workers("ingest")
    workers = process.worker_pids()
    assert len(workers) == 2, workers

    process.kill9()

    deadline = time.monotonic() + 30  # shutdown grace 2 s, then each worker closes its runtime
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in workers if _alive(pid)], "workers outlived their killed manager"
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{process.url}/healthz", timeout=2)
