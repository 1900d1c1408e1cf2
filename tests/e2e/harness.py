"""Runs `mintlog run` as a real OS process on a temporary data dir with free ports, for e2e tests."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

__all__ = ["START_TIMEOUT_SECONDS", "MintlogProcess", "free_port", "nats_server_pids"]

# How long a `mintlog run` may take to answer /healthz on both ports. Generous on purpose: a loaded 2-core
# machine (the suite's other processes, a benchmark) can slow start-up several-fold, and a process that exits
# is noticed at once anyway. A process that is slow but not dead must not fail an unrelated test.
START_TIMEOUT_SECONDS = float(os.environ.get("MINTLOG_TEST_START_TIMEOUT", "120"))


# Ports for servers under test come from below the kernel's ephemeral range (32768-60999 on Linux): a port the
# kernel picks with bind(0) is free only for a moment, and any outgoing connection of any process (a client of
# OpenSearch, PostgreSQL, NATS...) may take it before the server binds it. Each pytest-xdist worker draws from
# its own block, and a process never hands the same port out twice.
_PORT_FLOOR, _PORTS_PER_WORKER, _WORKER_BLOCKS = 20_000, 1_500, 8
_handed_out: set[int] = set()


def _port_is_free(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_port() -> int:
    """A loopback port free for TCP and UDP, outside the ephemeral range, unique within this test process."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    block = (int(worker) if worker.isdigit() else 0) % _WORKER_BLOCKS
    first = _PORT_FLOOR + block * _PORTS_PER_WORKER
    candidates = list(range(first, first + _PORTS_PER_WORKER))
    random.shuffle(candidates)
    for port in candidates:
        if port not in _handed_out and _port_is_free(port):
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free loopback port left in {first}-{first + _PORTS_PER_WORKER - 1}")


def nats_server_pids(store_dir: Path) -> list[int]:
    """Pids of nats-server processes whose command line mentions `store_dir`."""
    pids: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "nats-server" in cmdline and str(store_dir) in cmdline:
            pids.append(int(entry.name))
    if pids:
        return pids
    # The server may be started from a config file that names the store dir instead.
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "nats-server" in cmdline and str(store_dir.parent) in cmdline:
            pids.append(int(entry.name))
    return pids


@dataclass
class MintlogProcess:
    """One `python -m mintlog run` child. `start()` waits until both ports answer /healthz."""

    data_dir: Path
    extra_env: dict[str, str] = field(default_factory=lambda: {})
    ingest_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def ingest_url(self) -> str:
        return f"http://127.0.0.1:{self.ingest_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("MINTLOG_")}
        env.update(
            {
                "MINTLOG_DATA_DIR": str(self.data_dir),
                "MINTLOG_HTTP__INGEST_PORT": str(self.ingest_port),
                "MINTLOG_HTTP__API_PORT": str(self.api_port),
                "MINTLOG_HTTP__SHUTDOWN_GRACE_SECONDS": "5",
            }
        )
        env.update(self.extra_env)
        return env

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `mintlog <args>` on this process's settings; it may take as long as a start under load."""
        return subprocess.run(
            [sys.executable, "-m", "mintlog", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_SECONDS,
            check=check,
            cwd=self.data_dir.parent,
        )

    def bootstrap(self, tenant: str = "demo") -> str:
        result = self.cli("admin", "bootstrap", "--tenant", tenant)
        return result.stdout.strip().splitlines()[-1]

    def start(self, timeout_seconds: float = START_TIMEOUT_SECONDS) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir.parent / f"mintlog-{int(time.time() * 1000)}.log"
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mintlog", "run"],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir.parent,
        )
        log.close()
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mintlog exited with {self.process.returncode}:\n{self.logs()}")
            if self._healthy(self.ingest_url) and self._healthy(self.api_url):
                return
            time.sleep(0.05)
        raise RuntimeError(f"mintlog did not become healthy:\n{self.logs()}")

    @staticmethod
    def _healthy(url: str) -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-8000:] if self.log_path else ""

    def stop(self, timeout_seconds: float = 90.0) -> int:
        """SIGTERM and wait; returns the exit code. Each role may take the 10 s shutdown grace and a loaded
        machine slows every step, so the wait is generous: a hung process still fails the test."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout_seconds)

    def kill9(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def cleanup(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        for pid in nats_server_pids(self.data_dir / "nats"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def ingest(self, key: str, body: Any, **headers: str) -> httpx.Response:
        return httpx.post(
            f"{self.ingest_url}/v1/ingest/logs",
            json=body,
            headers={"X-API-Key": key, **headers},
            timeout=30,
        )

    def search(self, key: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{self.api_url}/v1/logs/search", json=body, headers={"X-API-Key": key}, timeout=30)

    def wait_for_total(
        self, key: str, body: dict[str, Any], total: int, timeout_seconds: float = 30.0
    ) -> dict[str, Any]:
        """Search every 50 ms until `total` events match (then at once) or the time is up; the last answer.

        The default leaves room for a loaded machine (parallel test workers): a pass costs only the time the
        events take to be indexed."""
        deadline = time.monotonic() + timeout_seconds
        answer: dict[str, Any] = {}
        while time.monotonic() < deadline:
            response = self.search(key, body)
            assert response.status_code == 200, response.text
            answer = response.json()
            if answer["total"] >= total:
                return answer
            time.sleep(0.05)
        return answer


def with_ctrl_c_enabled(command: list[str]) -> list[str]:
    """`command` started with SIGINT at its default and unblocked, as from a terminal.

    A child inherits an ignored or blocked SIGINT from its parent, and a Python started with SIGINT ignored
    never raises KeyboardInterrupt (POSIX: a program keeps a signal its parent ignored ignored). The test
    worker's own SIGINT state depends on what ran in it before; a terminal's Ctrl-C reaches `mintlog` with
    the default. So the child resets it, then execs the command.
    """
    reset = (
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
        "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT}); os.execv(sys.argv[1], sys.argv[1:])"
    )
    return [sys.executable, "-c", reset, *command]
