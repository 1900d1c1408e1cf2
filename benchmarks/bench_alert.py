"""Alert latency: from the 202 of the event that crosses a rule's threshold to the signed webhook's arrival.

    python -m benchmarks.bench_alert --rules 30                    # idle, then under 10,000 events/s
    python -m benchmarks.bench_alert --rules 30 --no-load          # idle only

Starts `mintlog run` on a temporary data dir (all roles, embedded defaults) and a webhook receiver on
127.0.0.1. Each sample is its own rule (`interval_seconds` 5, `threshold` 0 with `gt`: one matching event
fires it) whose query matches only that sample's marker, so samples are independent; the crossing events are
sent at random moments, so they land at random phases of the rules' evaluation intervals, as real errors do.
Under load, `benchmarks/load.py` offers `--load-rate` events/s of realistic traffic to the same tenant for the
whole phase. Prints p50/p99/max per phase and writes them as JSON with `--json`.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.load import percentile, spawn
from tests.e2e.receiver import WebhookReceiver

INTERVAL_SECONDS = 5


def _api(api: str, key: str, method: str, path: str, body: Any = None) -> Any:
    response = httpx.request(method, f"{api}{path}", json=body, headers={"X-API-Key": key}, timeout=30)
    if response.status_code >= 300:
        raise SystemExit(f"{method} {path} → {response.status_code}: {response.text}")
    return response.json() if response.content else None


def _rule_of(webhook_body: bytes) -> str | None:
    data = json.loads(webhook_body).get("data") or {}
    rule_id = data.get("rule_id") or (data.get("alert") or {}).get("rule_id")
    return str(rule_id) if rule_id else None


def run_phase(ingest: str, api: str, key: str, receiver: WebhookReceiver, channel_id: str, rules: int) -> list[float]:
    """Latencies (seconds) of `rules` independent samples; a sample without a webhook within 60 s is a miss."""
    marker = f"phase{int(time.time())}"
    rule_ids: dict[str, int] = {}
    for index in range(rules):
        rule = _api(
            api,
            key,
            "POST",
            "/v1/alerts/rules",
            {
                "name": f"latency-{marker}-{index}",
                "query": {"query": f"fields.sample:{marker}-{index}"},
                "threshold": 0,
                "comparator": "gt",
                "window_seconds": 60,
                "interval_seconds": INTERVAL_SECONDS,
                "channel_ids": [channel_id],
            },
        )
        rule_ids[str(rule["id"])] = index
    time.sleep(INTERVAL_SECONDS + 1)  # every rule has evaluated once on an empty window
    crossed_at: dict[int, float] = {}
    order = list(range(rules))
    random.shuffle(order)
    with httpx.Client(timeout=30) as client:
        for index in order:
            time.sleep(random.uniform(0.0, 0.5))
            event = {"service": "bench", "level": "error", "message": "boom", "fields": {"sample": f"{marker}-{index}"}}
            response = client.post(f"{ingest}/v1/ingest/logs", json={"events": [event]}, headers={"X-API-Key": key})
            if response.status_code != 202:
                raise SystemExit(f"ingest → {response.status_code}: {response.text}")
            crossed_at[index] = time.monotonic()
    deadline = time.monotonic() + 60
    arrived: dict[int, float] = {}
    while time.monotonic() < deadline and len(arrived) < rules:
        for webhook in list(receiver.received):
            index = rule_ids.get(_rule_of(webhook.body) or "")
            if index is not None and index not in arrived:
                arrived[index] = webhook.arrived
        time.sleep(0.05)
    for rule_id in rule_ids:
        _api(api, key, "DELETE", f"/v1/alerts/rules/{rule_id}")
    missing = rules - len(arrived)
    if missing:
        print(f"  {missing} of {rules} samples got no webhook within 60 s", file=sys.stderr)
    return sorted(arrived[index] - crossed_at[index] for index in arrived)


def summarize(name: str, latencies: list[float], rules: int) -> dict[str, Any]:
    summary = {
        "phase": name,
        "samples": len(latencies),
        "missed": rules - len(latencies),
        "p50_s": round(percentile(latencies, 0.50), 3) if latencies else None,
        "p99_s": round(percentile(latencies, 0.99), 3) if latencies else None,
        "max_s": round(max(latencies), 3) if latencies else None,
        "mean_s": round(statistics.fmean(latencies), 3) if latencies else None,
    }
    print(json.dumps(summary))
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rules", type=int, default=30, help="samples per phase (one rule each)")
    parser.add_argument("--no-load", action="store_true", help="skip the phase under background ingest")
    parser.add_argument("--load-rate", type=float, default=10_000.0, help="background events/s under load")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="mintlog-bench-alert-") as temp, WebhookReceiver() as receiver:
        process, ingest, api, key = spawn(Path(temp) / "data", {"MINTLOG_EGRESS_ALLOW": "127.0.0.0/8"})
        try:
            channel = _api(
                api,
                key,
                "POST",
                "/v1/notifications/channels",
                {"name": "bench", "channel_type": "webhook", "config": {"url": receiver.url, "secret": "bench"}},
            )
            results.append(
                summarize("idle", run_phase(ingest, api, key, receiver, channel["id"], args.rules), args.rules)
            )
            if not args.no_load:
                duration = args.rules * 0.5 + 3 * INTERVAL_SECONDS + 70
                load = subprocess.Popen(
                    [
                        sys.executable,
                        "benchmarks/load.py",
                        "--key",
                        key,
                        "--ingest",
                        ingest,
                        "--api",
                        api,
                        "--rate",
                        str(args.load_rate),
                        "--duration",
                        str(duration),
                    ],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                load_output: list[str] = []
                reader = threading.Thread(target=lambda: load_output.extend(load.stdout or []), daemon=True)
                reader.start()
                time.sleep(5)  # let the background rate settle
                latencies = run_phase(ingest, api, key, receiver, channel["id"], args.rules)
                summary = summarize(f"under {args.load_rate:.0f} events/s", latencies, args.rules)
                load.wait(timeout=duration + 180)
                reader.join(timeout=5)
                summary["load_report"] = "".join(load_output)[-2000:]
                results.append(summary)
        finally:
            process.terminate()
            process.wait(timeout=60)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
