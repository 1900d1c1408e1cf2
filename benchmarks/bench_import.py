"""`mintlog import` throughput beside the load generator's rate, in the same run (issue 16 part 6).

    .venv/bin/python -m benchmarks.bench_import --size-mb 50 --load-seconds 10      # quick
    .venv/bin/python -m benchmarks.bench_import --size-mb 1024 --load-seconds 60    # the issue's 1 GB

1. Writes an NDJSON file of `--size-mb` MB of the load generator's own events (`benchmarks.load.realistic_event`,
   seeded), so both paths send the same kind of event.
2. A fresh all-in-one `mintlog run` (`benchmarks.topology.AllInOne`) is loaded by `benchmarks/load.py`, unpaced,
   for `--load-seconds`: its accepted events/s.
3. Another fresh one receives `python -m mintlog import FILE --json --no-progress` (defaults: batches of 5,000
   events or 4 MiB, 4 requests in flight): events/s and MB/s accepted (the command's own summary), then the
   time until every event is searchable (sustained, end to end).

Prints one JSON object; `import ÷ load` is the import's accepted events/s over the load generator's (target of
the issue: ≥ 0.8). `--json PATH` also writes it there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from benchmarks.load import exact_count, load, realistic_event
from benchmarks.topology import AllInOne, log

__all__ = ["generate_file", "measure"]

_SEED = 16


def generate_file(path: Path, size_bytes: int, run_id: str) -> int:
    """Writes NDJSON events of the load generator to `path` until it holds at least `size_bytes`; returns the
    number of events."""
    rng = random.Random(_SEED)
    encode = msgspec.json.encode
    written = 0
    events = 0
    with path.open("wb") as out:
        while written < size_bytes:
            chunk = b"".join(encode(realistic_event(run_id, rng)) + b"\n" for _ in range(1000))
            out.write(chunk)
            written += len(chunk)
            events += 1000
    return events


def _load_rate(seconds: float) -> dict[str, Any]:
    with AllInOne(name="mintlog-load") as target:
        log(f"import bench: load generator unpaced for {seconds:.0f} s (pid {target.pid})")
        result = asyncio.run(
            load(ingest=target.ingest, api=target.api, key=target.key, duration=seconds, drain_timeout=600.0)
        )
    return {
        "accepted_events_per_s": result["accepted_events_per_s"],
        "searchable_events_per_s": result["searchable_events_per_s"],
        "raw_bytes_per_event": result["raw_bytes_per_event"],
        "zero_loss": result["zero_loss"],
    }


def _import_rate(path: Path, events: int, run_id: str) -> dict[str, Any]:
    with AllInOne(name="mintlog-import") as target:
        command = [sys.executable, "-m", "mintlog", "import", str(path), "--url", target.ingest, "--json"]
        log(f"import bench: mintlog import of {path.stat().st_size / 1e6:,.0f} MB ({events:,} events)")
        env = {name: value for name, value in os.environ.items() if not name.startswith("MINTLOG_")}
        env["MINTLOG_API_KEY"] = target.key
        started = time.monotonic()
        finished = subprocess.run(
            [*command, "--no-progress"], capture_output=True, text=True, env=env, check=False, timeout=24 * 3600
        )
        import_seconds = time.monotonic() - started
        if finished.returncode != 0:
            raise RuntimeError(f"mintlog import failed ({finished.returncode}): {finished.stdout} {finished.stderr}")
        summary = json.loads(finished.stdout)
        searchable = asyncio.run(_wait_searchable(target.api, target.key, run_id, events, timeout=600.0))
        all_searchable_seconds = time.monotonic() - started
    return {
        "command": " ".join(["mintlog", "import", "FILE", "--json", "--no-progress"]),
        "events": events,
        "file_bytes": path.stat().st_size,
        "accepted": summary["accepted"],
        "import_seconds": round(import_seconds, 2),
        "accepted_events_per_s": round(summary["accepted"] / import_seconds),
        "accepted_mb_per_s": round(path.stat().st_size / 1e6 / import_seconds, 2),
        "events_searchable": searchable,
        "zero_loss": searchable == events == summary["accepted"],
        "searchable_events_per_s": round(searchable / all_searchable_seconds),
    }


async def _wait_searchable(api: str, key: str, run_id: str, expected: int, timeout: float) -> int:
    import aiohttp

    deadline = time.monotonic() + timeout
    found = 0
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            found = await exact_count(session, api, key, {"fields": {"run": run_id}})
            if found >= expected:
                break
            await asyncio.sleep(0.25)
    return found


def measure(size_mb: float, load_seconds: float) -> dict[str, Any]:
    """One run: the load generator's rate, then the import's, on fresh processes (see the module docstring)."""
    run_id = secrets.token_hex(6)
    with tempfile.TemporaryDirectory(prefix="mintlog-bench-import-") as temp:
        path = Path(temp) / "events.ndjson"
        log(f"import bench: writing {size_mb:,.0f} MB of NDJSON")
        events = generate_file(path, int(size_mb * 1e6), run_id)
        loaded = _load_rate(load_seconds)
        imported = _import_rate(path, events, run_id)
    return {
        "size_mb": size_mb,
        "load_seconds": load_seconds,
        "load": loaded,
        "import": imported,
        "import_to_load_ratio": round(imported["accepted_events_per_s"] / max(1, loaded["accepted_events_per_s"]), 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=float, default=1024.0, help="size of the generated file (default: 1 GB)")
    parser.add_argument("--load-seconds", type=float, default=60.0, help="load generator duration")
    parser.add_argument("--json", help="also write the result to this file")
    args = parser.parse_args()
    result = measure(args.size_mb, args.load_seconds)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0 if result["import"]["zero_loss"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
