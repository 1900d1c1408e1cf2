"""The benchmark suite of issue 7: one command, freshly started processes, every figure with min/median/max.

    make bench            # .venv/bin/python -m benchmarks.suite             (full: ~4 h 20 on 2 cores)
    make bench-quick      # .venv/bin/python -m benchmarks.suite --quick     (development: a few minutes)
    .venv/bin/python -m benchmarks.suite --quick --only ingest,soak --repeats 1 --no-docs
    .venv/bin/python -m benchmarks.suite --render-only benchmarks/results/2026-11-27.json

Groups (`--only` takes their short names):

- `ingest` — all-in-one: per repeat a fresh `python -m mintlog run` (all roles, embedded defaults, temp data
  dir) loaded by `benchmarks/load.py`'s realistic events unpaced for D s (full 60, quick 10): accepted and
  sustained end-to-end events/s (searchable, including the drain, and the mean searchable rate during load),
  zero loss, ingest request and ingest-to-searchable p50/p99, the pipeline's backlog and the requests its gate
  refused (issue 19 part 2), peak RSS per process; then a fresh process paced at 80 % of that repeat's
  sustained rate (issue 19 part 1: ingest-to-searchable p99 ≤ 2 s there). Beside it, the same bodies
  through `benchmarks.ceiling.measure_decode` (msgspec, one thread): Mintlog ÷ ceiling.
- `distributed` — the roles as separate processes (ingest with 2 Granian workers, api, pipeline x2, alert,
  notify) on NATS, PostgreSQL, Redis and OpenSearch (`benchmarks/topology.py`), the same load; beside it
  `benchmarks.opensearch_bulk.measure_bulk` on the same OpenSearch with the same bodies: Mintlog ÷ `_bulk`.
- `search` — `benchmarks/bench_stores.py --json` on Tantivy and OpenSearch at 1M and 10M events (quick: 200k),
  with `--reuse` and a fixed data dir / index prefix per size, so a second run does not reload.
- `alert` — `benchmarks/bench_alert.py --json`, idle and under load (quick: 5 rules).
- `normalize` — `benchmarks/normalize_rate.py --json`: `normalize_batch` events/s of one core with detection
  off, on, and on with one extraction rule, on structured events and on the plain text corpus, in one run.
- `import` — `benchmarks/bench_import.py`: `mintlog import` of a generated NDJSON file (full 1 GB, quick 50 MB)
  beside the load generator's accepted events/s on fresh processes (issue 16 target: import ≥ 0.8 of load).
- `protocols` — `benchmarks/ingest_protocols.py`: per repeat, a fresh all-in-one per ingest protocol (native
  body, Elasticsearch `_bulk`, ... one entry each in `PROTOCOL_LOADS`) loaded unpaced for D s with the same
  events in its own wire format, the native body before and after each other protocol: sustained end-to-end
  events/s of each and its ratio to the mean of the two native loads around it (target ≥ 0.8).
- `oncall` — `benchmarks/bench_oncall.py --json` (issue 18) on a fresh PostgreSQL database: who is on call at
  random instants on a schedule of 10 layers and 1,000 overrides (`SqlOnCallStore.people_on_call`, p50/p99),
  and 10,000 incidents over 100 policies (quick: 1,000 over 10) whose step 1 comes due at one instant, run by
  a notify instance's `EscalationWorker`: p50/p99/max delay of each step against its due time, steps/s.
- `uptime` — `benchmarks/bench_uptime.py --json`: 1,000 HTTP monitors every 30 s (quick: 200 every 10 s) on
  a fresh all-in-one against a local target: check start delay against schedule, CPU per check, and detection
  latency (target down → incident opened) against interval x down_after + 2 s (issue 17).
- `soak` — `benchmarks/soak.py` on a fresh all-in-one at 50 % of this run's measured maximum sustained rate
  (`--soak-rate` overrides) for 3 h (issue 19 part 4; quick: 2 min); run once, not repeated.

Writes `benchmarks/results/<YYYY-MM-DD>[-quick][-<groups>].json` (schema `SCHEMA_VERSION`, machine,
versions, command, every raw run under `runs`, the figures) after every group, and regenerates the section of
`docs/benchmarks.md` between `<!-- bench-suite:begin -->` and `<!-- bench-suite:end -->` (`--no-docs` skips
it). A group that fails is recorded as an error and the others still run. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.metadata
import json
import os
import platform
import secrets
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.cpu_accounting import cpu_used, opensearch_pid, process_cpu_seconds
from benchmarks.load import load, make_bodies
from benchmarks.topology import AllInOne, Distributed, log, services_env

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "benchmarks.md"
RESULTS_DIR = REPO / "benchmarks" / "results"
GROUPS = [
    "ingest_all_in_one",
    "ingest_distributed",
    "search_storage",
    "alert",
    "normalize",
    "soak",
    "import_file",
    "ingest_protocols",
    "oncall",
    "uptime",
]
SHORT_NAMES = {
    "ingest": "ingest_all_in_one",
    "distributed": "ingest_distributed",
    "search": "search_storage",
    "alert": "alert",
    "normalize": "normalize",
    "soak": "soak",
    "import": "import_file",
    "protocols": "ingest_protocols",
    "oncall": "oncall",
    "uptime": "uptime",
}
BATCH = 500
DISTINCT_BODIES = 40
CONCURRENCY = 8
# Unpaced, ingest may accept far more than it indexes; the backlog must drain before loss can be judged.
DRAIN_TIMEOUT = 600.0
# The paced load's share of the repeat's sustained rate (issue 19 part 1: searchable p99 ≤ 2 s at 80 %).
PACED_FRACTION = 0.8


@dataclass(frozen=True)
class Plan:
    """What one run of the suite does (full or quick)."""

    mode: str
    repeats: int
    load_seconds: float
    ceiling_seconds: float
    store_sizes: tuple[int, ...]
    store_query_runs: int
    alert_rules: int | None
    soak_seconds: float
    soak_rate: float | None
    stores_dir: Path
    opensearch_url: str

    @classmethod
    def of(cls, args: argparse.Namespace) -> Plan:
        quick = bool(args.quick)
        return cls(
            mode="quick" if quick else "full",
            repeats=args.repeats or (1 if quick else 3),
            load_seconds=args.load_seconds or (10.0 if quick else 60.0),
            ceiling_seconds=3.0 if quick else 10.0,
            store_sizes=(200_000,) if quick else (1_000_000, 10_000_000),
            store_query_runs=50 if quick else 200,
            alert_rules=5 if quick else None,
            soak_seconds=args.soak_seconds or (120.0 if quick else 10_800.0),
            soak_rate=args.soak_rate,
            stores_dir=Path(args.stores_dir),
            opensearch_url=args.opensearch_url,
        )


# ---------------------------------------------------------------- machine, versions, command


def machine_info() -> dict[str, Any]:
    cpu_model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_kib = int(line.split()[1])
    except OSError:
        pass
    return {
        "cpu_model": cpu_model,
        "cores": os.cpu_count(),
        "ram_gib": round(ram_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def git_info() -> dict[str, Any]:
    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30, check=False)
        return result.stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}


def versions(opensearch_url: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for package in ("mintlog", "tantivy", "msgspec", "nats-py", "granian", "opensearch-py"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "?"
    try:
        from mintlog.adapters.bus.embedded_nats import find_nats_server_binary

        output = subprocess.run(
            [str(find_nats_server_binary()), "--version"], capture_output=True, text=True, timeout=10, check=False
        )
        found["nats-server"] = output.stdout.strip().split()[-1].lstrip("v") if output.stdout.strip() else "?"
    except Exception:
        found["nats-server"] = "?"
    try:
        with urllib.request.urlopen(opensearch_url, timeout=3) as response:
            found["OpenSearch"] = str(json.loads(response.read())["version"]["number"])
    except Exception:
        found["OpenSearch"] = "not reachable"
    return found


# ---------------------------------------------------------------- groups


def measure_ceiling(bodies: list[bytes], seconds: float) -> dict[str, Any]:
    try:
        ceiling = importlib.import_module("benchmarks.ceiling")
        return dict(ceiling.measure_decode(bodies, BATCH, seconds))
    except Exception as exc:
        log(f"  ceiling failed: {exc!r}")
        return {"error": repr(exc)}


def _log_load(name: str, result: dict[str, Any]) -> None:
    log(
        f"  {name}: accepted {result['accepted_events_per_s']:,}/s, sustained {result['searchable_events_per_s']:,}/s, "
        f"zero loss {result['zero_loss']}, request p99 {result['ingest_request_p99_ms']} ms, "
        f"ingest-to-searchable p99 {result['ingest_to_searchable_p99_ms']} ms"
    )
    if not result["zero_loss"]:
        log(f"  LOSS: {result['events_accepted']:,} accepted, {result['events_searchable']:,} searchable")


def load_on(target: Any, seconds: float, run_id: str, bodies: list[bytes], rate: float = 0.0) -> dict[str, Any]:
    """`benchmarks.load.load` against a started `AllInOne` or `Distributed` (its URLs, key and, when it has
    one, the pid whose RSS the report samples)."""
    return asyncio.run(
        load(
            ingest=target.ingest,
            api=target.api,
            key=target.key,
            pid=getattr(target, "pid", None),
            duration=seconds,
            rate=rate,
            run_id=run_id,
            bodies=bodies,
            drain_timeout=DRAIN_TIMEOUT,
        )
    )


def ingest_all_in_one(plan: Plan, runs: list[Any], _results: dict[str, Any]) -> None:
    for repeat in range(1, plan.repeats + 1):
        run: dict[str, Any] = {"repeat": repeat}
        runs.append(run)
        run_id = secrets.token_hex(6)
        bodies = make_bodies(run_id, BATCH, DISTINCT_BODIES)
        with AllInOne() as target:
            log(f"ingest all-in-one, repeat {repeat}: unpaced for {plan.load_seconds:.0f} s (pid {target.pid})")
            run["max"] = load_on(target, plan.load_seconds, run_id, bodies)
            run["rss"] = target.rss()
            run["index_bytes"] = target.index_bytes()
        _log_load("unpaced", run["max"])
        sustained = float(run["max"]["searchable_events_per_s"])
        run["ceiling"] = measure_ceiling(bodies, plan.ceiling_seconds)
        log(f"  ceiling: {run['ceiling']}")
        with AllInOne() as target:
            log(f"ingest all-in-one, repeat {repeat}: paced at {sustained * PACED_FRACTION:,.0f} events/s")
            paced_id = secrets.token_hex(6)
            run["paced_fraction"] = PACED_FRACTION
            run["paced"] = load_on(
                target,
                plan.load_seconds,
                paced_id,
                make_bodies(paced_id, BATCH, DISTINCT_BODIES),
                rate=max(1000.0, sustained * PACED_FRACTION),
            )
            run["rss_paced"] = target.rss()
        _log_load("paced", run["paced"])


def ingest_distributed(plan: Plan, runs: list[Any], _results: dict[str, Any]) -> None:
    services = services_env()
    bulk_module = importlib.import_module("benchmarks.opensearch_bulk")
    for repeat in range(1, plan.repeats + 1):
        run: dict[str, Any] = {"repeat": repeat}
        runs.append(run)
        run_id = secrets.token_hex(6)
        bodies = make_bodies(run_id, BATCH, DISTINCT_BODIES)
        with Distributed(services) as cluster:
            log(f"ingest distributed, repeat {repeat}: unpaced for {plan.load_seconds:.0f} s ({cluster.prefix})")
            cpu_before, ops_before = cluster.cpu_snapshot(), opensearch_index_total(cluster.opensearch_url)
            run["max"] = load_on(cluster, plan.load_seconds, run_id, bodies)
            run["cpu_seconds"] = cpu_used(cpu_before, cluster.cpu_snapshot())
            run["opensearch_index_ops"] = opensearch_index_total(cluster.opensearch_url) - ops_before
            run["rss"] = cluster.rss()
            log(f"  CPU seconds: {run['cpu_seconds']}, OpenSearch index operations {run['opensearch_index_ops']:,}")
            _log_load("unpaced", run["max"])
            sustained = float(run["max"]["searchable_events_per_s"])
            paced_id = secrets.token_hex(6)
            log(f"ingest distributed, repeat {repeat}: paced at {sustained * PACED_FRACTION:,.0f} events/s")
            run["paced_fraction"] = PACED_FRACTION
            run["paced"] = load_on(
                cluster,
                plan.load_seconds,
                paced_id,
                make_bodies(paced_id, BATCH, DISTINCT_BODIES),
                rate=max(1000.0, sustained * PACED_FRACTION),
            )
            _log_load("paced", run["paced"])
        log(f"OpenSearch _bulk, repeat {repeat}: same bodies for {plan.load_seconds:.0f} s")
        node = opensearch_pid(services["TEST_OPENSEARCH_URL"])
        try:
            node_cpu_before = process_cpu_seconds(node) if node is not None else None
            run["bulk"] = dict(
                asyncio.run(
                    bulk_module.measure_bulk(
                        services["TEST_OPENSEARCH_URL"], bodies, seconds=plan.load_seconds, concurrency=CONCURRENCY
                    )
                )
            )
            node_cpu_after = process_cpu_seconds(node) if node is not None else None
            if node_cpu_before is not None and node_cpu_after is not None:
                run["bulk"]["opensearch_cpu_seconds"] = round(node_cpu_after - node_cpu_before, 3)
        except Exception as exc:
            log(f"  _bulk failed: {exc!r}")
            run["bulk"] = {"error": repr(exc)}
        log(f"  _bulk: {run['bulk']}")


def opensearch_index_total(url: str) -> int:
    """Index operations the OpenSearch node has done so far (all clients: tells whether others wrote meanwhile)."""
    return _opensearch_node_total(url, "indexing", "index_total")


def opensearch_refresh_total(url: str) -> int:
    """Refreshes the OpenSearch node has done so far, per shard (explicit and periodic, all clients)."""
    return _opensearch_node_total(url, "refresh", "total")


def _opensearch_node_total(url: str, metric: str, counter: str) -> int:
    with urllib.request.urlopen(f"{url.rstrip('/')}/_nodes/_local/stats/indices/{metric}", timeout=30) as response:
        nodes = json.loads(response.read())["nodes"]
    return sum(int(node["indices"][metric][counter]) for node in nodes.values())


def search_storage(plan: Plan, runs: list[Any], _results: dict[str, Any]) -> None:
    services = services_env()
    opensearch_url = services.get("TEST_OPENSEARCH_URL", plan.opensearch_url)
    for size in plan.store_sizes:
        for store in ("tantivy", "opensearch"):
            for repeat in range(1, plan.repeats + 1):
                run: dict[str, Any] = {"store": store, "events": size, "repeat": repeat}
                with tempfile.TemporaryDirectory(prefix="mintlog-suite-stores-") as temp:
                    out = Path(temp) / "result.json"
                    command = [
                        sys.executable,
                        "-m",
                        "benchmarks.bench_stores",
                        "--store",
                        store,
                        "--events",
                        str(size),
                        "--json",
                        str(out),
                        "--reuse",
                        "--runs",
                        str(plan.store_query_runs),
                        "--data-dir",
                        str(plan.stores_dir / f"{store}-{size}"),
                        "--index-prefix",
                        f"mintlogbench{size}",
                        "--opensearch-url",
                        opensearch_url,
                    ]
                    log(f"search {store} {size:,} events, repeat {repeat}: {shlex.join(command[1:])}")
                    started = time.monotonic()
                    finished = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
                    run["seconds"] = round(time.monotonic() - started, 1)
                    run["output_tail"] = finished.stdout[-1500:]
                    if finished.returncode != 0 or not out.exists():
                        run["error"] = f"exit {finished.returncode}: {finished.stderr[-1500:]}"
                        runs.append(run)
                        raise RuntimeError(f"bench_stores --store {store} --events {size} failed: {run['error']}")
                    run["result"] = json.loads(out.read_text())
                runs.append(run)
                log(f"  {store} {size:,}: {json.dumps(run['result'].get('queries'))[:300]}")


def alert(plan: Plan, runs: list[Any], _results: dict[str, Any]) -> None:
    for repeat in range(1, plan.repeats + 1):
        with tempfile.TemporaryDirectory(prefix="mintlog-suite-alert-") as temp:
            out = Path(temp) / "alert.json"
            command = [sys.executable, "-m", "benchmarks.bench_alert", "--json", str(out)]
            if plan.alert_rules is not None:
                command += ["--rules", str(plan.alert_rules)]
            log(f"alert latency, repeat {repeat}: {shlex.join(command[1:])}")
            finished = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
            if finished.returncode != 0 or not out.exists():
                raise RuntimeError(f"bench_alert failed (exit {finished.returncode}): {finished.stderr[-1500:]}")
            phases = json.loads(out.read_text())
        runs.append(phases)
        for phase in phases:
            log(f"  {phase.get('phase')}: p50 {phase.get('p50_s')} s, p99 {phase.get('p99_s')} s")


def ingest_protocols(plan: Plan, runs: list[Any], _results: dict[str, Any]) -> None:
    """Per repeat, the native body before and after every other protocol (`native`, `es_bulk`, `native`,
    `syslog`, ..., `native`): each protocol is compared to the mean of the two native loads around it
    (`native_around_events_per_s`), not to one made minutes earlier on a machine whose load may have changed
    since. `protocols["native"]` is the first native load; `native_loads` has them all."""
    protocols = importlib.import_module("benchmarks.ingest_protocols")
    others = [name for name in protocols.PROTOCOL_LOADS if name != "native"]
    for repeat in range(1, plan.repeats + 1):
        run: dict[str, Any] = {"repeat": repeat, "protocols": {}, "native_loads": []}
        runs.append(run)
        natives: list[dict[str, Any]] = run["native_loads"]
        for name in ["native", *(step for other in others for step in (other, "native"))]:
            result = _protocol_load(plan, protocols, name, repeat)
            if name == "native":
                natives.append(result)
                run["protocols"].setdefault("native", result)
            else:
                run["protocols"][name] = result
        for position, name in enumerate(others):
            around = [natives[position]["searchable_events_per_s"], natives[position + 1]["searchable_events_per_s"]]
            run["protocols"][name]["native_around_events_per_s"] = round(sum(around) / 2)


def _protocol_load(plan: Plan, protocols: Any, name: str, repeat: int) -> dict[str, Any]:
    run_id = secrets.token_hex(6)
    batches = protocols.event_batches(run_id, BATCH, DISTINCT_BODIES)
    with AllInOne(protocols.PROTOCOL_ENV.get(name, dict)()) as target:
        log(f"ingest protocol {name}, repeat {repeat}: unpaced for {plan.load_seconds:.0f} s")
        result: dict[str, Any] = protocols.PROTOCOL_LOADS[name](
            target, plan.load_seconds, run_id, batches, DRAIN_TIMEOUT
        )
    _log_load(name, result)
    return result


def normalize(plan: Plan, runs: list[Any], _results: dict[str, Any]) -> None:
    events = "5000" if plan.mode == "quick" else "20000"
    for repeat in range(1, plan.repeats + 1):
        with tempfile.TemporaryDirectory(prefix="mintlog-suite-normalize-") as temp:
            out = Path(temp) / "normalize.json"
            command = [sys.executable, "-m", "benchmarks.normalize_rate", "--events", events, "--json", str(out)]
            log(f"normalize rate, repeat {repeat}: {shlex.join(command[1:])}")
            finished = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
            if finished.returncode != 0 or not out.exists():
                raise RuntimeError(f"normalize_rate failed (exit {finished.returncode}): {finished.stderr[-1500:]}")
            rows = json.loads(out.read_text())
        runs.append(rows)
        for row in rows:
            log(f"  {row['shape']}: " + ", ".join(f"{k} {v:,.0f}/s" for k, v in row["events_per_s"].items()))


def soak(plan: Plan, runs: list[Any], results: dict[str, Any]) -> None:
    from benchmarks.soak import run_soak

    rate = plan.soak_rate
    if rate is None:
        ingest_runs = (results["groups"].get("ingest_all_in_one") or {}).get("runs") or []
        sustained = [
            float(run["max"]["searchable_events_per_s"])
            for run in ingest_runs
            if isinstance(run, dict) and "max" in run
        ]
        if not sustained:
            raise RuntimeError("no measured maximum in this run (the ingest group did not run): pass --soak-rate")
        rate = statistics.median(sustained) / 2
    log(f"soak: {rate:,.0f} events/s for {plan.soak_seconds:.0f} s")
    result = run_soak(rate, plan.soak_seconds)
    runs.append(result)
    log(f"  soak summary: {json.dumps(result['summary'])} zero loss {result['zero_loss']}")


def import_file(plan: Plan, runs: list[Any], _results: dict[str, Any]) -> None:
    from benchmarks.bench_import import measure

    size_mb = 50.0 if plan.mode == "quick" else 1024.0
    for _repeat in range(plan.repeats):
        run = measure(size_mb, plan.load_seconds)
        runs.append(run)
        log(f"  import {run['import']['accepted_events_per_s']:,}/s vs load {run['load']['accepted_events_per_s']:,}/s")


def run_json_bench(module: str, label: str, plan: Plan, repeat: int) -> dict[str, Any]:
    """Run `python -m benchmarks.<module> --json FILE` (with `--quick` in a quick run); its JSON result."""
    with tempfile.TemporaryDirectory(prefix=f"mintlog-suite-{module}-") as temp:
        out = Path(temp) / f"{module}.json"
        command = [sys.executable, "-m", f"benchmarks.{module}", "--json", str(out)]
        if plan.mode == "quick":
            command.append("--quick")
        log(f"{label}, repeat {repeat}: {shlex.join(command[1:])}")
        finished = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
        if finished.returncode != 0 or not out.exists():
            raise RuntimeError(f"{module} failed (exit {finished.returncode}): {finished.stderr[-1500:]}")
        return json.loads(out.read_text())


def oncall(plan: Plan, runs: list[Any], _results: dict[str, Any]) -> None:
    for repeat in range(1, plan.repeats + 1):
        result = run_json_bench("bench_oncall", "on-call", plan, repeat)
        runs.append(result)
        lookup, escalation = result.get("lookup") or {}, result.get("escalation") or {}
        log(f"  lookup: {json.dumps(lookup.get('people_on_call'))}")
        log(
            f"  escalation: {json.dumps(escalation.get('step_notified_delay'))}, {escalation.get('steps_per_second')}/s"
        )


def uptime(plan: Plan, runs: list[Any], _results: dict[str, Any]) -> None:
    for repeat in range(1, plan.repeats + 1):
        run = run_json_bench("bench_uptime", "uptime", plan, repeat)
        runs.append(run)
        log(
            f"  start delay p99 {run['start_delay']['p99_s']} s, {run['cpu_ms_per_check']} ms CPU per check, "
            f"detection p99 {run['detection']['p99_s']} s (target {run['detection']['target_s']} s)"
        )


GROUP_FUNCTIONS: dict[str, Callable[[Plan, list[Any], dict[str, Any]], None]] = {
    "ingest_all_in_one": ingest_all_in_one,
    "ingest_distributed": ingest_distributed,
    "search_storage": search_storage,
    "alert": alert,
    "normalize": normalize,
    "ingest_protocols": ingest_protocols,
    "soak": soak,
    "import_file": import_file,
    "oncall": oncall,
    "uptime": uptime,
}


def group_description(name: str, plan: Plan) -> str:
    seconds = f"{plan.load_seconds:.0f} s"
    return {
        "ingest_all_in_one": f"Fresh `mintlog run` per repeat; `benchmarks/load.py` bodies (batches of {BATCH}, "
        f"{CONCURRENCY} connections) unpaced for {seconds}, then a fresh process paced at "
        f"{PACED_FRACTION:.0%} of that repeat's sustained rate. Sustained = searchable events ÷ time until the last "
        "accepted event is searchable. Backlog: the pipeline's waiting batches (both streams) and the age of the "
        "oldest, sampled every second while sending; refused: requests answered other than 202 (each sent again "
        "after its Retry-After).",
        "ingest_distributed": "ingest (2 Granian workers), api, pipeline x2, alert, notify as separate processes on "
        f"NATS, PostgreSQL, Redis and OpenSearch; the same load for {seconds}, then paced at {PACED_FRACTION:.0%} "
        "of its sustained rate; OpenSearch `_bulk` of the same bodies on the same OpenSearch.",
        "search_storage": "`benchmarks/bench_stores.py` (store calls, no HTTP), "
        f"{plan.store_query_runs} runs per query after a warm-up; sizes "
        + ", ".join(f"{size:,}" for size in plan.store_sizes)
        + " events.",
        "alert": "`benchmarks/bench_alert.py`: one rule per sample, 202 of the crossing event → signed webhook.",
        "ingest_protocols": "Per repeat, a fresh `mintlog run` per ingest protocol loaded unpaced for "
        f"{seconds} with the same `benchmarks/load.py` events (batches of {BATCH}, {CONCURRENCY} connections) "
        "in its own wire format (`benchmarks/ingest_protocols.py`), the native body before and after each "
        "other protocol; sustained = searchable events ÷ time until the last accepted event is searchable, and "
        "its ratio to the mean of the two native loads around it.",
        "normalize": "`benchmarks/normalize_rate.py`: `normalize_batch` on one core, best of 5, batches of 500; "
        "detection off / on / on with one extraction rule, on the same events in the same run.",
        "soak": f"One fresh `mintlog run` for {plan.soak_seconds:.0f} s at 50 % of this run's median sustained rate "
        "(or `--soak-rate`), sampled every 10 s; growth = least-squares slope after the first 20 % of the run, "
        "per hour, as % of the mean RSS; drift = median of the last third of the 10-second window p99s ÷ the first "
        "third's."
        + (" A quick soak is too short for a growth per hour to mean anything." if plan.mode == "quick" else ""),
        "oncall": "`benchmarks/bench_oncall.py` on a fresh PostgreSQL database: `SqlOnCallStore.people_on_call` (what "
        "`GET …/on-call` and escalation steps call) at random instants on a schedule of 10 layers and 1,000 "
        "overrides; then "
        + ("1,000 incidents over 10 policies" if plan.mode == "quick" else "10,000 incidents over 100 policies")
        + " whose step 1 (a schedule and a webhook channel) comes due at one instant, run by one notify "
        "instance's `EscalationWorker`; delay = the step's last `notified` timeline entry (the instant its "
        "notifications were stored) minus its due time; every step done = when all step 1 tasks were seen completed "
        "(polled every 0.25 s).",
        "import_file": "`benchmarks/bench_import.py`: `mintlog import` of an NDJSON file of the load generator's "
        f"events ({'50 MB' if plan.mode == 'quick' else '1 GB'}) into a fresh `mintlog run`, beside "
        f"`benchmarks/load.py` unpaced for {seconds} on another fresh one; accepted events/s of each.",
        "uptime": "`benchmarks/bench_uptime.py`: a fresh `mintlog run` (all roles, embedded defaults) and a local "
        "HTTP target; "
        + ("200 monitors every 10 s" if plan.mode == "quick" else "1,000 HTTP monitors every 30 s")
        + " (`down_after` 2) created evenly over one interval; after one interval of warm-up, 3 intervals "
        "observed: start delay = each result's `started_at` - `due_at`, CPU = every mintlog process "
        "(`/proc/<pid>/stat`, nats-server and pipeline stages included) ÷ checks finished; then "
        + ("20" if plan.mode == "quick" else "50")
        + " monitors flipped to failing at random moments over one interval: flip → the incident's `created_at`.",
    }[name]


# ---------------------------------------------------------------- orchestration


def compute_figures(results: dict[str, Any]) -> None:
    for name, group in (results.get("groups") or {}).items():
        try:
            group["figures"] = report.group_figures(name, group.get("runs") or [])
        except Exception as exc:
            group["figures"] = []
            group["error"] = (group.get("error") or "") + f" (figures: {exc!r})"


def write_results(results: dict[str, Any], path: Path) -> None:
    compute_figures(results)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(results, indent=2, default=str) + "\n")
    temporary.replace(path)


def render_docs(results: dict[str, Any], results_path: Path, docs: Path = DOCS) -> None:
    compute_figures(results)
    try:
        shown = str(results_path.resolve().relative_to(REPO))
    except ValueError:
        shown = str(results_path)
    section = report.render_section(results, shown)
    docs.write_text(report.replace_section(docs.read_text(), section))
    log(f"rendered {docs.relative_to(REPO)} from {shown}")


def default_out(plan: Plan, groups: list[str], today: str) -> Path:
    name = today + ("-quick" if plan.mode == "quick" else "")
    if groups != GROUPS:
        name += "-" + "+".join(next(s for s, n in SHORT_NAMES.items() if n == g) for g in groups)
    return RESULTS_DIR / f"{name}.json"


def parse_groups(only: str | None) -> list[str]:
    if not only:
        return list(GROUPS)
    chosen: list[str] = []
    for item in only.split(","):
        name = SHORT_NAMES.get(item.strip(), item.strip())
        if name not in GROUPS:
            raise SystemExit(f"unknown group {item!r}: choose among {', '.join(SHORT_NAMES)}")
        chosen.append(name)
    return [name for name in GROUPS if name in chosen]


def group_command(name: str, plan: Plan, args: argparse.Namespace) -> str:
    """The command that reruns only this group with the same plan."""
    short = next(short for short, full in SHORT_NAMES.items() if full == name)
    command = [".venv/bin/python", "-m", "benchmarks.suite", "--only", short, "--repeats", str(plan.repeats)]
    if plan.mode == "quick":
        command.insert(3, "--quick")
    for option in ("soak_rate", "soak_seconds", "load_seconds"):
        if getattr(args, option) is not None:
            command += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
    return shlex.join(command)


def run_suite(args: argparse.Namespace) -> int:
    plan = Plan.of(args)
    groups = parse_groups(args.only)
    now = datetime.now(UTC)
    out = Path(args.out) if args.out else default_out(plan, groups, now.strftime("%Y-%m-%d"))
    command = os.environ.get("BENCH_MAKE_TARGET") or shlex.join(["python", "-m", "benchmarks.suite", *sys.argv[1:]])
    results: dict[str, Any] = {
        "schema_version": report.SCHEMA_VERSION,
        "mode": plan.mode,
        "repeats": plan.repeats,
        "command": command,
        "argv": sys.argv[1:],
        "started_at": now.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_info(),
        "git": git_info(),
        "versions": versions(plan.opensearch_url),
        "plan": {key: str(value) for key, value in plan.__dict__.items()},
        "groups": {},
    }
    log(f"suite: mode {plan.mode}, groups {', '.join(groups)}, repeats {plan.repeats}; results → {out}")
    for name in groups:
        group: dict[str, Any] = {
            "status": "running",
            "error": None,
            "command": group_command(name, plan, args),
            "description": group_description(name, plan),
            "runs": [],
        }
        results["groups"][name] = group
        started = time.monotonic()
        log(f"=== {name} ===")
        try:
            GROUP_FUNCTIONS[name](plan, group["runs"], results)
            group["status"] = "ok"
        except (Exception, SystemExit) as exc:
            group["status"] = "error"
            group["error"] = f"{type(exc).__name__}: {exc}"
            group["traceback"] = traceback.format_exc()[-4000:]
            log(f"{name} failed: {group['error']}")
        group["seconds"] = round(time.monotonic() - started, 1)
        results["finished_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        write_results(results, out)
    if not args.no_docs:
        render_docs(results, out)
    print_summary(results)
    log(f"results: {out}")
    return 0 if all(group["status"] == "ok" for group in results["groups"].values()) else 1


def print_summary(results: dict[str, Any]) -> None:
    for name, group in results["groups"].items():
        print(f"\n## {name}: {group['status']}" + (f" — {group['error']}" if group.get("error") else ""))
        for row in group.get("figures") or []:
            print(report.render_figure_row(row))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the short development run")
    parser.add_argument("--only", help="comma-separated groups: " + ",".join(SHORT_NAMES))
    parser.add_argument("--repeats", type=int, help="repeats per figure (default: 3 full, 1 quick)")
    parser.add_argument("--out", help="results JSON (default: benchmarks/results/<date>[-quick].json)")
    parser.add_argument("--no-docs", action="store_true", help="do not regenerate docs/benchmarks.md")
    parser.add_argument("--render-only", metavar="RESULTS_JSON", help="only re-render the docs from this file")
    parser.add_argument("--soak-rate", type=float, help="soak at this rate instead of 50 %% of the measured max")
    parser.add_argument("--soak-seconds", type=float, help="soak duration (default: 10800 full, 120 quick)")
    parser.add_argument("--load-seconds", type=float, help="ingest load duration (default: 60 full, 10 quick)")
    parser.add_argument("--stores-dir", default="/tmp/mintlog-bench-suite-stores", help="reused store data")
    parser.add_argument("--opensearch-url", default="http://127.0.0.1:59200")
    args = parser.parse_args()
    if args.render_only:
        path = Path(args.render_only)
        render_docs(json.loads(path.read_text()), path)
        return 0
    return run_suite(args)


if __name__ == "__main__":
    sys.exit(main())
