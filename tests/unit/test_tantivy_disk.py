"""Telling the disk's refusals of Tantivy writes from other failures, and sharing that state across processes.

The error texts are the ones tantivy 0.27 raised on a full tmpfs (`tests/integration/test_disk_full_adapters.py`
runs the real thing).
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from mintlog.adapters.logstore.tantivy_disk import DiskHealth, disk_refusal
from mintlog.errors import StoreDiskFailure, StoreUnavailable

DEBUG_FORM = (
    "Failed to open file for write: 'IoError { io_error: Custom { kind: StorageFull, error: PathError { path: "
    '"/data/index/acme/2024-03-09/.tmpUE3Ks5", err: Os { code: 28, kind: StorageFull, message: "No space left on '
    'device" } } }, filepath: "64479eaa02aa4b438ccbca995a0b552f.fieldnorm" }\''
)
DISPLAY_FORM = "An IO error occurred: 'No space left on device (os error 28) at path \"/data/index/b/.tmpGcn225\"'"
INTERNAL_FORM = "Internal error: 'No space left on device (os error 28)'"
WRITER_KILLED = (
    "An error occurred in a thread: 'An index writer was killed.. A worker thread encountered an error "
    "(io::Error most likely) or panicked.'"
)


def wrapped(cause: BaseException) -> StoreUnavailable:
    """`cause` as the store's translation raises it."""
    try:
        raise StoreUnavailable(f"tantivy store could not write: {cause}") from cause
    except StoreUnavailable as exc:
        return exc


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (DEBUG_FORM, errno.ENOSPC),
        (DISPLAY_FORM, errno.ENOSPC),
        (INTERNAL_FORM, errno.ENOSPC),
        ("An IO error occurred: 'Disk quota exceeded (os error 122)'", errno.EDQUOT),
        ('IoError { io_error: Custom { kind: ReadOnlyFilesystem, error: "…" } }', errno.EROFS),
        ("An IO error occurred: 'Input/output error (os error 5)'", errno.EIO),
        ("An IO error occurred: 'Permission denied (os error 13)'", None),
        ("Schema error: 'field ts_us not found'", None),
        (WRITER_KILLED, None),  # no cause given: only a probe of the disk can tell
    ],
)
def test_the_errno_is_read_from_tantivys_error_texts(text: str, code: int | None) -> None:
    assert disk_refusal(wrapped(ValueError(text))) == code


def test_an_os_error_anywhere_in_the_chain_counts() -> None:
    assert disk_refusal(wrapped(OSError(errno.ENOSPC, "No space left on device"))) == errno.ENOSPC
    assert disk_refusal(wrapped(OSError(errno.EACCES, "Permission denied"))) is None


def test_a_refusal_is_seen_by_every_store_on_the_root_until_a_write_succeeds(tmp_path: Path) -> None:
    writer, other_process = DiskHealth(tmp_path), DiskHealth(tmp_path)
    writer.start()
    other_process.start()

    refusal = writer.refusal(wrapped(ValueError(DISPLAY_FORM)), needed_bytes=0)

    assert isinstance(refusal, StoreDiskFailure)
    assert "No space left on device" in str(refusal)
    for health in (writer, other_process):
        with pytest.raises(StoreDiskFailure, match="refused"):
            health.check()
    writer.succeeded()
    writer.check()
    other_process.check()


def test_other_failures_leave_the_store_ready(tmp_path: Path) -> None:
    health = DiskHealth(tmp_path)
    health.start()

    assert health.refusal(wrapped(ValueError("Schema error: 'field ts_us not found'")), needed_bytes=0) is None
    health.check()


def test_a_killed_writer_on_a_disk_with_room_is_not_put_down_to_the_disk(tmp_path: Path) -> None:
    health = DiskHealth(tmp_path)
    health.start()

    assert health.refusal(wrapped(ValueError(WRITER_KILLED)), needed_bytes=4096) is None
    health.check()
    assert sorted(path.name for path in tmp_path.iterdir()) == [".writes-ok"]  # the probe file is gone
