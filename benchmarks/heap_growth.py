"""What grew on the Python heap of each process between two heap snapshots of a soak.

    .venv/bin/python -m benchmarks.heap_growth /tmp/soak-heap --top 15

Reads the snapshots `benchmarks/heap_snapshots/sitecustomize.py` wrote (`soak.py --heap-snapshots DIR`):
per process, the Python memory tracemalloc traced at each snapshot, then the allocation sites that grew
most between the first snapshot at or after `--warmup` of the process's life (default 20 %) and its last one,
by source line, with the traceback of the largest ones. Only memory Python allocates is traced: Tantivy's,
nats-server's and the allocator's own overhead are not, so compare the traced total with the RSS the soak
sampled.
"""

from __future__ import annotations

import argparse
import re
import tracemalloc
from collections import defaultdict
from pathlib import Path

_SNAPSHOT = re.compile(r"^(\d+)-(\d+)\.tracemalloc$")
MiB = 1024 * 1024


def snapshots_by_process(directory: Path) -> dict[int, list[tuple[int, Path]]]:
    """Snapshot files per process id, ordered by seconds since that process started."""
    found: dict[int, list[tuple[int, Path]]] = defaultdict(list)
    for path in directory.iterdir():
        match = _SNAPSHOT.match(path.name)
        if match:
            found[int(match.group(1))].append((int(match.group(2)), path))
    return {pid: sorted(paths) for pid, paths in found.items()}


def _label(directory: Path, pid: int) -> str:
    cmdline = directory / f"{pid}.cmdline"
    return cmdline.read_text()[:140] if cmdline.exists() else "?"


def report(directory: Path, *, top: int, warmup: float) -> None:
    """Print, per process, the traced total over time and the allocation sites that grew most."""
    for pid, paths in sorted(snapshots_by_process(directory).items()):
        print(f"\n=== pid {pid}: {_label(directory, pid)}")
        if len(paths) < 2:
            print("   fewer than two snapshots")
            continue
        totals: list[str] = []
        for seconds, path in paths:
            snapshot = tracemalloc.Snapshot.load(str(path))
            traced = sum(stat.size for stat in snapshot.statistics("filename"))
            totals.append(f"{seconds}s {traced / MiB:.1f}")
        print("   traced MiB:", ", ".join(totals))
        last_seconds = paths[-1][0]
        first_seconds, first_path = next((item for item in paths if item[0] >= warmup * last_seconds), paths[0])
        first = tracemalloc.Snapshot.load(str(first_path))
        last = tracemalloc.Snapshot.load(str(paths[-1][1]))
        hours = max(last_seconds - first_seconds, 1) / 3600
        print(f"   growth from {first_seconds}s to {last_seconds}s, by line (MiB, MiB/h, blocks):")
        for stat in last.compare_to(first, "lineno")[:top]:
            frame = stat.traceback[0]
            print(
                f"   {stat.size_diff / MiB:+8.2f} {stat.size_diff / MiB / hours:+8.2f}/h {stat.count_diff:+9d}  "
                f"{frame.filename}:{frame.lineno}"
            )
        for stat in last.compare_to(first, "traceback")[:3]:
            print(f"   traceback of {stat.size_diff / MiB:+.2f} MiB:")
            for line in stat.traceback.format(limit=8):
                print(f"      {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--warmup", type=float, default=0.2, help="fraction of a process's life left out")
    args = parser.parse_args()
    report(args.directory, top=args.top, warmup=args.warmup)


if __name__ == "__main__":
    main()
