"""Load generator for a running all-in-one Mintlog, driven over HTTP from a separate process.

    python benchmarks/load.py --spawn --duration 60          # start `mintlog run` on a temp dir, then load it
    python benchmarks/load.py --key mlk_... --duration 60    # load an already running Mintlog

Sends batches of realistic events (default 500 per batch) from `--concurrency` connections for
`--duration` seconds, while probes measure ingest-to-searchable latency. Reports sustained events/s
accepted, events/s searchable, p50/p99 ingest request latency, p50/p99 ingest-to-searchable, whether
every accepted event became searchable (zero loss), the pipeline's backlog (sampled every second from the ingest
port's `/metrics`: messages on LOGS_RAW + LOGS_PARSED and the age of the oldest), and peak RSS of Mintlog and its
nats-server child. A refused request (any status but the accepted one) is sent again after its `Retry-After`
(at most 5 s; 50 ms without one), as a well-behaved client would.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

SERVICES = ["checkout", "payments", "search", "auth", "inventory", "gateway", "email", "billing"]
LEVELS = ["info"] * 70 + ["debug"] * 15 + ["warn"] * 10 + ["error"] * 5
PATHS = ["/api/orders", "/api/users/{id}", "/api/cart", "/health", "/api/search", "/api/payments"]


def realistic_event(run_id: str, rng: random.Random) -> dict[str, Any]:
    service = rng.choice(SERVICES)
    level = rng.choice(LEVELS)
    path = rng.choice(PATHS).replace("{id}", str(rng.randint(1, 99999)))
    status = 500 if level == "error" else rng.choice([200, 200, 200, 201, 204, 304, 404])
    latency = round(rng.lognormvariate(3, 0.8), 2)
    message = (
        f"GET {path} {status} {latency}ms"
        if level != "error"
        else f"upstream timeout calling {rng.choice(SERVICES)} after {latency}ms"
    )
    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "service": service,
        "host": f"{service}-{rng.randint(1, 6)}",
        "level": level,
        "message": message,
        "trace_id": secrets.token_hex(16),
        "fields": {
            "run": run_id,
            "user_id": f"u{rng.randint(1, 50000)}",
            "status": status,
            "latency_ms": latency,
            "region": rng.choice(["eu-west-1", "us-east-1", "ap-south-1"]),
        },
    }


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def rss_kib(pid: int, field_name: str = "VmHWM") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def child_pids(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@dataclass
class Stats:
    accepted: int = 0
    failed_requests: int = 0
    statuses: dict[int, int] = field(default_factory=lambda: {})
    request_latencies: list[float] = field(default_factory=lambda: [])
    searchable_latencies: list[float] = field(default_factory=lambda: [])
    probes_lost: int = 0
    searchable_samples: list[tuple[float, int]] = field(default_factory=lambda: [])
    backlog_samples: list[tuple[float, float]] = field(default_factory=lambda: [])
    """(messages waiting on LOGS_RAW + LOGS_PARSED, age of the oldest in s), once a second."""


class Pacer:
    """Hands out send slots so that all senders together offer `rate` events/s (0 = as fast as possible)."""

    def __init__(self, rate: float, per_body: int) -> None:
        self._interval = per_body / rate if rate > 0 else 0.0
        self._next = time.monotonic()

    async def wait(self) -> None:
        if not self._interval:
            return
        slot = self._next = max(self._next + self._interval, time.monotonic() - 1.0)
        delay = slot - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


async def sender(
    session: aiohttp.ClientSession,
    url: str,
    key: str,
    bodies: list[bytes],
    per_body: int,
    stop_at: float,
    stats: Stats,
    pacer: Pacer,
    content_type: str = "application/json",
    accepted_status: int = 202,
) -> None:
    index = random.randrange(len(bodies))
    headers = {"X-API-Key": key, "Content-Type": content_type}
    while time.monotonic() < stop_at:
        await pacer.wait()
        body = bodies[index % len(bodies)]
        index += 1
        started = time.perf_counter()
        try:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                stats.statuses[response.status] = stats.statuses.get(response.status, 0) + 1
                if response.status == accepted_status:
                    stats.accepted += per_body
                    stats.request_latencies.append(time.perf_counter() - started)
                else:
                    stats.failed_requests += 1
                    await asyncio.sleep(retry_after_seconds(response.headers.get("Retry-After")))
        except aiohttp.ClientError:
            stats.failed_requests += 1
            await asyncio.sleep(0.1)


def retry_after_seconds(header: str | None) -> float:
    """How long a refused sender waits: the answer's `Retry-After` (whole seconds, at most 5), else 50 ms."""
    try:
        return min(5.0, max(0.05, float(header))) if header else 0.05
    except ValueError:
        return 0.05


_BACKLOG_SAMPLE = re.compile(
    r'^mintlog_ingest_backlog_(messages|oldest_seconds)\{stream="[A-Z_]+"\} ([0-9.e+-]+)$', re.M
)


async def backlog_sampler(session: aiohttp.ClientSession, ingest: str, stop_at: float, stats: Stats) -> None:
    """Every second, the backlog ingest last read (its gauges; absent before the backlog gate exists)."""
    while time.monotonic() < stop_at:
        try:
            async with session.get(f"{ingest}/metrics") as response:
                text = await response.text()
        except aiohttp.ClientError:
            text = ""
        messages, oldest = 0.0, 0.0
        for name, value in _BACKLOG_SAMPLE.findall(text):
            if name == "messages":
                messages += float(value)
            else:
                oldest = max(oldest, float(value))
        if _BACKLOG_SAMPLE.search(text):
            stats.backlog_samples.append((messages, oldest))
        await asyncio.sleep(1.0)


async def search_total(session: aiohttp.ClientSession, api: str, key: str, body: dict[str, Any]) -> int:
    async with session.post(f"{api}/v1/logs/search", json=body, headers={"X-API-Key": key}) as response:
        if response.status != 200:
            return -1
        return int((await response.json())["total"])


async def exact_count(session: aiohttp.ClientSession, api: str, key: str, body: dict[str, Any]) -> int:
    """The exact number of matching events of the last 24 hours (search's total stops at its cap)."""
    body = {**body, "from": "now-24h"}
    async with session.post(f"{api}/v1/logs/aggregate", json=body, headers={"X-API-Key": key}) as response:
        if response.status != 200:
            return -1
        return int((await response.json())["total"])


async def prober(
    session: aiohttp.ClientSession, ingest: str, api: str, key: str, run_id: str, stop_at: float, stats: Stats
) -> None:
    headers = {"X-API-Key": key}
    while time.monotonic() < stop_at:
        token = f"probe{secrets.token_hex(8)}"
        event = {"service": "probe", "message": f"probe {token}", "fields": {"probe_run": run_id}}
        async with session.post(f"{ingest}/v1/ingest/logs", json={"events": [event]}, headers=headers) as response:
            await response.read()
            if response.status != 202:
                await asyncio.sleep(0.5)
                continue
        accepted_at = time.perf_counter()
        found = False
        while time.perf_counter() - accepted_at < 30:
            if await search_total(session, api, key, {"query": token, "size": 1}) > 0:
                stats.searchable_latencies.append(time.perf_counter() - accepted_at)
                found = True
                break
            await asyncio.sleep(0.02)
        if not found:
            stats.probes_lost += 1
        await asyncio.sleep(0.5)


async def sampler(
    session: aiohttp.ClientSession, api: str, key: str, run_id: str, stop_at: float, stats: Stats
) -> None:
    started = time.monotonic()
    while time.monotonic() < stop_at:
        total = await exact_count(session, api, key, {"fields": {"run": run_id}})
        stats.searchable_samples.append((time.monotonic() - started, total))
        await asyncio.sleep(1.0)


def make_bodies(run_id: str, batch: int, distinct_bodies: int) -> list[bytes]:
    """The request bodies a load sends: `distinct_bodies` batches of `batch` realistic events (seeded)."""
    rng = random.Random(42)
    return [
        json.dumps({"events": [realistic_event(run_id, rng) for _ in range(batch)]}).encode()
        for _ in range(distinct_bodies)
    ]


async def load(
    *,
    ingest: str,
    api: str,
    key: str,
    pid: int | None = None,
    duration: float = 60.0,
    rate: float = 0.0,
    batch: int = 500,
    concurrency: int = 8,
    distinct_bodies: int = 40,
    drain_timeout: float = 120.0,
    run_id: str | None = None,
    bodies: list[bytes] | None = None,
    path: str = "/v1/ingest/logs",
    content_type: str = "application/json",
    accepted_status: int = 202,
) -> dict[str, Any]:
    """`run_load` with keyword parameters (the CLI's defaults); `bodies` must carry `run_id` (see `make_bodies`).
    Another ingest protocol's bodies go to its `path` with its `content_type`, a request counting as accepted
    when it answers `accepted_status`."""
    args = argparse.Namespace(
        ingest=ingest,
        api=api,
        duration=duration,
        rate=rate,
        batch=batch,
        concurrency=concurrency,
        distinct_bodies=distinct_bodies,
        drain_timeout=drain_timeout,
        run_id=run_id,
        bodies=bodies,
        path=path,
        content_type=content_type,
        accepted_status=accepted_status,
    )
    return await run_load(args, key, pid)


async def run_load(args: argparse.Namespace, key: str, pid: int | None) -> dict[str, Any]:
    run_id = getattr(args, "run_id", None) or secrets.token_hex(6)
    bodies = getattr(args, "bodies", None) or make_bodies(run_id, args.batch, args.distinct_bodies)
    raw_bytes_per_event = sum(len(b) for b in bodies) / (len(bodies) * args.batch)
    stats = Stats()
    connector = aiohttp.TCPConnector(limit=args.concurrency + 4)
    timeout = aiohttp.ClientTimeout(total=60)
    peak_rss: dict[str, int] = {}
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.monotonic()
        stop_at = started + args.duration
        pacer = Pacer(args.rate, args.batch)
        tasks = [
            asyncio.create_task(
                sender(
                    session,
                    f"{args.ingest}{getattr(args, 'path', '/v1/ingest/logs')}",
                    key,
                    bodies,
                    args.batch,
                    stop_at,
                    stats,
                    pacer,
                    content_type=getattr(args, "content_type", "application/json"),
                    accepted_status=getattr(args, "accepted_status", 202),
                )
            )
            for _ in range(args.concurrency)
        ]
        tasks.append(asyncio.create_task(prober(session, args.ingest, args.api, key, run_id, stop_at, stats)))
        tasks.append(asyncio.create_task(sampler(session, args.api, key, run_id, stop_at, stats)))
        tasks.append(asyncio.create_task(backlog_sampler(session, args.ingest, stop_at, stats)))
        await asyncio.gather(*tasks)
        send_seconds = time.monotonic() - started

        drain_started = time.monotonic()
        searchable = 0
        while time.monotonic() - drain_started < args.drain_timeout:
            searchable = await exact_count(session, args.api, key, {"fields": {"run": run_id}})
            if searchable >= stats.accepted:
                break
            await asyncio.sleep(0.25)
        all_searchable_after = time.monotonic() - started
        if pid is not None:
            peak_rss["mintlog"] = rss_kib(pid)
            for child in child_pids(pid):
                peak_rss[f"child-{child}"] = rss_kib(child)

    return {
        "run_id": run_id,
        "duration_s": round(send_seconds, 1),
        "batch_size": args.batch,
        "offered_rate": args.rate or "max",
        "concurrency": args.concurrency,
        "raw_bytes_per_event": round(raw_bytes_per_event, 1),
        "events_accepted": stats.accepted,
        "events_searchable": searchable,
        "zero_loss": searchable == stats.accepted,
        "accepted_events_per_s": round(stats.accepted / send_seconds),
        "searchable_events_per_s": round(searchable / all_searchable_after),
        "statuses": stats.statuses,
        "ingest_request_p50_ms": round(percentile(stats.request_latencies, 0.5) * 1000, 1),
        "ingest_request_p99_ms": round(percentile(stats.request_latencies, 0.99) * 1000, 1),
        "ingest_to_searchable_p50_ms": round(percentile(stats.searchable_latencies, 0.5) * 1000, 1),
        "ingest_to_searchable_p99_ms": round(percentile(stats.searchable_latencies, 0.99) * 1000, 1),
        "probes": len(stats.searchable_latencies),
        "probes_lost": stats.probes_lost,
        "backlog_messages_max": max((int(m) for m, _ in stats.backlog_samples), default=None),
        "backlog_messages_p99": percentile([m for m, _ in stats.backlog_samples], 0.99)
        if stats.backlog_samples
        else None,
        "backlog_oldest_max_s": round(max((o for _, o in stats.backlog_samples), default=0.0), 1)
        if stats.backlog_samples
        else None,
        "backlog_oldest_p99_s": round(percentile([o for _, o in stats.backlog_samples], 0.99), 1)
        if stats.backlog_samples
        else None,
        "peak_rss_kib": peak_rss,
        "searchable_rate_mean_per_s": round(
            statistics.mean(
                [
                    (b[1] - a[1]) / (b[0] - a[0])
                    for a, b in zip(stats.searchable_samples, stats.searchable_samples[1:], strict=False)
                    if b[0] > a[0] and a[1] >= 0 and b[1] >= 0
                ]
                or [0.0]
            )
        ),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(data_dir: Path, extra_env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str, str, str]:
    ingest_port, api_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINTLOG_")}
    env.update(
        {
            "MINTLOG_DATA_DIR": str(data_dir),
            "MINTLOG_HTTP__INGEST_PORT": str(ingest_port),
            "MINTLOG_HTTP__API_PORT": str(api_port),
            "MINTLOG_LOG_LEVEL": "warning",
            # Measure throughput, not the default per-key limit (limits stay on, just far away).
            "MINTLOG_RATELIMIT__DEFAULT_KEY_REQUESTS_PER_MINUTE": "10000000",
            "MINTLOG_RATELIMIT__TENANT_INGEST_EVENTS_PER_SECOND": "10000000",
            **extra_env,
        }
    )
    log = (data_dir.parent / "mintlog.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "mintlog", "run"], env=env, stdout=log, stderr=subprocess.STDOUT)
    ingest, api = f"http://127.0.0.1:{ingest_port}", f"http://127.0.0.1:{api_port}"
    deadline = time.monotonic() + 60
    import urllib.request

    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{ingest}/healthz", timeout=1)
            urllib.request.urlopen(f"{api}/healthz", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    else:
        process.kill()
        raise SystemExit("mintlog did not start; see " + str(data_dir.parent / "mintlog.log"))
    boot = subprocess.run(
        [sys.executable, "-m", "mintlog", "admin", "bootstrap", "--tenant", "bench"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return process, ingest, api, boot.stdout.strip().splitlines()[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spawn", action="store_true", help="start `mintlog run` on a temporary data dir")
    parser.add_argument("--key", help="API key (when not spawning)")
    parser.add_argument("--ingest", default="http://127.0.0.1:8080")
    parser.add_argument("--api", default="http://127.0.0.1:8081")
    parser.add_argument("--pid", type=int, help="pid of the running mintlog, for RSS (when not spawning)")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rate", type=float, default=0.0, help="offered events/s (default: as fast as possible)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--distinct-bodies", type=int, default=40)
    parser.add_argument("--drain-timeout", type=float, default=120.0)
    parser.add_argument("--env", action="append", default=[], help="extra MINTLOG_X=Y for --spawn")
    args = parser.parse_args()

    process = None
    temp_dir = None
    pid = args.pid
    key = args.key
    try:
        if args.spawn:
            temp_dir = Path(tempfile.mkdtemp(prefix="mintlog-bench-"))
            extra = dict(item.split("=", 1) for item in args.env)
            process, args.ingest, args.api, key = spawn(temp_dir / "data", extra)
            pid = process.pid
        if not key:
            parser.error("--key is required unless --spawn is given")
        result = asyncio.run(run_load(args, key, pid))
        if temp_dir is not None:
            index_dir = temp_dir / "data" / "index"
            result["index_bytes"] = sum(p.stat().st_size for p in index_dir.rglob("*") if p.is_file())
            result["index_bytes_per_event"] = round(result["index_bytes"] / max(1, result["events_searchable"]), 1)
        print(json.dumps(result, indent=2))
        return 0 if result["zero_loss"] else 1
    finally:
        if process is not None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
