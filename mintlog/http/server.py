"""`HttpServer`: one Granian server embedded in the running event loop, serving one ASGI app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

__all__ = ["GRANIAN_LOGGING", "HttpServer"]

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


class HttpServer:
    """Serves `app` on `host:port` inside the current event loop.

    `start()` returns once the port accepts connections; `stop()` stops accepting, lets in-flight requests
    finish, and returns when the server is down.
    """

    def __init__(self, app: Any, *, name: str, host: str, port: int) -> None:
        self.name = name
        self.host = host
        self.port = port
        self._app = app
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None

    @property
    def app(self) -> Any:
        """The ASGI app this server serves (also served by Granian worker processes, see `http/workers.py`)."""
        return self._app

    async def start(self, timeout_seconds: float = 10.0) -> None:
        from granian.constants import Interfaces
        from granian.log import LogLevels
        from granian.server.embed import Server

        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        self._server = Server(
            self._app,
            address=self.host,
            port=self.port,
            interface=Interfaces.ASGINL,
            log_dictconfig=GRANIAN_LOGGING,
            log_level=LogLevels.warning,
            backlog=1024,
        )
        root.handlers[:] = handlers
        root.setLevel(level)
        self._task = asyncio.create_task(self._server.serve(), name=f"http-{self.name}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_seconds
        while True:
            if self._task.done():
                self._task.result()
                raise RuntimeError(f"{self.name} HTTP server exited at start")
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
        logger.info("%s API listening on http://%s:%s", self.name, self.host, self.port)

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._server = None
        self._task = None
