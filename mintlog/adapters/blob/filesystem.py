"""`FilesystemBlobStore`: objects as files under one directory (the embedded default, `$MINTLOG_DATA_DIR/objects`).

Guarantees: a `put` writes a temp file in the key's directory, fsyncs it, renames it over the key and fsyncs
the directory (and every directory it had to create), so readers see the whole old or the whole new object
and a crash after the return loses nothing. A crash during a `put` can leave a `.mintlog-tmp-*` file that
listings never show. A key cannot be both an object and a "directory" of other keys here (`a/b` and `a/b/c`):
such a `put` raises `ValueError`. Emptied directories are removed on `delete`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path

from mintlog.adapters.blob.keys import RESERVED_SEGMENT_PREFIX, check_key, check_limit, check_prefix
from mintlog.errors import StoreUnavailable
from mintlog.ports.blobstore import BlobInfo, BlobNotFound

__all__ = ["FilesystemBlobStore"]

_PUT_ATTEMPTS = 3  # a concurrent delete may remove an emptied directory between our mkdir and our write


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FilesystemBlobStore:
    """The blob store port on a local directory. Blocking file work runs in worker threads."""

    def __init__(self, root: Path) -> None:
        self._root = root

    @property
    def root(self) -> Path:
        """The directory holding the objects."""
        return self._root

    def _path(self, key: str) -> Path:
        return self._root.joinpath(*check_key(key).split("/"))

    async def start(self) -> None:
        """Create the directory when missing."""
        try:
            await asyncio.to_thread(self._root.mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"blob directory {self._root} cannot be created: {exc}") from exc

    async def close(self) -> None:
        """Nothing to release."""

    async def ping(self) -> None:
        """Return when the directory exists and is writable."""
        if not await asyncio.to_thread(lambda: self._root.is_dir() and os.access(self._root, os.W_OK | os.X_OK)):
            raise StoreUnavailable(f"blob directory {self._root} is missing or not writable")

    async def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        """Store `data` under `key` atomically and durably (temp file, fsync, rename, fsync directory)."""
        path = self._path(key)
        try:
            await asyncio.to_thread(self._put_sync, path, data)
        except (NotADirectoryError, IsADirectoryError, FileExistsError) as exc:
            raise ValueError(f"blob key {key!r} conflicts with an existing object or key prefix") from exc
        except OSError as exc:
            raise StoreUnavailable(f"blob {key!r} cannot be written: {exc}") from exc

    def _put_sync(self, path: Path, data: bytes) -> None:
        for attempt in range(_PUT_ATTEMPTS):
            self._make_dirs(path.parent)
            temp = path.with_name(f"{RESERVED_SEGMENT_PREFIX}{secrets.token_hex(8)}-{path.name}")
            try:
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileNotFoundError:
                if attempt + 1 == _PUT_ATTEMPTS:
                    raise
                continue
            try:
                try:
                    view = memoryview(data)
                    while view:
                        written = os.write(fd, view)
                        view = view[written:]
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(temp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    temp.unlink(missing_ok=True)
                raise
            _fsync_dir(path.parent)
            return

    def _make_dirs(self, directory: Path) -> None:
        missing: list[Path] = []
        current = directory
        while current != self._root and not current.is_dir():
            missing.append(current)
            current = current.parent
        for created in reversed(missing):
            try:
                created.mkdir()
            except FileExistsError:
                if not created.is_dir():
                    raise
            _fsync_dir(created.parent)

    async def get(self, key: str) -> bytes:
        """The object's bytes; `BlobNotFound` when there is none."""
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise BlobNotFound(key) from None
        except OSError as exc:
            raise StoreUnavailable(f"blob {key!r} cannot be read: {exc}") from exc

    async def list(self, prefix: str, *, after: str | None = None, limit: int = 1000) -> Sequence[BlobInfo]:
        """Up to `limit` objects whose key starts with `prefix` and sorts after `after`, in key order."""
        check_prefix(prefix)
        check_limit(limit)
        try:
            return await asyncio.to_thread(self._list_sync, prefix, after or "", limit)
        except OSError as exc:
            raise StoreUnavailable(f"blob directory {self._root} cannot be listed: {exc}") from exc

    def _list_sync(self, prefix: str, after: str, limit: int) -> list[BlobInfo]:
        found: list[BlobInfo] = []
        for info in self._walk(self._root, "", prefix, after):
            found.append(info)
            if len(found) >= limit:
                break
        return found

    def _walk(self, directory: Path, base: str, prefix: str, after: str) -> Iterator[BlobInfo]:
        """Objects under `directory` (whose keys start with `base`) in key order, pruned by prefix and after.

        Sorting a directory's entries by name, with `/` appended to subdirectories, yields keys in the same
        order as sorting the full keys, so the walk can stop at `limit` without reading the whole tree.
        """
        try:
            with os.scandir(directory) as scan:
                entries = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in scan]
        except FileNotFoundError:
            return
        except NotADirectoryError:
            return
        entries.sort(key=lambda item: item[0] + "/" if item[1] else item[0])
        for name, is_dir in entries:
            if name.startswith(RESERVED_SEGMENT_PREFIX):
                continue
            if is_dir:
                sub = f"{base}{name}/"
                if not (sub.startswith(prefix) or prefix.startswith(sub)):
                    continue
                if sub < after and not after.startswith(sub):
                    continue
                yield from self._walk(directory / name, sub, prefix, after)
                continue
            key = base + name
            if not key.startswith(prefix) or key <= after:
                continue
            try:
                size = os.stat(directory / name, follow_symlinks=False).st_size
            except FileNotFoundError:
                continue
            yield BlobInfo(key=key, size=size)

    async def delete(self, key: str) -> None:
        """Remove the object (nothing when there is none) and the directories that became empty."""
        path = self._path(key)
        try:
            await asyncio.to_thread(self._delete_sync, path)
        except OSError as exc:
            raise StoreUnavailable(f"blob {key!r} cannot be deleted: {exc}") from exc

    def _delete_sync(self, path: Path) -> None:
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError):
            return
        except IsADirectoryError:
            return
        _fsync_dir(path.parent)
        current = path.parent
        while current != self._root:
            try:
                current.rmdir()
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                    return
                raise
            current = current.parent
