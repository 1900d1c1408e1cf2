"""Soak: a fresh all-in-one Mintlog under a steady paced load for a long time, sampled every 10 seconds.

    .venv/bin/python -m benchmarks.soak --rate 17000 --duration 10800 --json soak.json  # what `make bench` runs
    .venv/bin/python -m benchmarks.soak --rate 10000 --duration 120                     # a short look
    .venv/bin/python -m benchmarks.soak --rate 20000 --duration 3600 --heap-snapshots /tmp/heap  # then:
    .venv/bin/python -m benchmarks.heap_growth /tmp/heap    # what grew on each process's Python heap
    .venv/bin/python -m benchmarks.soak --rate 8000 --duration 2400 --nats-heap-profiles /tmp/nats-heap  # then:
    go tool pprof -top -sample_index=inuse_space /tmp/nats-heap/heap-01200.pb.gz   # nats-server's Go heap

`benchmarks/load.py`'s senders offer `--rate` events/s of realistic events (batches of 500, 8 connections)
and its prober sends single-event batches and polls search until each is found. Every `--window` seconds
the soak records: the RSS of every process of the system (`mintlog`, `nats-server`, any child, labelled by
their command line), the p99 of the ingest requests and of the ingest-to-searchable probes of that window
(a window holds ~10 probes, so its p99 is close to its maximum), the events accepted so far, and the NATS
consumer lag (num_pending + num_ack_pending of the durable consumers `pipeline` on LOGS_RAW and `indexer` on
LOGS_PARSED, read from the embedded nats-server), and the embedded nats-server's own view from its
monitoring port (`/varz` memory, connections and subscriptions; `/jsz` messages, bytes and interior deletes
per stream), to tell what its RSS holds. With `--nats-heap-profiles DIR`, the NATS is instead a
separate nats-server with the embedded one's settings plus Go's pprof port (`tests.distributed.cluster.
NatsServer`), whose live heap (`/debug/pprof/heap`) is saved every `--heap-seconds` as
`DIR/heap-<seconds, 5 digits>.pb.gz`. At the end it waits until every accepted event is
searchable (zero loss) and summarizes (`benchmarks/report.py`): RSS growth per hour after warm-up (least-
squares slope over the samples after the first 20 % of the run, as % of the mean RSS, per process), p99
drift (median of the last third of the window p99s ÷ the first third's) and the maximum lag.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.load import Pacer, Stats, exact_count, make_bodies, prober, sender
from benchmarks.report import percentile, soak_summary
from benchmarks.topology import AllInOne, log

CONSUMERS = (("LOGS_RAW", "pipeline"), ("LOGS_PARSED", "indexer"))


async def consumer_lag(js: Any) -> dict[str, int]:
    """num_pending + num_ack_pending per durable consumer ("STREAM/consumer"); -1 when it cannot be read."""
    lag: dict[str, int] = {}
    for stream, durable in CONSUMERS:
        try:
            info = await js.consumer_info(stream, durable)
            lag[f"{stream}/{durable}"] = int(info.num_pending or 0) + int(info.num_ack_pending or 0)
        except Exception:
            lag[f"{stream}/{durable}"] = -1
    return lag


async def nats_server_state(session: aiohttp.ClientSession, monitor: str) -> dict[str, Any]:
    """The nats-server's own figures from its monitoring port `monitor`: `mem` (bytes, as the server sees
    its RSS), connections, subscriptions, slow consumers and, per stream, messages, bytes, interior deletes
    (`num_deleted`) and consumers; {} when the port does not answer."""
    try:
        async with session.get(f"{monitor}/varz") as response:
            varz = await response.json(content_type=None)
        async with session.get(f"{monitor}/jsz", params={"streams": "true", "consumers": "true"}) as response:
            jsz = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return {}
    streams: dict[str, dict[str, int]] = {}
    for account in jsz.get("account_details") or []:
        for stream in account.get("stream_detail") or []:
            state = stream.get("state") or {}
            streams[str(stream.get("name"))] = {
                key: int(state.get(key) or 0) for key in ("messages", "bytes", "num_deleted", "consumer_count")
            }
    return {
        "mem": int(varz.get("mem") or 0),
        "connections": int(varz.get("connections") or 0),
        "subscriptions": int(varz.get("subscriptions") or 0),
        "slow_consumers": int(varz.get("slow_consumers") or 0),
        "streams": streams,
    }


def window_p99_ms(values: list[float]) -> float | None:
    value = percentile(values, 0.99)
    return round(value * 1000, 1) if value is not None else None


async def soak(
    target: AllInOne,
    *,
    rate: float,
    duration: float,
    window: float = 10.0,
    batch: int = 500,
    concurrency: int = 8,
    distinct_bodies: int = 40,
    drain_timeout: float = 300.0,
) -> dict[str, Any]:
    """Load `target` at `rate` events/s for `duration` s, sampling every `window` s; the raw samples + summary."""
    import nats

    run_id = secrets.token_hex(6)
    bodies = make_bodies(run_id, batch, distinct_bodies)
    stats = Stats()
    samples: list[dict[str, Any]] = []
    nc = await nats.connect(target.nats_url(), connect_timeout=10)
    js = nc.jetstream()
    connector = aiohttp.TCPConnector(limit=concurrency + 4)
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
            started = time.monotonic()
            stop_at = started + duration
            pacer = Pacer(rate, batch)
            url = f"{target.ingest}/v1/ingest/logs"
            tasks = [
                asyncio.create_task(sender(session, url, target.key, bodies, batch, stop_at, stats, pacer))
                for _ in range(concurrency)
            ]
            tasks.append(
                asyncio.create_task(prober(session, target.ingest, target.api, target.key, run_id, stop_at, stats))
            )
            seen_requests = seen_probes = 0
            monitor = target.nats_monitor_url()
            next_sample = started + window
            while time.monotonic() < stop_at:
                await asyncio.sleep(max(0.0, min(next_sample, stop_at) - time.monotonic()))
                next_sample += window
                requests = stats.request_latencies[seen_requests:]
                probes = stats.searchable_latencies[seen_probes:]
                seen_requests += len(requests)
                seen_probes += len(probes)
                lag = await consumer_lag(js)
                nats_state = await nats_server_state(session, monitor)
                memory = target.rss()
                rss = {label: values["rss_kib"] for label, values in memory.items()}
                sample = {
                    "t_s": round(time.monotonic() - started, 1),
                    "rss_kib": rss,
                    "anon_kib": {label: values["anon_kib"] for label, values in memory.items()},
                    "requests": len(requests),
                    "request_p99_ms": window_p99_ms(requests),
                    "probes": len(probes),
                    "searchable_p99_ms": window_p99_ms(probes),
                    "lag": sum(value for value in lag.values() if value >= 0),
                    "lag_by_consumer": lag,
                    "nats_server": nats_state,
                    "accepted": stats.accepted,
                }
                samples.append(sample)
                rss_text = " ".join(f"{label} {kib / 1024:.0f}MiB" for label, kib in rss.items())
                log(
                    f"soak t={sample['t_s']:.0f}s accepted={stats.accepted:,} req p99={sample['request_p99_ms']} ms "
                    f"searchable p99={sample['searchable_p99_ms']} ms lag={sample['lag']} {rss_text}"
                )
            await asyncio.gather(*tasks)
            send_seconds = time.monotonic() - started
            drain_started = time.monotonic()
            searchable = 0
            while time.monotonic() - drain_started < drain_timeout:
                searchable = await exact_count(session, target.api, target.key, {"fields": {"run": run_id}})
                if searchable >= stats.accepted:
                    break
                await asyncio.sleep(0.5)
            drain_seconds = time.monotonic() - drain_started
    finally:
        await nc.close()
    return {
        "rate": rate,
        "duration_s": round(send_seconds, 1),
        "window_s": window,
        "events_accepted": stats.accepted,
        "events_searchable": searchable,
        "zero_loss": searchable == stats.accepted,
        "drain_s": round(drain_seconds, 1),
        "failed_requests": stats.failed_requests,
        "probes_lost": stats.probes_lost,
        "accepted_events_per_s": round(stats.accepted / send_seconds) if send_seconds else 0,
        "summary": soak_summary(samples),
        "samples": samples,
    }


HEAP_HOOK_DIR = Path(__file__).parent / "heap_snapshots"


@contextlib.contextmanager
def profiled_nats(directory: Path, interval: float) -> Iterator[Any]:
    """A started nats-server (the embedded one's settings, plus pprof) whose live Go heap is saved to
    `directory` every `interval` seconds while the block runs; stopped after it."""
    from benchmarks.load import free_port
    from tests.distributed.cluster import NatsServer

    directory.mkdir(parents=True, exist_ok=True)
    server = NatsServer(Path(tempfile.mkdtemp(prefix="mintlog-soak-nats-")), profiling_port=free_port())
    server.start()
    stop = threading.Event()

    def save_profiles() -> None:
        started = time.monotonic()
        while not stop.is_set():
            elapsed = round(time.monotonic() - started)
            url = f"http://127.0.0.1:{server.profiling_port}/debug/pprof/heap"
            try:
                with urllib.request.urlopen(url, timeout=60) as response:
                    (directory / f"heap-{elapsed:05d}.pb.gz").write_bytes(response.read())
            except OSError as exc:
                log(f"soak: nats-server heap profile failed: {exc}")
            stop.wait(interval)

    saver = threading.Thread(target=save_profiles, name="nats-heap-profiles", daemon=True)
    saver.start()
    try:
        yield server
    finally:
        stop.set()
        saver.join(timeout=70)
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


def run_soak(
    rate: float,
    duration: float,
    window: float = 10.0,
    heap_dir: Path | None = None,
    heap_seconds: float = 300.0,
    heap_processes: str = "all",
    nats_heap_dir: Path | None = None,
) -> dict[str, Any]:
    """Start a fresh all-in-one, soak it, stop it; with `heap_dir`, its Python processes (all, or with
    `heap_processes="parent"` all but the pipeline children) write heap snapshots there
    (`benchmarks/heap_snapshots/sitecustomize.py`; read them with `benchmarks.heap_growth`); with
    `nats_heap_dir`, on a separate nats-server whose Go heap profiles are saved there (`profiled_nats`)."""
    extra_env: dict[str, str] = {}
    if heap_dir is not None:
        extra_env = {
            "PYTHONPATH": str(HEAP_HOOK_DIR),
            "BENCH_HEAP_DIR": str(heap_dir),
            "BENCH_HEAP_SECONDS": str(heap_seconds),
            "BENCH_HEAP_PROCESSES": heap_processes,
        }
    with contextlib.ExitStack() as stack:
        nats = stack.enter_context(profiled_nats(nats_heap_dir, heap_seconds)) if nats_heap_dir else None
        target = stack.enter_context(AllInOne(extra_env=extra_env, nats=nats))
        log(f"soak: mintlog pid {target.pid}, {rate:,.0f} events/s for {duration:.0f} s")
        return asyncio.run(soak(target, rate=rate, duration=duration, window=window))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, required=True, help="offered events/s")
    parser.add_argument("--duration", type=float, default=1800.0, help="seconds of load")
    parser.add_argument("--window", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--json", type=Path, help="write the result (samples included) here")
    parser.add_argument("--heap-snapshots", type=Path, help="directory for tracemalloc snapshots of every process")
    parser.add_argument("--heap-seconds", type=float, default=300.0, help="seconds between heap snapshots")
    parser.add_argument(
        "--heap-processes",
        choices=("all", "parent"),
        default="all",
        help="which processes take heap snapshots: all, or all but the pipeline children",
    )
    parser.add_argument(
        "--nats-heap-profiles",
        type=Path,
        help="run NATS as a separate nats-server with pprof and save its heap profiles in this directory",
    )
    args = parser.parse_args()
    result = run_soak(
        args.rate,
        args.duration,
        args.window,
        args.heap_snapshots,
        args.heap_seconds,
        args.heap_processes,
        args.nats_heap_profiles,
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(json.dumps({key: value for key, value in result.items() if key != "samples"}, indent=2))
    return 0 if result["zero_loss"] else 1


if __name__ == "__main__":
    sys.exit(main())
