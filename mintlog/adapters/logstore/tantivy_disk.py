"""Telling a Tantivy write the disk refused (full, over quota, read-only, failing) from one that failed otherwise,
and keeping that state visible to every process that opens the store's root.

What Tantivy raises (tantivy 0.27, measured on a full tmpfs): I/O errors are `ValueError`s whose text is the
Rust error's debug form, e.g. ``Failed to open file for write: 'IoError { io_error: Custom { kind: StorageFull,
error: PathError { path: "…", err: Os { code: 28, kind: StorageFull, message: "No space left on device" } } },
filepath: "….fieldnorm" }'``, or its display form, ``An IO error occurred: 'No space left on device (os error
28) at path "…"'``; `disk_refusal` reads the errno from such a text, or from an `OSError` raised by the store's
own file work. When the error hits a writer's indexing thread, which writes the segments and so
is where a full disk usually shows, Tantivy loses the cause and says only ``An index writer was killed.. A
worker thread encountered an error (io::Error most likely) or panicked.``; such a failure is put down to the
disk when the disk cannot take a probe file as large as the write's documents (`probe_disk`).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import secrets
from pathlib import Path

from mintlog.errors import StoreDiskFailure

__all__ = ["DISK_ERRNOS", "DiskHealth", "disk_refusal", "probe_disk"]

logger = logging.getLogger(__name__)

DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})
WRITES_OK_MARKER = ".writes-ok"
PROBE_PREFIX = ".disk-probe-"
MIN_PROBE_BYTES = 1024 * 1024

# `Os { code: 28, … }` in an error's debug form, `… (os error 28)` in its display form.
_RUST_OS_CODE = re.compile(r"\bOs \{ code: (\d+)|\(os error (\d+)\)")
_RUST_KINDS = {
    "StorageFull": errno.ENOSPC,
    "FilesystemQuotaExceeded": errno.EDQUOT,
    "ReadOnlyFilesystem": errno.EROFS,
}
_RUST_KIND = re.compile(r"\bkind: (" + "|".join(_RUST_KINDS) + r")\b")
_WRITER_KILLED = "index writer was killed"
_PAGE = b"\0" * 4096


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and the exceptions it was raised from or while handling, outermost first."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def disk_refusal(exc: BaseException) -> int | None:
    """The errno of `DISK_ERRNOS` with which the disk refused the work that raised `exc` (or an exception it
    chains), when the error says so; else None."""
    for link in _chain(exc):
        if isinstance(link, OSError) and link.errno in DISK_ERRNOS:
            return link.errno
        text = str(link)
        for match in _RUST_OS_CODE.finditer(text):
            code = int(match.group(1) or match.group(2))
            if code in DISK_ERRNOS:
                return code
        kind = _RUST_KIND.search(text)
        if kind is not None:
            return _RUST_KINDS[kind.group(1)]
    return None


def probe_disk(directory: Path, size: int) -> OSError | None:
    """Whether the disk of `directory` takes a new file of `size` bytes: reserve them, write a page, fsync.

    The probe file is always removed. Returns the disk's refusal (an `OSError` whose errno is one of
    `DISK_ERRNOS`), or None when the disk took it; any other `OSError` propagates.
    """
    probe = directory / f"{PROBE_PREFIX}{secrets.token_hex(8)}"
    try:
        descriptor = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.posix_fallocate(descriptor, 0, max(size, len(_PAGE)))
            os.pwrite(descriptor, _PAGE, 0)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except OSError as exc:
        if exc.errno in DISK_ERRNOS:
            return exc
        raise
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    return None


class DiskHealth:
    """Whether the disk of one store root refused the last write, for every process opening that root.

    The process that writes remembers the refusal until one of its writes succeeds. The others (the parent of
    `mintlog run`, which searches while a child process indexes) see it through the marker file `.writes-ok`
    in the root: present unless the last write was refused. Removing a file needs no free space; it is created
    again after a write succeeded, so when there is room for it. Thread-safe.
    """

    def __init__(self, root: Path) -> None:
        self._root = root
        self._marker = root / WRITES_OK_MARKER
        self._refusal: str | None = None

    def start(self) -> None:
        """Remove probe files a crash left behind and create the marker when missing (on a disk that takes
        no new file, `check` then reports the disk until a write succeeds)."""
        for probe in self._root.glob(f"{PROBE_PREFIX}*"):
            with contextlib.suppress(OSError):
                probe.unlink()
        self._create_marker()

    def refusal(self, exc: BaseException, needed_bytes: int) -> StoreDiskFailure | None:
        """The `StoreDiskFailure` to raise instead of `exc` when the disk refused the write that raised it, and
        remember it; None when the failure has another cause.

        A failure Tantivy gives no cause for (a killed writer) is the disk's when a probe of `needed_bytes`
        (at least `MIN_PROBE_BYTES`) does not fit.
        """
        code = disk_refusal(exc)
        if code is None and any(_WRITER_KILLED in str(link) for link in _chain(exc)):
            try:
                probe = probe_disk(self._root, max(needed_bytes, MIN_PROBE_BYTES))
            except OSError:
                logger.warning("probing the disk of tantivy store %s failed", self._root, exc_info=True)
                probe = None
            code = None if probe is None else probe.errno
        if code is None:
            return None
        reason = f"the disk of tantivy store {self._root} refused a write ({os.strerror(code)}): {exc}"
        if self._refusal is None:
            logger.warning("%s; writes are retried until one succeeds", reason)
        self._refusal = reason
        with contextlib.suppress(OSError):  # a read-only root cannot lose it, but `ping` reports one anyway
            self._marker.unlink()
        return StoreDiskFailure(reason)

    def succeeded(self) -> None:
        """Record that a write succeeded: forget a refusal and create the marker again if it is missing."""
        if self._refusal is not None:
            logger.info("the disk of tantivy store %s takes writes again", self._root)
            self._refusal = None
        self._create_marker()

    def check(self) -> None:
        """Raise `StoreDiskFailure` while the last write (of this process or the one writing) was refused."""
        refusal = self._refusal
        if refusal is not None:
            raise StoreDiskFailure(refusal)
        if not self._marker.exists():
            raise StoreDiskFailure(
                f"the disk of tantivy store {self._root} refused the last write (full, over quota, read-only or "
                "failing; see the indexer's log); writes are retried until one succeeds"
            )

    def _create_marker(self) -> None:
        if self._marker.exists():
            return
        try:
            self._marker.touch()
        except OSError as exc:
            logger.warning("cannot create %s: %s", self._marker, exc)
