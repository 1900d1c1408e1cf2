"""Heap snapshots of every Python process of a benchmarked Mintlog (`benchmarks/soak.py --heap-snapshots`).

Python imports `sitecustomize` at start-up from `sys.path`; the soak puts this directory on the
`PYTHONPATH` of the `mintlog run` it starts, which its children inherit. When
`BENCH_HEAP_DIR` is set, each process starts `tracemalloc` (`BENCH_HEAP_FRAMES` frames per
traceback, default 8) and a daemon thread that writes a snapshot every `BENCH_HEAP_SECONDS`
(default 300) to `<dir>/<pid>-<seconds since start, 6 digits>.tracemalloc`, plus `<dir>/<pid>.cmdline`.
With `BENCH_HEAP_PROCESSES=parent`, the pipeline children (`MINTLOG_ROLES=pipeline` in their environment)
are not traced, so the parent can be traced at a rate the untraced children keep up with.
tracemalloc makes every allocation much slower, and Mintlog's write path allocates for every event: on
the 2-core benchmark machine an all-in-one with snapshots (4 frames) fell behind at 4,000 events/s, about a
fourteenth of its maximum without them (2026-12-07). Take snapshots at a rate the system sustains with
them, and measure RSS growth in a run without them.
"""

from __future__ import annotations

import os
import threading
import time
import tracemalloc
from pathlib import Path


def _snapshots(directory: Path, interval: float) -> None:
    started = time.monotonic()
    pid = os.getpid()
    while True:
        time.sleep(interval)
        elapsed = round(time.monotonic() - started)
        staged = directory / f"{pid}-{elapsed:06d}.tracemalloc.tmp"
        tracemalloc.take_snapshot().dump(str(staged))
        staged.rename(staged.with_suffix(""))


def _start() -> None:
    heap_dir = os.environ.get("BENCH_HEAP_DIR")
    if not heap_dir:
        return
    if os.environ.get("BENCH_HEAP_PROCESSES") == "parent" and os.environ.get("MINTLOG_ROLES") == "pipeline":
        return
    directory = Path(heap_dir)
    directory.mkdir(parents=True, exist_ok=True)
    command = Path("/proc/self/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    (directory / f"{os.getpid()}.cmdline").write_text(command)
    tracemalloc.start(int(os.environ.get("BENCH_HEAP_FRAMES", "8")))
    interval = float(os.environ.get("BENCH_HEAP_SECONDS", "300"))
    threading.Thread(target=_snapshots, args=(directory, interval), name="heap-snapshots", daemon=True).start()


_start()
