"""Start and stop the system under test for `benchmarks/suite.py` and `benchmarks/soak.py`.

- `AllInOne`: one `python -m mintlog run` (all roles, embedded defaults) on a temporary data dir, with a
  bootstrapped tenant and its API key; the embedded nats-server's URL is read from the config it writes.
- `Distributed`: every role its own process (`tests/distributed/cluster.py`): ingest (2 Granian workers), api,
  pipeline x2, alert, notify, on a private NATS JetStream and Redis, a fresh database on the PostgreSQL of
  `scripts/services.sh` and an index prefix of its own on its OpenSearch; database and indices are dropped at
  the end.
- `rss_by_process`: current and peak RSS of every process of the system (the roots and all their
  descendants), labelled by their command line: "mintlog", "nats-server", "mintlog-pipeline", "ingest-1",
  "ingest-1-worker", ...

Both topologies are context managers: every process they start is stopped (SIGTERM, then SIGKILL) and
their temporary directories are removed, whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from benchmarks.load import free_port

BENCH_ENV = {
    "MINTLOG_LOG_LEVEL": "warning",
    # Measure throughput, not the default per-key limit (limits stay on, just far away).
    "MINTLOG_RATELIMIT__DEFAULT_KEY_REQUESTS_PER_MINUTE": "10000000",
    "MINTLOG_RATELIMIT__TENANT_INGEST_EVENTS_PER_SECOND": "10000000",
}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes and RSS


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        with contextlib.suppress(OSError, ValueError):
            found += [int(child) for child in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    return found


def descendants(pid: int) -> list[int]:
    """`pid`'s children, their children, ... (depth first)."""
    found: list[int] = []
    for child in children(pid):
        found.append(child)
        found += descendants(child)
    return found


def status_kib(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (peak) and RssAnon (anonymous memory: heaps, not mapped files) of `pid` in KiB; empty when
    it is gone."""
    values: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:", "RssAnon:")):
                name, value = line.split(":", 1)
                values[name] = int(value.split()[0])
    except OSError:
        return {}
    return values


def label_of(argv: list[str], parent_argv: list[str] | None = None, parent_label: str = "") -> str:
    """A generic name for a process of the system, from its command line.

    `nats-server ...` → "nats-server"; `python -m mintlog run` → "mintlog"; `python -m mintlog run --role=api`
    → "mintlog-api"; any other `python -m mintlog ... <word>` (e.g. a pipeline child) → "mintlog-<word>";
    a fork with its parent's command line (a Granian worker) → "<parent label>-worker".
    """
    if not argv:
        return f"{parent_label}-child" if parent_label else "unknown"
    if Path(argv[0]).name.startswith("nats-server"):
        return "nats-server"
    if parent_argv is not None and argv == parent_argv and parent_label:
        return f"{parent_label}-worker"
    if "mintlog" in argv or Path(argv[0]).name == "mintlog":
        rest = argv[argv.index("mintlog") + 1 :] if "mintlog" in argv else argv[1:]
        for arg in rest:
            match = re.match(r"--roles?=(.+)", arg)
            if match:
                return "mintlog-" + match.group(1).replace(",", "+")
        if "--role" in rest or "--roles" in rest:
            flag = "--role" if "--role" in rest else "--roles"
            position = rest.index(flag)
            if position + 1 < len(rest):
                return "mintlog-" + rest[position + 1].replace(",", "+")
        words = [arg for arg in rest if not arg.startswith("-")]
        if not words or words == ["run"]:
            return "mintlog"
        return "mintlog-" + words[-1]
    name = Path(argv[0]).name
    return f"{parent_label}-{name}" if parent_label else name


def pipeline_stage_label(pid: int) -> str | None:
    """The label "mintlog-pipeline-<stage>" for a pipeline child of `mintlog run` (`MINTLOG_PIPELINE__STAGES` in its
    environment, see `mintlog/launch/pipeline_child.py`), else None."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    values = dict(item.split(b"=", 1) for item in environ if b"=" in item)
    stage = values.get(b"MINTLOG_PIPELINE__STAGES")
    if values.get(b"MINTLOG_ROLES") != b"pipeline" or not stage:
        return None
    return "mintlog-pipeline-" + stage.decode(errors="replace").replace(",", "+")


def labelled_tree(roots: dict[str, int]) -> dict[str, int]:
    """Label → pid for the `roots` (label given) and all their descendants (labelled by `label_of`); a label
    used twice gets "#2", "#3", ..."""
    labelled: dict[str, int] = {}

    def add(label: str, pid: int) -> None:
        unique, count = label, 1
        while unique in labelled:
            count += 1
            unique = f"{label}#{count}"
        labelled[unique] = pid

    def walk(pid: int, label: str) -> None:
        add(label, pid)
        argv = cmdline(pid)
        for child in children(pid):
            walk(child, pipeline_stage_label(child) or label_of(cmdline(child), argv, label))

    for label, pid in roots.items():
        walk(pid, label)
    return labelled


def rss_by_process(roots: dict[str, int]) -> dict[str, dict[str, int]]:
    """{label: {"pid", "rss_kib", "peak_kib", "anon_kib"}} for every live process of the system."""
    result: dict[str, dict[str, int]] = {}
    for label, pid in labelled_tree(roots).items():
        values = status_kib(pid)
        if values:
            result[label] = {
                "pid": pid,
                "rss_kib": values.get("VmRSS", 0),
                "peak_kib": values.get("VmHWM", 0),
                "anon_kib": values.get("RssAnon", 0),
            }
    return result


def stop_process(process: subprocess.Popen[bytes], tree: list[int], timeout: float = 60.0) -> None:
    """SIGTERM `process`, SIGKILL it after `timeout`; then SIGKILL any of its recorded descendants (`tree`, pids
    taken while it ran) still alive with the same command line they had."""
    recorded = {pid: cmdline(pid) for pid in tree}
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    deadline = time.monotonic() + 10
    for pid, argv in recorded.items():
        while argv and cmdline(pid) == argv and time.monotonic() < deadline:
            time.sleep(0.1)
        if argv and cmdline(pid) == argv:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------- all-in-one


class _Started:
    """`with X() as x:` starts x (stopping whatever started if starting fails) and always stops it."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class AllInOne(_Started):
    """A fresh `python -m mintlog run` on a temp data dir: `ingest`, `api`, `key`, `pid`, `nats_url()`."""

    def __init__(self, extra_env: dict[str, str] | None = None, name: str = "mintlog", nats: Any = None) -> None:
        """`nats`: a started `tests.distributed.cluster.NatsServer` to use instead of the embedded one."""
        self.extra_env = extra_env or {}
        if nats is not None:
            self.extra_env = self.extra_env | {"MINTLOG_NATS__URL": nats.url}
        self.nats = nats
        self.name = name
        self.temp_dir = Path(tempfile.mkdtemp(prefix="mintlog-suite-"))
        self.data_dir = self.temp_dir / "data"
        self.process: subprocess.Popen[bytes] | None = None
        self.ingest = self.api = self.key = ""
        self._tree: list[int] = []

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def log_path(self) -> Path:
        return self.temp_dir / "mintlog.log"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MINTLOG_")}
        env.update(BENCH_ENV)
        env["MINTLOG_DATA_DIR"] = str(self.data_dir)
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 90.0) -> AllInOne:
        ingest_port, api_port = free_port(), free_port()
        env = self.env() | {"MINTLOG_HTTP__INGEST_PORT": str(ingest_port), "MINTLOG_HTTP__API_PORT": str(api_port)}
        with self.log_path.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mintlog", "run"], env=env, stdout=out, stderr=subprocess.STDOUT
            )
        self.ingest, self.api = f"http://127.0.0.1:{ingest_port}", f"http://127.0.0.1:{api_port}"
        wait_http([f"{self.ingest}/healthz", f"{self.api}/healthz"], timeout, self.process, self.log_path)
        boot = subprocess.run(
            [sys.executable, "-m", "mintlog", "admin", "bootstrap", "--tenant", "bench"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if boot.returncode != 0:
            raise RuntimeError(f"mintlog admin bootstrap failed: {boot.stderr[-2000:]}")
        self.key = boot.stdout.strip().splitlines()[-1]
        self._tree = descendants(self.pid)
        return self

    def roots(self) -> dict[str, int]:
        roots = {self.name: self.pid} if self.process is not None and self.process.poll() is None else {}
        if self.nats is not None and self.nats.process is not None and self.nats.process.poll() is None:
            roots["nats-server"] = self.nats.process.pid
        return roots

    def rss(self) -> dict[str, dict[str, int]]:
        return rss_by_process(self.roots())

    def nats_url(self) -> str:
        """The embedded nats-server's client URL, from the config it was started with (or the external one's)."""
        if self.nats is not None:
            return str(self.nats.url)
        return f"nats://{self._nats_config_address('listen')}"

    def nats_monitor_url(self) -> str:
        """The embedded nats-server's monitoring URL (`/varz`, `/jsz`), from the config it was started with."""
        if self.nats is not None:
            return f"http://127.0.0.1:{self.nats.monitor_port}"
        return f"http://{self._nats_config_address('http')}"

    def _nats_config_address(self, key: str) -> str:
        config = self.data_dir / "nats" / "nats-server.conf"
        match = re.search(rf"^{key}:\s*([\d.]+:\d+)", config.read_text(), re.MULTILINE)
        if match is None:
            raise RuntimeError(f"no {key} address in {config}")
        return match.group(1)

    def index_bytes(self) -> int:
        index_dir = self.data_dir / "index"
        return sum(p.stat().st_size for p in index_dir.rglob("*") if p.is_file()) if index_dir.exists() else 0

    def stop(self) -> None:
        if self.process is not None:
            self._tree = sorted(set(self._tree) | set(descendants(self.pid)))
            stop_process(self.process, self._tree)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def wait_http(urls: list[str], timeout: float, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    pending = list(urls)
    while pending:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}: {tail(log_path)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"not serving {pending} within {timeout} s: {tail(log_path)}")
        try:
            urllib.request.urlopen(pending[0], timeout=1)
            pending.pop(0)
        except OSError:
            time.sleep(0.1)


def tail(path: Path, size: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""


# ---------------------------------------------------------------- distributed


def services_env() -> dict[str, str]:
    """`scripts/services.sh up postgres redis opensearch` (idempotent) and the URLs it prints with `env`."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "services.sh"
    up = subprocess.run(
        ["bash", str(script), "up", "postgres", "redis", "opensearch"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if up.returncode != 0:
        raise RuntimeError(f"scripts/services.sh up failed: {up.stderr[-2000:]}")
    printed = subprocess.run(["bash", str(script), "env"], capture_output=True, text=True, timeout=60, check=True)
    return dict(line.split("=", 1) for line in printed.stdout.splitlines() if "=" in line)


async def execute_sql(server_url: str, statement: str) -> None:
    """Run one statement on the PostgreSQL server of `server_url` (e.g. CREATE or DROP DATABASE)."""
    import asyncpg  # pyright: ignore[reportMissingTypeStubs]

    connection = await asyncpg.connect(server_url.replace("postgresql+asyncpg://", "postgresql://"))  # pyright: ignore[reportUnknownMemberType]
    try:
        await connection.execute(statement)  # pyright: ignore[reportUnknownMemberType]
    finally:
        await connection.close()  # pyright: ignore[reportUnknownMemberType]


DISTRIBUTED_COUNTS = {"ingest": 1, "api": 1, "pipeline": 2, "alert": 1, "notify": 1}
DISTRIBUTED_WORKERS = {"ingest": 2}


class Distributed(_Started):
    """The roles as separate processes on real services; `ingest`, `api`, `key`, `opensearch_url`, `prefix`."""

    def __init__(self, services: dict[str, str], extra_env: dict[str, str] | None = None) -> None:
        self.services = services
        self.extra_env = extra_env or {}
        self.opensearch_url = services["TEST_OPENSEARCH_URL"]
        self.postgres_url = services["TEST_POSTGRES_URL"]
        self.root = Path(tempfile.mkdtemp(prefix="mintlog-suite-dist-"))
        self.database = f"bench_{secrets.token_hex(5)}"
        self.prefix = f"bench{secrets.token_hex(4)}"
        self.nats: Any = None
        self.redis: Any = None
        self.cluster: Any = None
        self.database_created = False
        self.ingest = self.api = self.key = ""

    def env(self) -> dict[str, str]:
        database_url = self.postgres_url.rsplit("/", 1)[0] + f"/{self.database}"
        return (
            BENCH_ENV
            | {
                # `RoleProcess` sees a role without HTTP as started once it logs "mintlog running" (info).
                "MINTLOG_LOG_LEVEL": "info",
                "MINTLOG_NATS__URL": self.nats.url,
                "MINTLOG_DATABASE__URL": database_url,
                "MINTLOG_STORE__URL": self.opensearch_url,
                "MINTLOG_STORE__OPENSEARCH__INDEX_PREFIX": self.prefix,
                "MINTLOG_CACHE__URL": self.redis.url,
                "MINTLOG_BLOB__URL": f"file://{self.root / 'blob'}",
                "MINTLOG_EGRESS_ALLOW": "127.0.0.0/8",
            }
            | self.extra_env
        )

    def start(self) -> Distributed:
        from tests.distributed.cluster import Cluster, NatsServer, RedisServer

        self.nats = NatsServer(self.root / "nats")
        self.nats.start()
        self.redis = RedisServer(self.root / "redis")
        self.redis.start()
        asyncio.run(execute_sql(self.postgres_url, f'CREATE DATABASE "{self.database}"'))
        self.database_created = True
        self.cluster = Cluster(self.root / "roles", self.env(), dict(DISTRIBUTED_COUNTS), dict(DISTRIBUTED_WORKERS))
        self.key = self.cluster.bootstrap("bench")
        self.cluster.start()
        self.ingest, self.api = self.cluster.ingest_urls[0], self.cluster.api_urls[0]
        return self

    def roots(self) -> dict[str, int]:
        roots: dict[str, int] = {}
        if self.cluster is not None:
            for role in self.cluster.processes:
                if role.running():
                    roots[role.name] = role.process.pid
        if self.nats is not None and self.nats.process is not None and self.nats.process.poll() is None:
            roots["nats-server"] = self.nats.process.pid
        return roots

    def rss(self) -> dict[str, dict[str, int]]:
        return rss_by_process(self.roots())

    def cpu_snapshot(self) -> dict[str, tuple[int, float]]:
        """{label: (pid, CPU seconds so far)} of every process of the system (labelled as by `rss`), its
        private redis-server ("redis-server") and the OpenSearch node it writes to ("opensearch"), which
        other clients of that node may keep busy too."""
        from benchmarks.cpu_accounting import cpu_snapshot, opensearch_pid

        labelled = labelled_tree(self.roots())
        if self.redis is not None and self.redis.process is not None and self.redis.process.poll() is None:
            labelled["redis-server"] = self.redis.process.pid
        node = opensearch_pid(self.opensearch_url)
        if node is not None:
            labelled["opensearch"] = node
        return cpu_snapshot(labelled)

    def stop(self) -> None:
        if self.cluster is not None:
            for role in self.cluster.processes:
                if role.process is not None:
                    with contextlib.suppress(Exception):
                        stop_process(role.process, descendants(role.process.pid), timeout=30)
        for server in (self.nats, self.redis):
            if server is not None:
                with contextlib.suppress(Exception):
                    server.stop()
        if self.database_created:
            with contextlib.suppress(Exception):
                asyncio.run(execute_sql(self.postgres_url, f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))
        with contextlib.suppress(Exception):
            from tests.services import delete_opensearch_indices

            delete_opensearch_indices(self.opensearch_url, self.prefix)
        shutil.rmtree(self.root, ignore_errors=True)
