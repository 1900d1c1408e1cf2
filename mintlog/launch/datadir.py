"""The data directory has one owner: `mintlog run` locks it (`<MINTLOG_DATA_DIR>/mintlog.lock`, a `PidLock`)
before anything else touches it, whenever it keeps embedded state there (`uses_data_dir`).

Guarantees (those of the lock itself are in `mintlog.pidlock`):

- A second `mintlog run` on the same directory fails at start with `DirectoryInUse` naming the directory and
  the pid of the holder; the lock goes with the holder's process, `kill -9` included.
- `mintlog run` processes started by the holder itself (the pipeline children of
  `mintlog.launch.pipeline_child`) share their parent's lock instead of taking it (`hold_data_dir`);
  `mintlog admin` and `mintlog db` commands take no lock: they only open the metadata database, which
  serializes its writers itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Generator

from mintlog.pidlock import DirectoryInUse, PidLock
from mintlog.settings import Settings

__all__ = ["DATA_DIR_LOCK_NAME", "hold_data_dir", "uses_data_dir"]

logger = logging.getLogger(__name__)

DATA_DIR_LOCK_NAME = "mintlog.lock"


def uses_data_dir(settings: Settings) -> bool:
    """Whether a process with these settings keeps embedded state in the data directory: the nats-server, the
    Tantivy index, the SQLite database or the object files (each selected by an empty URL)."""
    return not all((settings.nats.url, settings.store.url, settings.database.url, settings.blob.url))


@contextlib.contextmanager
def hold_data_dir(settings: Settings) -> Generator[PidLock | None]:
    """Hold the data directory's lock for the body of the `with`; yields None when none is needed.

    No lock is needed when the process keeps nothing there, or when the lock's holder is this process's
    parent: a pipeline child of the `mintlog run` that holds it. Raises `DirectoryInUse` otherwise.
    """
    if not uses_data_dir(settings):
        yield None
        return
    lock = PidLock(
        settings.data_path,
        DATA_DIR_LOCK_NAME,
        what="data directory",
        hint="stop it first, or give this one another data directory (MINTLOG_DATA_DIR or --data-dir)",
    )
    try:
        lock.acquire()
    except DirectoryInUse as exc:
        if exc.holder_pid is None or exc.holder_pid != os.getppid():
            raise
        logger.debug("data directory %s is held by the parent process (pid %s)", lock.directory, exc.holder_pid)
        yield None
        return
    try:
        yield lock
    finally:
        lock.release()
