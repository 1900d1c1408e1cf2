"""One unpaced run of the suite's distributed topology with extra settings: sustained rate, peak RSS and CPU
per indexed event of every process, beside the OpenSearch node's (the unpaced phase of `suite --only
distributed` alone, to compare settings).

    PYTHONPATH=$PWD .venv/bin/python -m benchmarks.distributed_run --seconds 15
    PYTHONPATH=$PWD .venv/bin/python -m benchmarks.distributed_run --seconds 15 \\
        --env MINTLOG_INDEXER__MAX_INFLIGHT_BYTES=16777216 --env MINTLOG_PIPELINE__FETCH_BATCH=16

Prints one JSON object; the CPU window is the load and its drain (every accepted event searchable).
"""

from __future__ import annotations

import argparse
import json
import secrets
from typing import Any

from benchmarks.cpu_accounting import cpu_used
from benchmarks.load import make_bodies
from benchmarks.report import WRITE_PATH_PREFIXES
from benchmarks.suite import BATCH, DISTINCT_BODIES, load_on, opensearch_index_total, opensearch_refresh_total
from benchmarks.topology import Distributed, services_env


def per_event(seconds: float, events: int) -> float:
    return round(seconds / max(1, events) * 1e6, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0, help="unpaced load duration")
    parser.add_argument("--env", action="append", default=[], help="extra MINTLOG_X=Y for every role")
    args = parser.parse_args()
    extra_env = dict(item.split("=", 1) for item in args.env)
    run_id = secrets.token_hex(6)
    bodies = make_bodies(run_id, BATCH, DISTINCT_BODIES)
    with Distributed(services_env(), extra_env=extra_env) as cluster:
        before, ops_before = cluster.cpu_snapshot(), opensearch_index_total(cluster.opensearch_url)
        refreshes_before = opensearch_refresh_total(cluster.opensearch_url)
        result = load_on(cluster, args.seconds, run_id, bodies)
        cpu = cpu_used(before, cluster.cpu_snapshot())
        ops = opensearch_index_total(cluster.opensearch_url) - ops_before
        refreshes = opensearch_refresh_total(cluster.opensearch_url) - refreshes_before
        rss = {label: round(values["peak_kib"] / 1024) for label, values in cluster.rss().items()}
    events = int(result["events_searchable"])
    write_path = sum(seconds for label, seconds in cpu.items() if label.startswith(WRITE_PATH_PREFIXES))
    report: dict[str, Any] = {
        "env": extra_env,
        "accepted_events_per_s": result["accepted_events_per_s"],
        "sustained_events_per_s": result["searchable_events_per_s"],
        "zero_loss": result["zero_loss"],
        "events_indexed": events,
        "opensearch_index_ops": ops,
        "opensearch_refreshes": refreshes,
        "peak_rss_mib": rss,
        "cpu_seconds": cpu,
        "us_per_event_write_path": per_event(write_path, events),
        "us_per_event_pipeline": per_event(
            sum(seconds for label, seconds in cpu.items() if label.startswith("pipeline-")), events
        ),
        "us_per_event_opensearch": per_event(cpu.get("opensearch", 0.0), events),
    }
    print(json.dumps(report, indent=1))
    return 0 if result["zero_loss"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
