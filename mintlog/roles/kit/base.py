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

STOP_GRACE_SECONDS = 10.0
"""How long `Periodic.stop` lets an iteration in progress finish before it cancels it."""


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

    `stop()` lets an iteration in progress finish (it may hold a lease or a database transaction: cancelling it
    there could leave a SQLite write lock held by a connection never given back, until the process exits), for
    at most `grace_seconds`, then runs the action once more. `run_once()` runs a single iteration, for tests.
    """

    def __init__(self, name: str, interval_seconds: float, action: Callable[[], Awaitable[object]]) -> None:
        self.name = name
        self._interval = interval_seconds
        self._action = action
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

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
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
            if not self._stopping.is_set():
                await self.run_once()

    async def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=f"periodic-{self.name}")

    async def stop(self, grace_seconds: float = STOP_GRACE_SECONDS) -> None:
        if self._task is None:
            return
        self._stopping.set()
        task, self._task = self._task, None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), grace_seconds)
        if not task.done():
            logger.warning(
                "periodic task %s did not finish within %.0fs of the stop; cancelled", self.name, grace_seconds
            )
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.run_once()
