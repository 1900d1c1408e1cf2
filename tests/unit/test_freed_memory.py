"""`FreedMemoryReleaser`: memory Tantivy's merges freed goes back to the system at most once an interval."""

from __future__ import annotations

import asyncio
import platform
from pathlib import Path

import pytest

from mintlog.adapters.logstore import freed_memory
from mintlog.adapters.logstore.freed_memory import FreedMemoryReleaser, malloc_trim_function
from mintlog.adapters.logstore.tantivy import TantivyLogStore
from tests.unit.test_tantivy_store import MiB, make_event


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_it_trims_at_most_once_an_interval_and_the_first_call_only_starts_the_clock() -> None:
    pads: list[int] = []
    clock = Clock()
    releaser = FreedMemoryReleaser(60, trim=lambda pad: pads.append(pad) or 1, clock=clock)
    assert releaser.release_if_due() is False  # start-up: nothing merged yet
    clock.now += 59.9
    assert releaser.release_if_due() is False
    clock.now += 0.1
    assert releaser.release_if_due() is True
    assert releaser.release_if_due() is False  # the interval counts from the last trim
    clock.now += 60
    assert releaser.release_if_due() is True
    assert pads == [0, 0]


def test_an_interval_of_zero_or_a_c_library_without_malloc_trim_never_trims(monkeypatch: pytest.MonkeyPatch) -> None:
    pads: list[int] = []
    clock = Clock()
    off = FreedMemoryReleaser(0, trim=lambda pad: pads.append(pad) or 1, clock=clock)
    monkeypatch.setattr(freed_memory, "malloc_trim_function", lambda: None)  # as on musl or macOS
    without = FreedMemoryReleaser(60, clock=clock)
    for _ in range(3):
        clock.now += 3600
        assert off.release_if_due() is False
        assert without.release_if_due() is False
    assert pads == []


def test_glibc_has_malloc_trim_and_it_runs() -> None:
    trim = malloc_trim_function()
    if platform.libc_ver()[0] != "glibc":
        assert trim is None or trim(0) in (0, 1)
        return
    assert trim is not None
    _garbage = [bytearray(256 * 1024) for _ in range(64)]  # 16 MiB freed below: something to give back
    del _garbage
    assert trim(0) in (0, 1)  # 1: memory was released, 0: none could be


async def test_the_store_trims_after_writes_once_the_interval_passed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pads: list[int] = []
    monkeypatch.setattr(freed_memory, "malloc_trim_function", lambda: lambda pad: pads.append(pad) or 1)
    store = TantivyLogStore(tmp_path / "index", writer_heap_bytes=16 * MiB, release_freed_memory_seconds=0.2)
    await store.start()
    try:
        await store.write([make_event("evt-1")])
        await store.write([make_event("evt-2")])
        assert pads == []
        await asyncio.sleep(0.3)
        await store.write([make_event("evt-3")])
        assert pads == [0]
    finally:
        await store.close()
