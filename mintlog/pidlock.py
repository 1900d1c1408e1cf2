"""`PidLock`: one owner per directory, an exclusive lock that names the process holding it.

Used for the data directory of `mintlog run` (`mintlog.launch.datadir`) and for the store of the embedded
nats-server (`mintlog.adapters.bus.embedded_nats`).

Guarantees:

- `PidLock.acquire()` takes an exclusive `flock` on the lock file without waiting and writes this process's
  pid into it; a second holder, in this process or another, gets `DirectoryInUse` naming the directory and
  the pid that holds it.
- The lock is held until `release()` or until the process ends in any way: the kernel drops an `flock` with
  the last descriptor of the open file, also after `kill -9`, so a crash never leaves a directory locked and a
  pid left in the file is never trusted without the lock.
- The descriptor is not inherited by programs this process starts (`O_CLOEXEC`), so no child keeps a
  directory locked after its owner is gone.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

from mintlog.errors import MintlogError

__all__ = ["DirectoryInUse", "PidLock"]

# The holder writes its pid right after taking the lock; a reader that comes in between waits this long.
_HOLDER_PID_WAIT_SECONDS = 1.0


class DirectoryInUse(MintlogError):
    """Another live process holds the directory's lock; `holder_pid` is None when it could not be read."""

    def __init__(self, directory: Path, holder_pid: int | None, what: str, hint: str) -> None:
        holder = f"pid {holder_pid}" if holder_pid is not None else "pid unknown"
        super().__init__(f"the {what} {directory} is in use by another Mintlog process ({holder}); {hint}")
        self.directory = directory
        self.holder_pid = holder_pid


class PidLock:
    """An exclusive, non-blocking `flock` on `directory / name`, holding the owner's pid."""

    def __init__(self, directory: Path, name: str, *, what: str, hint: str) -> None:
        self.directory = directory
        self.path = directory / name
        self._what = what
        self._hint = hint
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock (creating the directory and the file if needed) and write this pid into it.

        Idempotent while held. Raises `DirectoryInUse` when another holder has it.
        """
        if self._fd is not None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise
            raise DirectoryInUse(self.directory, self.holder_pid(), self._what, self._hint) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock; the file stays (removing it would let two processes lock two different files)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor of the open file releases the flock

    def holder_pid(self) -> int | None:
        """The pid written by the current holder, or None when there is none to read."""
        deadline = time.monotonic() + _HOLDER_PID_WAIT_SECONDS
        while True:
            try:
                return int(self.path.read_text(encoding="ascii").strip())
            except (OSError, ValueError):
                if time.monotonic() >= deadline:
                    return None
                time.sleep(0.05)
