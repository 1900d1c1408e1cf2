"""The seed README's flow on embedded defaults: bootstrap, ingest, find the events within two seconds."""

from __future__ import annotations

import time
from datetime import datetime

import httpx

from tests.e2e.harness import MintlogProcess

SEED_BATCH = {
    "events": [
        {"service": "web", "level": "error", "message": "connection timeout"},
        {"service": "api", "level": "info", "message": "user logged in", "fields": {"user_id": "u123"}},
    ]
}


def test_seed_batch_is_searchable_within_two_seconds(running: tuple[MintlogProcess, str]) -> None:
    mintlog, key = running
    response = mintlog.ingest(key, SEED_BATCH, **{"Content-Type": "application/json"})
    accepted_at = time.monotonic()
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["accepted"] == 2
    assert body["rejected"] == 0
    assert body["errors"] == []

    found: list[dict[str, object]] = []
    while time.monotonic() - accepted_at < 2.0:
        search = httpx.post(
            f"{mintlog.api_url}/v1/logs/search",
            headers={"X-API-Key": key},
            content=b'{"query": "timeout", "level": "error", "size": 10}',  # as the seed's curl -d sends it
        )
        assert search.status_code == 200, search.text
        found = search.json()["events"]
        if found:
            break
        time.sleep(0.05)
    assert len(found) == 1, "the seed's error event was not searchable within 2 s"
    event = found[0]
    assert event["service"] == "web"
    assert event["level"] == "error"
    assert event["message"] == "connection timeout"
    assert event["host"] == "unknown"
    assert event["tenant_id"] == "demo"
    assert datetime.fromisoformat(str(event["timestamp"])) == datetime.fromisoformat(str(event["received_at"]))

    everything = mintlog.wait_for_total(key, {"service": ["web", "api"]}, 2)
    assert everything["total"] == 2
    by_service = {event["service"]: event for event in everything["events"]}
    assert by_service["api"]["fields"] == {"user_id": "u123"}
    assert by_service["api"]["level"] == "info"


def test_search_filters_and_orders_newest_first(running: tuple[MintlogProcess, str]) -> None:
    mintlog, key = running
    events = [
        {
            "service": "checkout",
            "level": level,
            "host": f"h{index % 2}",
            "message": f"order {index} processed",
            "timestamp": f"2026-11-20T10:00:{index:02d}Z",
        }
        for index, level in enumerate(["info", "warning", "ERR", "info", "debug"])
    ]
    assert mintlog.ingest(key, {"events": events}).status_code == 202
    answer = mintlog.wait_for_total(key, {"service": "checkout"}, 5)
    assert [event["message"] for event in answer["events"]] == [f"order {i} processed" for i in (4, 3, 2, 1, 0)]
    assert [event["level"] for event in answer["events"]] == ["debug", "info", "error", "warn", "info"]

    only_h1 = mintlog.search(key, {"service": "checkout", "host": "h1"}).json()
    assert {event["message"] for event in only_h1["events"]} == {"order 1 processed", "order 3 processed"}

    window = mintlog.search(
        key,
        {"service": "checkout", "from": "2026-11-20T10:00:01Z", "to": "2026-11-20T10:00:03Z", "sort": "asc"},
    ).json()
    assert [event["message"] for event in window["events"]] == ["order 1 processed", "order 2 processed"]

    page = mintlog.search(key, {"service": "checkout", "size": 2}).json()
    assert len(page["events"]) == 2
    assert page["total"] == 5
    assert page["total_relation"] == "eq"


def test_another_tenant_sees_nothing(running: tuple[MintlogProcess, str]) -> None:
    mintlog, key = running
    other_key = mintlog.bootstrap("other-team")
    assert mintlog.ingest(key, {"events": [{"message": "secret of demo", "service": "vault"}]}).status_code == 202
    mintlog.wait_for_total(key, {"service": "vault"}, 1)
    answer = mintlog.search(other_key, {"service": "vault"}).json()
    assert answer["total"] == 0
    assert answer["events"] == []


def accepted_events(mintlog: MintlogProcess) -> float:
    metrics = httpx.get(f"{mintlog.ingest_url}/metrics").text
    (line,) = [line for line in metrics.splitlines() if line.startswith("mintlog_ingest_events_accepted_total")]
    return float(line.split()[-1])


def test_health_readiness_metrics_and_request_ids(running: tuple[MintlogProcess, str]) -> None:
    # Self-contained: pytest-xdist may run this test on a worker where no other test of the module ran.
    mintlog, key = running
    accepted_before = accepted_events(mintlog)
    metered = {"events": [event | {"service": "metered"} for event in SEED_BATCH["events"]]}
    assert mintlog.ingest(key, metered).status_code == 202
    mintlog.wait_for_total(key, {"service": "metered"}, 2)
    expected_checks = {
        mintlog.ingest_url: {"bus": "ok", "store": "ok", "database": "ok"},
        mintlog.api_url: {"bus": "ok", "store": "ok", "database": "ok", "blobs": "ok"},
    }
    for url, checks in expected_checks.items():
        health = httpx.get(f"{url}/healthz")
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        assert health.headers["x-request-id"]
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == checks
    echoed = httpx.get(f"{mintlog.api_url}/healthz", headers={"X-Request-ID": "trace-me-123"})
    assert echoed.headers["x-request-id"] == "trace-me-123"
    metrics = httpx.get(f"{mintlog.ingest_url}/metrics").text
    for name in (
        "mintlog_ingest_events_accepted_total",
        "mintlog_ingest_events_rejected_total",
        "mintlog_pipeline_lag_seconds",
        "mintlog_indexer_lag_seconds",
        "mintlog_store_write_seconds_bucket",
    ):
        assert name in metrics
    assert accepted_events(mintlog) - accepted_before == 2


def test_refused_requests_and_rejected_events_are_counted(running: tuple[MintlogProcess, str]) -> None:
    mintlog, key = running

    def counter(name: str) -> float:
        text = httpx.get(f"{mintlog.ingest_url}/metrics").text
        return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))

    refused = 'mintlog_ingest_requests_rejected_total{reason="malformed_json"}'
    rejected = 'mintlog_ingest_events_rejected_total{reason="not_an_object"}'
    refused_before, rejected_before = counter(refused), counter(rejected)
    bad = httpx.post(f"{mintlog.ingest_url}/v1/ingest/logs", content=b"{", headers={"X-API-Key": key})
    assert bad.status_code == 400
    partial = mintlog.ingest(key, {"events": [{"message": "ok"}, 7, 8]})
    assert partial.json()["rejected"] == 2
    assert counter(refused) == refused_before + 1
    assert counter(rejected) == rejected_before + 2
