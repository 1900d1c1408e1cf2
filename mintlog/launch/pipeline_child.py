"""`PipelineChild`: one pipeline stage in a child process of `mintlog run`, so that intake, normalizing and
indexing run on every core; `pipeline_services` picks between children and the in-process `PipelineRole`.

One Python process runs Python code on one core at a time (the GIL). When one `mintlog run` serves ingest or
api and also runs the pipeline (the default all-in-one shape), each stage of the pipeline runs in its own child
`python -m mintlog run` with `MINTLOG_ROLES=pipeline` and `MINTLOG_PIPELINE__STAGES` set to that stage
(`normalize`: normalizer, archive writer, archive retention; `index`: indexer and retention, the one process
writing the store), on the same NATS (the embedded nats-server's URL, or `MINTLOG_NATS__URL`) and the same
data directory. The parent keeps ingest, api, alert and notify; it still opens the log store, for searching.
`MINTLOG_PIPELINE__OWN_PROCESS=false` keeps everything in one process, and so does a bus a child cannot reach
(the in-memory bus of tests).

Guarantees:

- `start()` returns once the child's roles run (its ops port answers `/healthz`, which the child serves only
  after every role started); it raises `MintlogError` when the child exits or is not up within
  `_START_TIMEOUT_SECONDS`.
- The child never outlives its parent: the kernel SIGKILLs it when the parent's event-loop thread dies, even
  after `kill -9` (`PR_SET_PDEATHSIG`). Nothing is lost: whatever it had not acked is redelivered by the
  durable consumers to the next child, and writes are idempotent by event id.
- A child that dies is started again (backoff from 0.5 s up to 10 s), each restart logged and counted in
  `mintlog_pipeline_child_restarts_total{stage}`; when the embedded nats-server had to move to another port, the
  child is restarted on the new URL.
- A signal meant for the whole `mintlog run` (Ctrl-C at a terminal, `kill -INT -<pgid>`) does not reach the
  child, which runs in its own session: the parent stops it, after intake, as below.
- `stop()` sends SIGTERM: the child stops fetching, flushes the archive and the indexer and acks, within
  `MINTLOG_HTTP__SHUTDOWN_GRACE_SECONDS`; it is killed if it has not exited `_KILL_AFTER_SECONDS` later.
- The parent's `/metrics` includes the child's series (summed with its own, see `mintlog.metrics_merge`); the
  child logs to the parent's standard output and error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time

import aiohttp

from mintlog.children import die_with_parent_preexec, wait_exit
from mintlog.errors import MintlogError
from mintlog.roles.kit.base import Service
from mintlog.runtime import Runtime
from mintlog.settings import PipelineStage

__all__ = ["PipelineChild", "child_bus_url", "pipeline_in_child", "pipeline_services"]

logger = logging.getLogger(__name__)

_START_TIMEOUT_SECONDS = 120.0
_KILL_AFTER_SECONDS = 30.0
_RESTART_BACKOFF_FIRST_SECONDS = 0.5
_RESTART_BACKOFF_MAX_SECONDS = 10.0
_URL_CHECK_SECONDS = 1.0
_METRICS_TIMEOUT_SECONDS = 2.0


def child_bus_url(runtime: Runtime) -> str | None:
    """The NATS URL a child process can connect to: the embedded server's, or `MINTLOG_NATS__URL`; None for a
    bus a child cannot share (the in-memory bus of tests)."""
    if runtime.settings.nats.url:
        return runtime.settings.nats.url
    from mintlog.adapters.bus.embedded import EmbeddedNatsBus

    if isinstance(runtime.bus, EmbeddedNatsBus):
        return runtime.bus.server.url
    return None


def pipeline_in_child(runtime: Runtime, *, serves_http: bool) -> bool:
    """Whether the pipeline stages run in child processes: when this process also serves HTTP (ingest or api),
    `MINTLOG_PIPELINE__OWN_PROCESS` is on, and the bus is one a child can reach."""
    return serves_http and runtime.settings.pipeline.own_process and child_bus_url(runtime) is not None


def pipeline_services(runtime: Runtime, *, serves_http: bool) -> Service | list[Service]:
    """The pipeline role of this process: one `PipelineChild` per stage of `MINTLOG_PIPELINE__STAGES` when
    `pipeline_in_child`, else the stages in this process (`PipelineRole`)."""
    if pipeline_in_child(runtime, serves_http=serves_http):
        # The indexer starts before the normalizer and stops after it, as within one PipelineRole.
        stages = runtime.settings.pipeline.stages
        return [PipelineChild(runtime, stage) for stage in ("index", "normalize") if stage in stages]
    from mintlog.roles.pipeline.role import PipelineRole

    return PipelineRole(runtime)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PipelineChild:
    """Runs one pipeline stage in a supervised child process (see the module docstring)."""

    def __init__(self, runtime: Runtime, stage: PipelineStage) -> None:
        self.name = f"pipeline-{stage}"
        self.stage: PipelineStage = stage
        self._runtime = runtime
        self._settings = runtime.settings
        self._metrics = runtime.metrics
        self._process: subprocess.Popen[bytes] | None = None
        self._port = 0
        self._bus_url = ""
        self._stopping = False
        self._watchdog: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def pid(self) -> int | None:
        """The child's pid while one runs."""
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=_METRICS_TIMEOUT_SECONDS))
        try:
            await self._launch()
        except BaseException:
            await self._terminate()
            await self._session.close()
            raise
        self._metrics.peers.append(self._child_metrics)
        self._watchdog = asyncio.create_task(self._watch(), name="pipeline-child-watchdog")

    async def stop(self) -> None:
        self._stopping = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        with contextlib.suppress(ValueError):
            self._metrics.peers.remove(self._child_metrics)
        await self._terminate()
        if self._session is not None:
            await self._session.close()

    def _environment(self, bus_url: str, port: int) -> dict[str, str]:
        settings = self._settings
        environment = dict(os.environ)
        environment.update(
            {
                "MINTLOG_ROLES": "pipeline",
                "MINTLOG_PIPELINE__STAGES": self.stage,
                "MINTLOG_DATA_DIR": str(settings.data_path.resolve()),
                "MINTLOG_NATS__URL": bus_url,
                "MINTLOG_HTTP__HOST": "127.0.0.1",
                "MINTLOG_HTTP__OPS_PORT": str(port),
                "MINTLOG_HTTP__WORKERS": "1",
                "MINTLOG_PIPELINE__OWN_PROCESS": "false",
            }
        )
        return environment

    async def _launch(self) -> None:
        bus_url = child_bus_url(self._runtime)
        if bus_url is None:
            raise MintlogError(f"{self.name} needs a NATS bus it can connect to")
        self._bus_url, self._port = bus_url, _free_port()
        self._process = self._spawn(bus_url)
        await self._wait_serving(self._process)
        logger.info(
            "pipeline child process running",
            extra={"stage": self.stage, "pid": self._process.pid, "ops_port": self._port},
        )

    def _spawn(self, bus_url: str) -> subprocess.Popen[bytes]:
        # Called from the event-loop thread, which lives as long as this service: the death signal follows it.
        return subprocess.Popen(
            [sys.executable, "-m", "mintlog", "run", "--supervised"],
            env=self._environment(bus_url, self._port),
            stdin=subprocess.DEVNULL,
            # Own session: a Ctrl-C at the terminal (SIGINT to the foreground process group) reaches the parent
            # alone, which stops intake first and then this child; the child is never seen to die and restarted.
            start_new_session=True,
            preexec_fn=die_with_parent_preexec(signal.SIGKILL),  # the loop thread spawns; no other thread forks here
        )

    async def _wait_serving(self, process: subprocess.Popen[bytes]) -> None:
        assert self._session is not None
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        url = f"http://127.0.0.1:{self._port}/healthz"
        while time.monotonic() < deadline:
            code = process.poll()
            if code is not None:
                raise MintlogError(f"{self.name} exited with code {code} while starting")
            try:
                async with self._session.get(url) as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.1)
        raise MintlogError(f"{self.name} did not start within {_START_TIMEOUT_SECONDS:.0f}s")

    async def _watch(self) -> None:
        """Restart the child when it dies or when the bus URL changed; runs until cancelled."""
        backoff = _RESTART_BACKOFF_FIRST_SECONDS
        while not self._stopping:
            process = self._process
            if process is not None and process.poll() is None:
                if child_bus_url(self._runtime) == self._bus_url:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wait_exit(process), _URL_CHECK_SECONDS)
                    continue
                logger.warning("the bus moved to %s; restarting %s", child_bus_url(self._runtime), self.name)
                await self._terminate()
            elif process is not None:
                logger.error("%s (pid %s) exited with code %s", self.name, process.pid, process.returncode)
            try:
                await self._launch()
            except MintlogError as exc:
                logger.error("restarting %s failed (next try in %.1fs): %s", self.name, backoff, exc)
                await self._terminate()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _RESTART_BACKOFF_MAX_SECONDS)
                continue
            self._metrics.pipeline_child_restarts.labels(self.stage).inc()
            backoff = _RESTART_BACKOFF_FIRST_SECONDS

    async def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        grace = self._settings.http.shutdown_grace_seconds + _KILL_AFTER_SECONDS
        try:
            code = await asyncio.wait_for(wait_exit(process), grace)
        except TimeoutError:
            logger.error("%s (pid %s) did not stop within %.0fs; killing it", self.name, process.pid, grace)
            process.kill()
            code = await wait_exit(process)
        logger.info("pipeline child process stopped", extra={"stage": self.stage, "pid": process.pid, "code": code})

    async def _child_metrics(self) -> bytes | None:
        if self._session is None or self.pid is None:
            return None
        try:
            async with self._session.get(f"http://127.0.0.1:{self._port}/metrics") as response:
                return await response.read() if response.status == 200 else None
        except (aiohttp.ClientError, TimeoutError):
            return None
