"""What every role is (a service with start/stop) and the loop helpers roles share."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Protocol

__all__ = ["Periodic", "Service", "instance_holder"]

logger = logging.getLogger(__name__)


def instance_holder() -> str:
    """A lease or claim holder name unique to this process: host, pid and a random part."""
    return f"{socket.gethostname()[:100]}/{os.getpid()}/{uuid.uuid4().hex[:12]}"


class Service(Protocol):
    """Something that runs in the background of a Mintlog process."""

    name: str

    async def start(self) -> None:
        """Return once the service does its work (e.g. its port accepts connections)."""
        ...

    async def stop(self) -> None:
        """Stop taking new work, finish or hand back in-flight work, and return when idle."""
        ...


class Periodic:
    """Runs `action` every `interval_seconds` until stopped; logs failures and overruns, never dies of them.

    `run_once()` runs a single iteration, for tests.
    """

    def __init__(self, name: str, interval_seconds: float, action: Callable[[], Awaitable[object]]) -> None:
        self.name = name
        self._interval = interval_seconds
        self._action = action
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            await self._action()
        except Exception:
            logger.exception("periodic task %s failed", self.name)
        elapsed = loop.time() - started
        if elapsed > self._interval:
            logger.warning("periodic task %s overran: %.2fs > %.2fs", self.name, elapsed, self._interval)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.run_once()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"periodic-{self.name}")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        await self.run_once()
