"""A small real filesystem for disk-full tests: a tmpfs mounted for one test, and a ballast file that fills it.

Mounting needs root, which CI has; elsewhere the test is skipped (a skip fails CI, see `tests/conftest.py`).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["fill", "mounted_tmpfs"]


@contextlib.contextmanager
def mounted_tmpfs(mount_point: Path, size_bytes: int) -> Iterator[Path]:
    """A tmpfs of `size_bytes` mounted at `mount_point` (created if missing), unmounted on exit."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount_point.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(mount_point)],
        check=True,
        capture_output=True,
    )
    try:
        yield mount_point
    finally:
        for _ in range(50):  # the files of killed processes may take a moment to close
            if subprocess.run(["umount", str(mount_point)], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:
            subprocess.run(["umount", "--lazy", str(mount_point)], check=True)


def fill(ballast: Path) -> None:
    """Write `ballast` until its filesystem has no byte left (tmpfs allocates 4 KiB pages)."""
    with ballast.open("wb", buffering=0) as file:
        for chunk_bytes in (1024 * 1024, 4096):
            with contextlib.suppress(OSError):
                while True:
                    file.write(b"\0" * chunk_bytes)
