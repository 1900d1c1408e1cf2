"""Serving the ingest or the api role with Granian's process manager: N worker processes behind one port.

With `MINTLOG_HTTP__WORKERS` above 1, `mintlog run --role=ingest` (or `--role=api`) does not open a runtime
itself: `serve_workers()` runs Granian's manager in the `mintlog` process, which binds the port once and forks
the workers. Each worker calls the app factory `worker_app()` (`mintlog.launch.workers:worker_app`), which reads
the same settings from the environment; the returned ASGI app opens the worker's own `Runtime` at lifespan
startup (its own NATS, database, store and cache connections, its own in-process caches and metrics), builds
the role from the role registry (`mintlog.launch.registry`, the table the single process reads too) and closes
both at lifespan shutdown. SIGTERM/SIGINT to the manager stops every worker: each stops accepting, lets
in-flight requests finish, closes its live tails and its runtime, and exits; the manager exits 0 once all have.
A manager killed without that chance (SIGKILL, OOM killer) takes its workers with it: each worker asks the
kernel for SIGTERM when the manager dies (`PR_SET_PDEATHSIG`), and stops as above instead of serving the port
with nobody watching it.

Guarantees checked by `check_worker_settings()` (a `ConfigError` naming the setting otherwise): workers above
1 need an external NATS (`MINTLOG_NATS__URL`; the embedded nats-server is a child of one process) and a
process serving exactly one HTTP role of the registry (one Granian manager per port). With one worker nothing
here is used: the role embeds its server in the process's event loop (`mintlog/http/server.py`).

A worker's responses carry `X-Mintlog-Worker: <pid>` so that operators (and the distributed tests) can see
which worker answered.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from typing import Any, cast

from mintlog.children import die_with_parent
from mintlog.errors import ConfigError
from mintlog.launch.bootstrap import bootstrap
from mintlog.launch.ports import ready_message
from mintlog.launch.process import key_usage_flusher, tune_garbage_collector
from mintlog.launch.registry import HttpService, http_role_names, role_entry
from mintlog.logs import configure_logging
from mintlog.settings import RoleName, Settings, load_settings

__all__ = ["WORKER_HEADER", "WorkerApp", "check_worker_settings", "serve_workers", "worker_app"]

logger = logging.getLogger(__name__)

WORKER_HEADER = "x-mintlog-worker"
MANAGER_PID_VARIABLE = "_MINTLOG_WORKERS_MANAGER_PID"
"""Set by `serve_workers` for its workers (not a setting: no `MINTLOG_` prefix)."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def check_worker_settings(settings: Settings) -> RoleName | None:
    """The HTTP role to serve with Granian workers, or None when `MINTLOG_HTTP__WORKERS` is 1 (the embedded
    server serves every selected role in this process).

    Raises `ConfigError` when workers are above 1 and the process runs a role that serves no HTTP, two HTTP
    roles, or the embedded NATS server.
    """
    workers = settings.http.workers
    if workers <= 1:
        return None
    setting = f"MINTLOG_HTTP__WORKERS={workers}"
    others = [role for role in settings.roles if not role_entry(role).serves_http]
    if others:
        raise ConfigError(
            f"{setting} is offered for the {' and '.join(http_role_names())} roles only; this process also runs "
            f"{','.join(others)} (MINTLOG_ROLES={','.join(settings.roles)}): run those in their own processes"
        )
    if len(settings.roles) != 1:
        raise ConfigError(
            f"{setting} serves one HTTP role per process (one Granian manager per port); run ingest and api "
            f"as separate processes (MINTLOG_ROLES={','.join(settings.roles)})"
        )
    if not settings.nats.url:
        raise ConfigError(
            f"{setting} needs an external NATS: set MINTLOG_NATS__URL (the embedded nats-server belongs to one "
            "process and cannot be shared by workers)"
        )
    return settings.roles[0]


def serve_workers(settings: Settings) -> None:
    """Run Granian's process manager for the one HTTP role of `settings` until SIGTERM/SIGINT; blocks.

    The workers rebuild their settings from this process's environment: callers that hold overrides (CLI
    flags) must have put them into `os.environ` first. Raises `ConfigError` on an invalid combination; exits
    (SystemExit 1) when a worker dies unexpectedly, so that the supervisor restarts the whole process.
    """
    role = check_worker_settings(settings)
    if role is None:
        raise ConfigError("serve_workers needs MINTLOG_HTTP__WORKERS above 1")
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    from mintlog.http.server import GRANIAN_LOGGING, check_open_file_limit, granian_options

    http = settings.http
    port = http.ingest_port if role == "ingest" else http.api_port
    check_open_file_limit(http)
    # Workers die with this manager even when it is killed without a chance to stop them (`worker_app`).
    os.environ[MANAGER_PID_VARIABLE] = str(os.getpid())
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    server = Granian(
        "mintlog.launch.workers:worker_app",
        address=http.host,
        port=port,
        interface=Interfaces.ASGI,
        workers=http.workers,
        factory=True,
        log_dictconfig=GRANIAN_LOGGING,
        log_level=LogLevels.info if settings.log_level in ("debug", "info") else LogLevels.warning,
        **granian_options(http, workers=http.workers),
        # A worker that has not drained within the grace period (plus lifespan shutdown) is killed.
        workers_kill_timeout=math.ceil(http.shutdown_grace_seconds) + 10,
    )
    root.handlers[:] = handlers
    root.setLevel(level)

    def announce() -> None:  # Granian's startup hooks run once the port is bound, as the workers start
        logger.info("%s", ready_message(settings, serves_http=True), extra={"roles": role, "workers": http.workers})

    server.on_startup(announce)  # pyright: ignore[reportUnknownMemberType]
    server.serve()  # pyright: ignore[reportUnknownMemberType]
    logger.info("mintlog stopped")


class WorkerApp:
    """The ASGI app of one Granian worker: its lifespan opens and closes the worker's own runtime and role.

    Until lifespan startup completes (and after shutdown) it answers nothing: Granian only serves requests
    once startup is complete.
    """

    def __init__(self, role: RoleName, settings: Settings) -> None:
        self.role: RoleName = role
        self.settings = settings
        self._app: AsgiApp | None = None
        self._close: Callable[[], Awaitable[None]] | None = None
        self._pid = str(os.getpid()).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        app = self._app
        if app is None:
            raise RuntimeError(f"{self.role} worker is not started")
        pid = self._pid

        async def send_with_worker(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (WORKER_HEADER.encode(), pid)]
            await send(message)

        await app(scope, receive, send_with_worker)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    logger.exception("%s worker failed to start", self.role)
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.shutdown()
                except Exception as exc:
                    logger.exception("%s worker failed to stop cleanly", self.role)
                    await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        """Open this worker's runtime and build the role's app, as `mintlog.launch.process.run` does for one
        process."""
        runtime = bootstrap(self.settings)
        await runtime.open()
        try:
            role = role_entry(self.role).factory(runtime)
            if not isinstance(role, HttpService):
                raise ConfigError(f"the {self.role} role serves no HTTP app and cannot run in Granian workers")
            # The role builds its app exactly as in a single process; its embedded server is never started here.
            app = cast("AsgiApp", role.app)
            await role.start_background()
            key_usage = key_usage_flusher(runtime)
            await key_usage.start()
        except BaseException:
            await runtime.close()
            raise

        _on_stop_signal(role.stop)

        async def close() -> None:
            try:
                await role.stop()  # closes the api role's live tails; its server was never started here
                await key_usage.stop()
            finally:
                await runtime.close()

        self._app = app
        self._close = close
        logger.info("mintlog worker running", extra={"roles": self.role, "pid": os.getpid()})

    async def shutdown(self) -> None:
        close, self._close, self._app = self._close, None, None
        if close is not None:
            await close()
        logger.info("mintlog worker stopped", extra={"roles": self.role, "pid": os.getpid()})


def _on_stop_signal(action: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Start `action` (the role's `stop`: end the live tails) as soon as SIGTERM/SIGINT reaches this worker.

    Granian's worker starts its drain on the signal and runs the lifespan shutdown only once every connection
    has finished, so an open SSE tail would hold the worker until it is killed. Granian registers its handler
    on the loop before the lifespan starts; asyncio keeps one handler per signal, so this one replaces it and
    calls it: the drain and the ending of the tails start together, as in a single process.
    """
    loop = asyncio.get_running_loop()
    handlers = cast("dict[int, asyncio.Handle]", getattr(loop, "_signal_handlers", {}))
    tasks: set[asyncio.Task[None]] = set()

    def stop_and_forward(previous: asyncio.Handle) -> None:
        if not tasks:
            tasks.add(loop.create_task(action(), name="worker-stop-signal"))
        previous._run()  # pyright: ignore[reportPrivateUsage]  (Granian's handler: start the drain)

    for signum in (signal.SIGINT, signal.SIGTERM):
        previous = handlers.get(signum)
        if previous is None:
            logger.warning("no Granian handler for signal %s: live tails end only at lifespan shutdown", signum)
            continue
        loop.add_signal_handler(signum, stop_and_forward, previous)


def worker_app() -> WorkerApp:
    """Granian app factory of a worker (`mintlog.launch.workers:worker_app`): the one HTTP role of the settings
    in this process's environment (`check_worker_settings` held in the manager that forked it)."""
    manager_pid = os.environ.get(MANAGER_PID_VARIABLE)
    if manager_pid is not None:
        # A manager killed with SIGKILL cannot stop its workers: the kernel sends them SIGTERM instead (they
        # drain and exit as on a normal stop), so none keeps serving the port with nobody watching it.
        die_with_parent(int(manager_pid), signal.SIGTERM)
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)  # Granian reconfigured logging in the worker
    tune_garbage_collector()  # as `mintlog run` does for a single process
    role = check_worker_settings(settings)
    if role is None:
        raise ConfigError("a Granian worker needs MINTLOG_HTTP__WORKERS above 1")
    return WorkerApp(role, settings)
