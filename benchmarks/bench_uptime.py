"""Uptime at scale (issue 17): many HTTP monitors on one uptime process against a local target.

    python -m benchmarks.bench_uptime --json out.json            # 1,000 monitors every 30 s
    python -m benchmarks.bench_uptime --quick                     # 200 monitors every 10 s, a short run

Starts a local HTTP target on 127.0.0.1 (aiohttp in a thread: `/m/<n>` answers 200, or 503 once monitor `n`
is flipped to failing) and `mintlog run` on a temporary data dir (all roles, embedded defaults,
`MINTLOG_EGRESS_ALLOW=127.0.0.0/8`, `MINTLOG_UPTIME__MAX_MONITORS_PER_TENANT` raised to the monitor count), then
creates the monitors through the API, paced evenly over one interval so their phases are spread as those of
monitors created over time are (a monitor is checked at once when created and keeps that phase).

Measured:
- **start delay**: every result's `started_at - due_at` (when its probe started against when it was due) of the
  checks due in the observation window (`--intervals` intervals after one interval of warm-up), p50/p99/max,
  and how many scheduled checks have no result (skipped: `next_due` drops a check that fell a whole interval
  behind);
- **CPU per check**: CPU seconds of `mintlog run` and every process under it (the pipeline stages, the embedded
  nats-server; `/proc/<pid>/stat`) over the observation window ÷ the checks that finished in it;
- **detection latency**: `--samples` monitors are flipped to failing at random moments spread over one interval
  (so at random phases of their schedules); latency = the incident's `created_at` minus the flip, p50/p99/max,
  against interval * `down_after` + 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from benchmarks.cpu_accounting import cpu_seconds_by_pid
from benchmarks.load import free_port, percentile, spawn

DOWN_AFTER = 2
TIMEOUT_SECONDS = 5


class Target:
    """A local HTTP target: `GET /m/<n>` is 200, or 503 once `n` is in `failing`. Runs its own loop in a thread."""

    def __init__(self) -> None:
        self.failing: set[int] = set()
        self.requests = 0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="bench-uptime-target", daemon=True)
        self._runner: web.AppRunner | None = None

    def __enter__(self) -> Target:
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the target did not start")
        return self

    def __exit__(self, *_: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _answer(self, request: web.Request) -> web.Response:
        self.requests += 1
        if int(request.match_info["number"]) in self.failing:
            return web.Response(status=503, text="down")
        return web.Response(text="ok")

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/m/{number}", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port, backlog=1024).start())
        self._started.set()
        self._loop.run_forever()


def _call(client: httpx.Client, method: str, path: str, body: Any = None, **params: str) -> Any:
    response = client.request(method, path, json=body, params=params or None)
    if response.status_code >= 300:
        raise SystemExit(f"{method} {path} → {response.status_code}: {response.text}")
    return response.json() if response.content else None


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _spread(values: list[float]) -> dict[str, float | int | None]:
    return {
        "n": len(values),
        "p50_s": _seconds(percentile(values, 0.50)) if values else None,
        "p99_s": _seconds(percentile(values, 0.99)) if values else None,
        "max_s": _seconds(max(values)) if values else None,
    }


def create_monitors(client: httpx.Client, target: Target, count: int, interval: int) -> list[str]:
    """`count` monitors of `/m/0` … `/m/<count-1>`, created evenly over one interval; their ids in order."""
    ids: list[str] = []
    started = time.monotonic()
    for number in range(count):
        time.sleep(max(0.0, started + number * interval / count - time.monotonic()))
        monitor = _call(
            client,
            "POST",
            "/v1/uptime/monitors",
            {
                "name": f"bench-{number}",
                "check": {"type": "http", "url": f"{target.url}/m/{number}"},
                "interval_seconds": interval,
                "timeout_seconds": TIMEOUT_SECONDS,
                "down_after": DOWN_AFTER,
            },
        )
        ids.append(str(monitor["id"]))
    return ids


def results_of(client: httpx.Client, monitor_id: str, start: str, end: str) -> list[dict[str, Any]]:
    """Every result of one monitor in [start, end), oldest first."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"from": start, "to": end, "limit": "200", **({"cursor": cursor} if cursor else {})}
        page = _call(client, "GET", f"/v1/uptime/monitors/{monitor_id}/results", **params)
        found += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return list(reversed(found))


def detect(client: httpx.Client, target: Target, ids: list[str], samples: int, interval: int) -> dict[str, Any]:
    """Flip `samples` monitors to failing at random moments over one interval; the latency of each to its
    incident's creation."""
    chosen = random.sample(range(len(ids)), samples)
    moments = sorted(random.uniform(0, interval) for _ in chosen)
    flipped_at: dict[str, float] = {}
    started = time.monotonic()
    for number, moment in zip(chosen, moments, strict=True):
        time.sleep(max(0.0, started + moment - time.monotonic()))
        target.failing.add(number)
        flipped_at[ids[number]] = time.time()
    target_s = interval * DOWN_AFTER + 2
    deadline = time.monotonic() + target_s + 60
    opened: dict[str, float] = {}
    while time.monotonic() < deadline and len(opened) < samples:
        page = _call(client, "GET", "/v1/incidents", status="open", limit="200")
        for incident in page["items"]:
            rule_id = incident.get("rule_id")
            if rule_id in flipped_at and rule_id not in opened:
                opened[rule_id] = datetime.fromisoformat(incident["created_at"]).timestamp()
        time.sleep(0.5)
    latencies = sorted(opened[monitor_id] - flipped_at[monitor_id] for monitor_id in opened)
    return {
        **_spread(latencies),
        "samples": samples,
        "missed": samples - len(opened),
        "down_after": DOWN_AFTER,
        "target_s": target_s,
    }


def schedule_figures(runs: list[list[dict[str, Any]]], window: tuple[float, float], interval: int) -> dict[str, Any]:
    """Start delays of the checks due in `window` (epoch seconds), skipped checks, and checks finished in it."""
    delays: list[float] = []
    probe_ms: list[float] = []
    skipped = finished = 0
    for results in runs:
        due = [datetime.fromisoformat(r["due_at"]).timestamp() for r in results if r.get("due_at")]
        for result in results:
            if not result.get("due_at") or not result.get("started_at"):
                continue
            due_at = datetime.fromisoformat(result["due_at"]).timestamp()
            if window[0] <= datetime.fromisoformat(result["at"]).timestamp() < window[1]:
                finished += 1
            if window[0] <= due_at < window[1]:
                delays.append(datetime.fromisoformat(result["started_at"]).timestamp() - due_at)
                if result.get("latency_ms") is not None:
                    probe_ms.append(float(result["latency_ms"]))
        in_window = [at for at in due if window[0] <= at < window[1]]
        for earlier, later in itertools.pairwise(in_window):
            skipped += max(0, round((later - earlier) / interval) - 1)
    return {
        "start_delay": _spread(delays),
        "skipped_checks": skipped,
        "checks_finished_in_window": finished,
        "probe_latency_p50_ms": percentile(probe_ms, 0.5) if probe_ms else None,
        "probe_latency_p99_ms": percentile(probe_ms, 0.99) if probe_ms else None,
    }


def measure(monitors: int, interval: int, intervals: int, samples: int) -> dict[str, Any]:
    """One run on a fresh `mintlog run`; the figures as a dict (see the module docstring)."""
    env = {
        "MINTLOG_EGRESS_ALLOW": "127.0.0.0/8",
        "MINTLOG_UPTIME__MAX_MONITORS_PER_TENANT": str(monitors),
        "MINTLOG_UPTIME__MIN_INTERVAL_SECONDS": str(min(30, interval)),
    }
    with tempfile.TemporaryDirectory(prefix="mintlog-bench-uptime-") as temp, Target() as target:
        process, _ingest, api, key = spawn(Path(temp) / "data", env)
        try:
            with httpx.Client(base_url=api, headers={"X-API-Key": key}, timeout=60) as client:
                created_from = time.time()
                print(f"creating {monitors} monitors over {interval} s", file=sys.stderr)
                ids = create_monitors(client, target, monitors, interval)
                time.sleep(interval)  # every monitor has been checked at least once: steady state
                cpu_before, window_start = cpu_seconds_by_pid(process.pid), time.time()
                print(f"observing {intervals} intervals", file=sys.stderr)
                time.sleep(intervals * interval)
                cpu_after, window_end = cpu_seconds_by_pid(process.pid), time.time()
                print(f"detection: {samples} samples", file=sys.stderr)
                detection = detect(client, target, ids, samples, interval)
                start = datetime.fromtimestamp(created_from).astimezone().isoformat()
                end = datetime.fromtimestamp(time.time() + 60).astimezone().isoformat()
                runs = [results_of(client, monitor_id, start, end) for monitor_id in ids]
        finally:
            process.terminate()
            process.wait(timeout=60)
    figures = schedule_figures(runs, (window_start, window_end), interval)
    cpu_by_kind: dict[str, float] = {}
    for pid, (kind, cpu) in cpu_after.items():
        if pid in cpu_before:
            cpu_by_kind[kind] = cpu_by_kind.get(kind, 0.0) + cpu - cpu_before[pid][1]
    checks = max(1, figures["checks_finished_in_window"])
    seconds = window_end - window_start
    total = sum(cpu_by_kind.values())
    return {
        "monitors": monitors,
        "interval_s": interval,
        "window_s": round(seconds, 1),
        **figures,
        "checks_per_s": round(figures["checks_finished_in_window"] / seconds, 1),
        "cpu_ms_per_check": round(total / checks * 1000, 2),
        "cpu_ms_per_check_by_process": {
            kind: round(cpu / checks * 1000, 2) for kind, cpu in sorted(cpu_by_kind.items())
        },
        "cores": round(total / seconds, 3),
        "detection": detection,
        "target_requests": target.requests,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200 monitors every 10 s, 20 detection samples")
    parser.add_argument("--monitors", type=int, help="monitors (default 1000; quick 200)")
    parser.add_argument("--interval", type=int, help="interval_seconds of every monitor (default 30; quick 10)")
    parser.add_argument("--intervals", type=int, default=3, help="intervals observed after one of warm-up")
    parser.add_argument("--samples", type=int, help="monitors flipped to failing (default 50; quick 20)")
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args()
    monitors = args.monitors or (200 if args.quick else 1000)
    interval = args.interval or (10 if args.quick else 30)
    samples = min(monitors, args.samples or (20 if args.quick else 50))
    result = measure(monitors, interval, args.intervals, samples)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
