"""`HttpServer`: one Granian server embedded in the running event loop, serving one ASGI app.

Every HTTP port, embedded here or served by Granian worker processes (`mintlog/launch/workers.py`), is served
with `granian_options()`, which bounds what a slow or idle client can hold (docs/operations.md, "Connection
limits"):

- HTTP/1.1 only. Granian's `auto` mode first reads the bytes that tell HTTP/1 from HTTP/2 with no timeout, so
  a connection that sends nothing would be held forever;
- `MINTLOG_HTTP__HEADER_READ_TIMEOUT_SECONDS`: a connection that has not sent a request's complete headers
  within it, counted from its opening or from its previous response, is closed without an answer (this is
  also the idle keep-alive timeout);
- `MINTLOG_HTTP__MAX_CONNECTIONS`: connections served at once per port (Granian's `backpressure`, which it
  counts per worker, so it is split among the workers); further connections wait in the listen backlog
  until one closes;
- request bodies are bounded in time by `BodyReadGuard` (`mintlog/http/app.py`), which `HttpServer` puts in
  front of the app in both serving modes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import resource
from typing import TYPE_CHECKING, Any

from mintlog.http.app import BodyReadGuard
from mintlog.portcheck import PortUnavailable, ensure_port_free

if TYPE_CHECKING:
    from mintlog.settings import HttpSettings

__all__ = ["GRANIAN_LOGGING", "PORT_SETTINGS", "HttpServer", "check_open_file_limit", "granian_options"]

logger = logging.getLogger(__name__)

# Granian applies a dictConfig when a server is built: route its loggers to Mintlog's root handler instead.
GRANIAN_LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {},
    "handlers": {},
    "loggers": {
        "_granian": {"handlers": [], "propagate": True},
        "granian.access": {"handlers": [], "propagate": True},
    },
}


# The setting of each embedded server's port, by server name, for the error of a port that cannot be bound.
PORT_SETTINGS: dict[str, str] = {
    "ingest": "MINTLOG_HTTP__INGEST_PORT",
    "api": "MINTLOG_HTTP__API_PORT",
    "ops": "MINTLOG_HTTP__OPS_PORT",
}

# Files the process opens besides HTTP connections: the bus, the database, the stores, logs, Tantivy files.
_OTHER_OPEN_FILES = 1024
_HTTP_PORTS_PER_PROCESS = 2


def granian_options(http: HttpSettings, *, workers: int = 1) -> dict[str, Any]:
    """The Granian server options of one Mintlog HTTP port served by `workers` processes (see the module)."""
    from granian.constants import HTTPModes
    from granian.http import HTTP1Settings

    return {
        "http": HTTPModes.http1,
        "http1_settings": HTTP1Settings(
            header_read_timeout=max(1, round(http.header_read_timeout_seconds * 1000)), keep_alive=True
        ),
        "backpressure": max(1, math.ceil(http.max_connections / workers)),
        "backlog": 1024,
        "websockets": False,  # Mintlog serves no WebSocket: an `Upgrade` header is ignored, never held open
    }


def check_open_file_limit(http: HttpSettings) -> None:
    """Warn when this process cannot open the files that two full ports of `MINTLOG_HTTP__MAX_CONNECTIONS`
    connections need: Granian cannot accept a connection past the limit. Call it once Granian is imported:
    loading Granian raises the soft limit to the hard one, so only the hard limit can fall short."""
    needed = _HTTP_PORTS_PER_PROCESS * http.max_connections + _OTHER_OPEN_FILES
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        logger.warning(
            "the open-file limit (%s) is below the %s that MINTLOG_HTTP__MAX_CONNECTIONS=%s needs on two ports: "
            "raise the limit (ulimit -n, the container's nofile) or lower the setting",
            soft,
            needed,
            http.max_connections,
        )


class HttpServer:
    """Serves `app` on `http.host:port` inside the current event loop, with the connection limits and
    timeouts of `http` (see the module).

    `start()` returns once the port accepts connections; `stop()` stops accepting, lets in-flight requests
    finish, and returns when the server is down.
    """

    def __init__(self, app: Any, *, name: str, http: HttpSettings, port: int) -> None:
        self.name = name
        self.host = http.host
        self.port = port
        self._http = http
        self._app = BodyReadGuard(
            app,
            idle_timeout_seconds=http.body_idle_timeout_seconds,
            total_timeout_seconds=http.body_read_timeout_seconds,
        )
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None

    @property
    def app(self) -> Any:
        """The ASGI app this server serves, behind its `BodyReadGuard` (Granian worker processes serve this
        same app, see `http/workers.py`)."""
        return self._app

    async def start(self, timeout_seconds: float = 10.0) -> None:
        """Bind the port and serve; returns once this server (not another program) accepts connections.

        Raises `PortUnavailable` naming the port's setting when the port is taken or cannot be bound, before
        anything says it listens.
        """
        from granian.constants import Interfaces
        from granian.log import LogLevels
        from granian.server.embed import Server

        setting = PORT_SETTINGS.get(self.name, "the port setting")
        ensure_port_free(self.host, self.port, setting)
        check_open_file_limit(self._http)
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        self._server = Server(
            self._app,
            address=self.host,
            port=self.port,
            interface=Interfaces.ASGINL,
            log_dictconfig=GRANIAN_LOGGING,
            log_level=LogLevels.warning,
            **granian_options(self._http),
        )
        root.handlers[:] = handlers
        root.setLevel(level)
        self._task = asyncio.create_task(self._server.serve(), name=f"http-{self.name}")
        # Granian binds in the first step of `serve()`: after one turn of the loop the socket is ours, or the
        # task failed (another program took the port since `ensure_port_free`).
        await asyncio.sleep(0)
        self._raise_if_exited()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_seconds
        while True:
            self._raise_if_exited()
            try:
                _reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                if loop.time() > deadline:
                    raise RuntimeError(f"{self.name} HTTP server did not listen on {self.host}:{self.port}") from None
                await asyncio.sleep(0.02)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            break
        logger.debug("%s API listening on http://%s:%s", self.name, self.host, self.port)

    def _raise_if_exited(self) -> None:
        task = self._task
        if task is None or not task.done():
            return
        self._server, self._task = None, None
        try:
            task.result()
        except RuntimeError as exc:  # Granian reports a failed bind as RuntimeError("... (os error 98) ...")
            if "os error 98" in str(exc) or "Address already in use" in str(exc):
                raise PortUnavailable(
                    self.host, self.port, PORT_SETTINGS.get(self.name, "the port setting"), "already in use"
                ) from None
            raise
        raise RuntimeError(f"{self.name} HTTP server exited at start")

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._server = None
        self._task = None
