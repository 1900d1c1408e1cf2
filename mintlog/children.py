"""Child processes that must never outlive the Mintlog process that started them."""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable

__all__ = ["die_with_parent", "die_with_parent_preexec", "wait_exit"]

_PR_SET_PDEATHSIG = 1


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


def die_with_parent_preexec(signum: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A `preexec_fn` asking the kernel to send `signum` to the child when the spawning thread dies (Linux
    only; None elsewhere). Spawn from the thread that lives as long as the child should (the event loop's).

    If the parent died between fork and this call, the child kills itself at once.
    """
    prctl = _prctl()
    if prctl is None:
        return None
    parent_pid = os.getpid()

    def set_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before the death signal was armed
            os.kill(os.getpid(), signal.SIGKILL)

    return set_death_signal


def die_with_parent(parent_pid: int, signum: int = signal.SIGTERM) -> None:
    """In a child already running (e.g. a worker forked by a library), ask the kernel to send this process
    `signum` when its parent dies (Linux only; nothing elsewhere). `parent_pid` is the process that must
    outlive it: if it is already gone (this process was reparented), `signum` is sent at once.

    The kernel sends the signal when the *thread* that created this process exits, so use it only for
    children created by a thread that lives as long as the parent (a main thread).
    """
    prctl = _prctl()
    if prctl is None:
        return
    prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signum)


async def wait_exit(process: subprocess.Popen[bytes]) -> int:
    """Wait (without blocking the loop) until `process` exits, reap it and return its exit code."""
    code = process.poll()
    if code is not None:
        return code
    try:
        pidfd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):
        while (code := process.poll()) is None:
            await asyncio.sleep(0.1)
        return code
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[None] = loop.create_future()

    def on_exit() -> None:
        if not exited.done():
            exited.set_result(None)

    loop.add_reader(pidfd, on_exit)
    try:
        await exited
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
    return process.wait()
