"""Where the CPU goes per event: `benchmarks/load.py --spawn` at a fixed rate, with the CPU time of every
process of the system (the `mintlog run` parent, its pipeline stage children, its nats-server, the load
generator) read from `/proc/<pid>/stat` over the middle of the run.

    .venv/bin/python -m benchmarks.cpu_accounting --rate 40000 --duration 40
    .venv/bin/python -m benchmarks.cpu_accounting --rate 40000 --duration 40 --env MINTLOG_PIPELINE__OWN_PROCESS=false

Prints, per kind of process, the cores it kept busy and its CPU µs per offered event, then load.py's own
report (accepted and searchable events/s, zero loss, latencies). The window skips the first 8 s (start-up,
warm-up) and the last 6 s of sending.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.topology import cmdline, descendants, pipeline_stage_label

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
_SKIP_START_SECONDS = 8.0
_SKIP_END_SECONDS = 6.0


def _kind(pid: int) -> str:
    """What a process of the system is: loadgen, nats-server, a pipeline stage child, or the mintlog parent."""
    command = " ".join(cmdline(pid))
    if "benchmarks/load.py" in command:
        return "loadgen"
    if "nats-server" in command:
        return "nats-server"
    return pipeline_stage_label(pid) or "mintlog"


def cpu_seconds_by_pid(root: int) -> dict[int, tuple[str, float]]:
    """(kind, CPU seconds so far) of `root` and every descendant."""
    found: dict[int, tuple[str, float]] = {}
    for pid in [root, *descendants(root)]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        found[pid] = (_kind(pid), (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND)
    return found


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds `pid` used so far; None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND


def opensearch_pid(url: str) -> int | None:
    """The pid of the OpenSearch node serving `url` on this machine (its JVM's `-E http.port=<port>`), or None."""
    port = url.rstrip("/").rsplit(":", 1)[-1]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        command = cmdline(int(entry.name))
        if "org.opensearch.bootstrap.OpenSearch" in command and f"http.port={port}" in command:
            return int(entry.name)
    return None


def cpu_snapshot(labelled: dict[str, int]) -> dict[str, tuple[int, float]]:
    """{label: (pid, CPU seconds so far)} of the live processes of `labelled` (label → pid)."""
    snapshot: dict[str, tuple[int, float]] = {}
    for label, pid in labelled.items():
        cpu = process_cpu_seconds(pid)
        if cpu is not None:
            snapshot[label] = (pid, cpu)
    return snapshot


def cpu_used(before: dict[str, tuple[int, float]], after: dict[str, tuple[int, float]]) -> dict[str, float]:
    """CPU seconds each label used between two `cpu_snapshot`s (labels whose pid lived through both)."""
    return {
        label: round(cpu - before[label][1], 3)
        for label, (pid, cpu) in after.items()
        if label in before and before[label][0] == pid
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, required=True, help="offered events/s")
    parser.add_argument("--duration", type=float, default=40.0)
    parser.add_argument("--env", action="append", default=[], help="extra MINTLOG_X=Y for the spawned mintlog")
    args = parser.parse_args()
    if args.duration <= _SKIP_START_SECONDS + _SKIP_END_SECONDS + 5:
        parser.error("--duration must leave a window of at least 5 s")
    command = [sys.executable, "benchmarks/load.py", "--spawn", "--duration", str(args.duration)]
    command += ["--rate", str(args.rate), *(f"--env={item}" for item in args.env)]
    load = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    time.sleep(_SKIP_START_SECONDS)
    before, started = cpu_seconds_by_pid(load.pid), time.monotonic()
    time.sleep(args.duration - _SKIP_START_SECONDS - _SKIP_END_SECONDS)
    after, seconds = cpu_seconds_by_pid(load.pid), time.monotonic() - started
    by_kind: dict[str, float] = {}
    for pid, (kind, cpu) in after.items():
        if pid in before:
            by_kind[kind] = by_kind.get(kind, 0.0) + cpu - before[pid][1]
    output, _ = load.communicate()
    report = {
        kind: {"cores": round(cpu / seconds, 2), "us_per_event": round(cpu / seconds / args.rate * 1e6, 1)}
        for kind, cpu in sorted(by_kind.items())
    }
    total = sum(by_kind.values())
    report["total"] = {"cores": round(total / seconds, 2), "us_per_event": round(total / seconds / args.rate * 1e6, 1)}
    print(json.dumps({"cpu": report, "load": json.loads(output or b"{}")}, indent=2))
    return load.returncode


if __name__ == "__main__":
    raise SystemExit(main())
