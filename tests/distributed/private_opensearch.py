"""A private single-node OpenSearch for the failure suite: a second node of the distribution `scripts/services.sh`
installs, which a test may kill -9 and restart without disturbing the shared OpenSearch of the other tests.

- The distribution is `$SERVICES_DIR/opensearch/opensearch-$OPENSEARCH_VERSION` (the defaults of
  `scripts/services.sh`: `/tmp/mintlog-services`, 2.19.6); `install_opensearch()` runs `services.sh up opensearch`
  first, which installs it on a fresh machine, and fails (never skips) when that is impossible.
- The node runs in the foreground of its own process (`bin/opensearch` execs the JVM, so the process is the JVM),
  as the unprivileged user `mintlog-os` when the tests run as root (OpenSearch refuses root), with its data,
  logs and temp dirs under a temp dir of its own owned by that user, free HTTP and transport ports on
  127.0.0.1, single-node discovery, no security plugin (the integ-test distribution has none), disk
  watermarks off, and a 512 MB heap (1 GB when it cannot start with 512 MB).
- `start()` returns once the cluster health is yellow or green; `kill9()` SIGKILLs the JVM; `restart()` starts
  it again on the same ports and data dir, so indexed documents survive (recovered from the translog).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.distributed.cluster import stop_gracefully
from tests.e2e.harness import free_port

__all__ = ["PrivateOpenSearch", "install_opensearch", "opensearch_home"]

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "services.sh"
OS_USER = "mintlog-os"
HEAPS = ("512m", "1g")


def opensearch_home() -> Path:
    """Where `scripts/services.sh` installs OpenSearch (same variables, same defaults)."""
    services_dir = Path(os.environ.get("SERVICES_DIR", "/tmp/mintlog-services"))
    version = os.environ.get("OPENSEARCH_VERSION", "2.19.6")
    return services_dir / "opensearch" / f"opensearch-{version}"


def install_opensearch() -> Path:
    """Make sure the distribution is installed (`services.sh up opensearch`); its home. Fails if impossible."""
    home = opensearch_home()
    if not (home / "bin" / "opensearch").is_file():
        result = subprocess.run(
            ["bash", str(SCRIPT), "up", "opensearch"], capture_output=True, text=True, timeout=900, check=False
        )
        if result.returncode != 0:
            raise AssertionError(f"scripts/services.sh up opensearch failed: {result.stderr.strip()[-1500:]}")
    if not (home / "bin" / "opensearch").is_file():
        raise AssertionError(f"OpenSearch is not installed at {home}")
    return home


def _java_home() -> str:
    java = shutil.which("java")
    if java is None:
        raise AssertionError("java is not installed (scripts/services.sh up opensearch installs it)")
    return str(Path(os.path.realpath(java)).parent.parent)


def _health(url: str) -> str | None:
    """The cluster status ("green", "yellow", "red"), or None when the node does not answer."""
    try:
        with urllib.request.urlopen(f"{url}/_cluster/health?timeout=1s", timeout=3) as response:
            return str(json.load(response)["status"])
    except (OSError, urllib.error.URLError, ValueError, KeyError):
        return None


@dataclass
class PrivateOpenSearch:
    """One OpenSearch node of its own (see the module docstring); `remove()` stops it and deletes its dirs."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mintlog-test-os-")))
    http_port: int = field(default_factory=free_port)
    transport_port: int = field(default_factory=free_port)
    heap: str = HEAPS[0]
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def _user(self) -> str | None:
        return OS_USER if os.geteuid() == 0 else None

    def _prepare_dirs(self) -> None:
        for name in ("data", "logs", "tmp"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        user = self._user()
        if user is not None:
            for path in (self.root, self.root / "data", self.root / "logs", self.root / "tmp"):
                shutil.chown(path, user=user, group=user)

    def _launch(self, home: Path) -> None:
        self._prepare_dirs()
        log = (self.root / "start.log").open("ab")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "OPENSEARCH_JAVA_HOME": _java_home(),
            # After config/jvm.options, so these win over its -Xms1g -Xmx1g.
            "OPENSEARCH_JAVA_OPTS": f"-Xms{self.heap} -Xmx{self.heap}",
            "OPENSEARCH_TMPDIR": str(self.root / "tmp"),
        }
        self.process = subprocess.Popen(
            [
                str(home / "bin" / "opensearch"),
                *("-E", "cluster.name=mintlog-private"),
                *("-E", f"node.name=mintlog-private-{self.http_port}"),
                *("-E", "discovery.type=single-node"),
                *("-E", "http.host=127.0.0.1", "-E", f"http.port={self.http_port}"),
                *("-E", "transport.host=127.0.0.1", "-E", f"transport.port={self.transport_port}"),
                *("-E", f"path.data={self.root / 'data'}", "-E", f"path.logs={self.root / 'logs'}"),
                *("-E", "cluster.routing.allocation.disk.threshold_enabled=false"),
            ],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            # jvm.options writes logs/gc.log and hs_err files relative to the working directory.
            cwd=self.root,
            env=env,
            user=self._user(),
            start_new_session=True,
        )
        log.close()

    def _wait_ready(self, timeout_seconds: float) -> bool:
        """True once yellow/green; False if the JVM exited first. Fails after `timeout_seconds`."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                return False
            if _health(self.url) in ("green", "yellow"):
                return True
            if time.monotonic() > deadline:
                self.kill9()
                raise AssertionError(f"private OpenSearch not ready within {timeout_seconds}s:\n{self.logs()}")
            time.sleep(0.5)

    def start(self, timeout_seconds: float = 120.0) -> None:
        """Start the node (512 MB heap, else 1 GB) and wait for yellow/green; fails when it cannot start."""
        home = install_opensearch()
        heaps = HEAPS[HEAPS.index(self.heap) :] if self.heap in HEAPS else (self.heap,)
        for heap in heaps:
            self.heap = heap
            self._launch(home)
            if self._wait_ready(timeout_seconds):
                return
        assert self.process is not None
        raise AssertionError(f"private OpenSearch exited with {self.process.returncode}:\n{self.logs()}")

    def kill9(self) -> None:
        """SIGKILL the JVM (no shutdown hooks, no flush) and reap it."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=15)

    def restart(self, timeout_seconds: float = 120.0) -> None:
        """Start again on the same ports and data dir, with the heap that worked; wait for yellow/green."""
        self.start(timeout_seconds)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        stop_gracefully(self.process, signal.SIGTERM, 30)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def logs(self) -> str:
        parts: list[str] = []
        for path in (self.root / "start.log", self.root / "logs" / "mintlog-private.log"):
            if path.exists():
                parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)
