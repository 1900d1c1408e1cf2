"""CPU per event of each ingest protocol, end to end: for each protocol named, a fresh all-in-one (with a syslog
port, whatever the protocol) loaded unpaced by the protocol's `benchmarks.ingest_protocols` load, and the CPU time
of each of its processes (the `mintlog run` parent, its pipeline stage children, its nats-server) read from
`/proc/<pid>/stat` over the whole load and its drain, divided by the events that became searchable. The load
generator runs in this process; its CPU is this process's.

    .venv/bin/python -m benchmarks.protocol_cpu --seconds 8 native syslog es_bulk native syslog

CPU per event moves much less than events/s when other work shares the machine, which is what makes two
protocols comparable on a busy machine; it does not show contention itself.
"""

from __future__ import annotations

import argparse
import os
import secrets
import time
from pathlib import Path

from benchmarks.ingest_protocols import PROTOCOL_LOADS, event_batches
from benchmarks.load import free_port
from benchmarks.topology import AllInOne, cmdline, descendants, pipeline_stage_label

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
_BATCH = 500
_DISTINCT_BODIES = 40
_DRAIN_TIMEOUT = 180.0


def _kind(pid: int) -> str:
    if "nats-server" in " ".join(cmdline(pid)):
        return "nats-server"
    return "pipeline" if pipeline_stage_label(pid) else "mintlog"


def _cpu_seconds(pids: list[int]) -> dict[int, float]:
    seconds: dict[int, float] = {}
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds[pid] = (int(stat[11]) + int(stat[12])) / _TICKS_PER_SECOND
    return seconds


def measure(protocol: str, seconds: float) -> str:
    """One protocol's line: events, sustained events/s and CPU µs per event by kind of process."""
    with AllInOne({"MINTLOG_SYSLOG__TCP_PORT": str(free_port())}) as target:
        time.sleep(2.0)  # past start-up
        pids = [target.pid, *descendants(target.pid)]
        kinds = {pid: _kind(pid) for pid in pids}
        run_id = secrets.token_hex(6)
        batches = event_batches(run_id, _BATCH, _DISTINCT_BODIES)
        before, own_before = _cpu_seconds(pids), time.process_time()
        result = PROTOCOL_LOADS[protocol](target, seconds, run_id, batches, _DRAIN_TIMEOUT)
        after, own = _cpu_seconds(pids), time.process_time() - own_before
    events = result["events_searchable"]
    by_kind: dict[str, float] = {}
    for pid in pids:
        by_kind[kinds[pid]] = by_kind.get(kinds[pid], 0.0) + after.get(pid, 0.0) - before.get(pid, 0.0)
    by_kind["loadgen"] = own
    per_event = ", ".join(f"{kind} {cpu / events * 1e6:.1f}" for kind, cpu in by_kind.items())
    total = sum(by_kind.values()) / events * 1e6
    return (
        f"{protocol:8s} {events:7d} events (zero loss {result['zero_loss']}), sustained "
        f"{result['searchable_events_per_s']:6d}/s; CPU us/event: {per_event}, total {total:.1f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0, help="unpaced load of each protocol")
    parser.add_argument("protocols", nargs="+", choices=sorted(PROTOCOL_LOADS))
    args = parser.parse_args()
    for protocol in args.protocols:
        print(f"{time.strftime('%H:%M:%S')} {measure(protocol, args.seconds)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
