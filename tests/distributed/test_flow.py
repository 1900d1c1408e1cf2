"""The production topology on this machine: every role its own OS process against an external NATS JetStream,
PostgreSQL, Redis and OpenSearch. The seed README's whole flow runs across the processes, and the duplicated
pipeline, alert and notify instances never do one unit of work twice.

Ingest and api run as one process each under Granian's process manager with two worker processes behind one
port (`MINTLOG_HTTP__WORKERS=2`, `mintlog/launch/workers.py`); each worker has its own runtime, so requests
answered by different workers (seen in `X-Mintlog-Worker`) are reads and writes across processes. Pipeline,
alert and notify run as two processes each.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.distributed.client import api, ingest, search, search_all, stream_messages, wait_for_total
from tests.distributed.cluster import Cluster, NatsServer, wait_until
from tests.distributed.conftest import OpenSearchTarget, required_service, role_settings
from tests.e2e.receiver import WebhookReceiver
from tests.e2e.test_incident_flow import verify_standard_webhook

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(300)]

SECRET = "whsec_" + "c2VjcmV0LW9mLXRoZS1kaXN0cmlidXRlZC1zdWl0ZQ=="
COUNTS = {"ingest": 1, "api": 1, "pipeline": 2, "alert": 2, "notify": 2}
WORKERS = {"ingest": 2, "api": 2}


class Deployment:
    def __init__(self, cluster: Cluster, nats: NatsServer, key: str, receiver: WebhookReceiver) -> None:
        self.cluster = cluster
        self.nats = nats
        self.key = key
        self.receiver = receiver


@pytest.fixture(scope="module")
def deployment(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    module_database_url: str,
    module_opensearch: OpenSearchTarget,
) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("distributed-flow")
    nats = NatsServer(root / "nats")
    nats.start()
    env = role_settings(
        nats_url=nats.url,
        database_url=module_database_url,
        opensearch=module_opensearch,
        redis_url=required_service(request, "redis_url"),
        blob_dir=root / "objects",
    )
    cluster = Cluster(root, env, COUNTS, WORKERS)
    try:
        with WebhookReceiver() as receiver:
            # Migrates the fresh database before the processes start on it. A tenant name of this run: the Redis
            # is shared with any other run of the suite, and its per-tenant entries must not collide.
            key = cluster.bootstrap(f"acme-{secrets.token_hex(4)}")
            assert key.startswith("mlk_")
            cluster.start()
            yield Deployment(cluster, nats, key, receiver)
    finally:
        cluster.cleanup()
        nats.stop()


def test_every_role_runs_as_its_own_process_and_is_ready(deployment: Deployment) -> None:
    cluster = deployment.cluster
    assert len({process.process.pid for process in cluster.processes if process.process}) == sum(COUNTS.values())
    for url in cluster.ingest_urls + cluster.api_urls:
        ready = httpx.get(f"{url}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        checks = ready.json()["checks"]
        assert {"bus", "store", "database"} <= set(checks), checks
        assert set(checks.values()) == {"ok"}, checks


def test_ingest_and_api_each_serve_from_two_worker_processes_behind_one_port(deployment: Deployment) -> None:
    managers = {process.process.pid for process in deployment.cluster.processes if process.process}
    for role in ("ingest", "api"):
        (process,) = deployment.cluster.of(role)
        pids = process.worker_pids()
        assert len(pids) == WORKERS[role], (role, pids)
        assert not pids & managers, "the workers are processes of their own, not the role's manager"
        for pid in pids:
            os.kill(pid, 0)  # alive


def _worker(response: httpx.Response) -> int:
    return int(response.headers["x-mintlog-worker"])


def test_seed_flow_ingest_search_tail_aggregate(deployment: Deployment) -> None:
    cluster, key = deployment.cluster, deployment.key
    (ingest_a,) = (ingest_b,) = cluster.ingest_urls
    (api_a,) = (api_b,) = cluster.api_urls

    seed = [
        {"service": "web", "level": "error", "message": "connection timeout"},
        {"service": "api", "level": "info", "message": "user logged in", "fields": {"user_id": "u123"}},
    ]
    accepted = ingest(ingest_a, key, seed)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["accepted"] == 2

    assert wait_for_total(api_b, key, {"query": "timeout", "level": "error"}, 1, timeout_seconds=15) == 1
    found = search(api_b, key, {"query": "timeout", "level": "error"})["events"]
    assert [(event["service"], event["message"]) for event in found] == [("web", "connection timeout")]
    assert search(api_a, key, {"service": "api"})["events"][0]["fields"] == {"user_id": "u123"}

    # Live tail on one api process while another ingest process accepts the events.
    with (
        httpx.Client(timeout=httpx.Timeout(10.0, read=20.0)) as client,
        client.stream(
            "POST", f"{api_a}/v1/logs/tail", json={"service": "tailed"}, headers={"X-API-Key": key}
        ) as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines).startswith(": keepalive")  # sent once the tail is subscribed
        sent = [{"service": "tailed", "message": f"live {n}"} for n in range(3)]
        assert ingest(ingest_b, key, sent).status_code == 202
        received: list[str] = []
        for line in lines:
            if line.startswith("data:"):
                received.append(json.loads(line.removeprefix("data:").strip())["message"])
                if len(received) == 3:
                    break
    assert received == ["live 0", "live 1", "live 2"]
    assert wait_for_total(api_b, key, {"service": "tailed"}, 3, timeout_seconds=15) == 3

    aggregated = api(api_b, key, "POST", "/v1/logs/aggregate", {"group_by": "service"})
    assert aggregated.status_code == 200, aggregated.text
    answer = aggregated.json()
    counts = {bucket["key"]: bucket["count"] for bucket in answer["buckets"]}
    assert counts == {"web": 1, "api": 1, "tailed": 3}, answer
    hourly = api(api_a, key, "POST", "/v1/logs/aggregate", {"group_by": "level", "interval": "1h"})
    assert hourly.status_code == 200, hourly.text
    assert sum(bucket["count"] for bucket in hourly.json()["buckets"]) == 5


def test_duplicate_pipelines_index_each_event_exactly_once(deployment: Deployment) -> None:
    cluster, key = deployment.cluster, deployment.key
    batches, per_batch = 40, 50
    ingest_workers: set[int] = set()
    for batch in range(batches):
        url = cluster.ingest_urls[0]
        events = [
            {"service": "dupes", "message": f"event {batch}-{i}", "fields": {"mark": f"m{batch * per_batch + i}"}}
            for i in range(per_batch)
        ]
        response = ingest(url, key, events)
        assert response.status_code == 202, response.text
        ingest_workers.add(_worker(response))
    assert len(ingest_workers) == WORKERS["ingest"], ingest_workers  # both ingest workers published
    total = batches * per_batch
    assert wait_for_total(cluster.api_urls[0], key, {"service": "dupes"}, total, timeout_seconds=60) == total
    time.sleep(2)  # anything indexed twice would show up by now
    for url in cluster.api_urls:
        events = search_all(url, key, {"service": "dupes"})
        assert len(events) == total
        assert len({event["id"] for event in events}) == total
        assert {event["fields"]["mark"] for event in events} == {f"m{n}" for n in range(total)}
    # Both pipeline instances took part (the durable consumers split the work between them).
    for process in cluster.of("pipeline"):
        assert process.running(), process.logs()


def _incidents(url: str, key: str, status: str | None = None) -> list[dict[str, Any]]:
    path = "/v1/incidents" + (f"?status={status}" if status else "")
    response = api(url, key, "GET", path)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def _types(receiver: WebhookReceiver) -> list[str]:
    return [json.loads(webhook.body)["type"] for webhook in receiver.received]


def test_alert_to_signed_webhook_to_incident_once_with_duplicate_alert_and_notify(deployment: Deployment) -> None:
    cluster, key, receiver = deployment.cluster, deployment.key, deployment.receiver
    (api_a,) = (api_b,) = cluster.api_urls
    channel = api(
        api_a,
        key,
        "POST",
        "/v1/notifications/channels",
        {"name": "oncall", "channel_type": "webhook", "config": {"url": receiver.url, "secret": SECRET}},
    )
    assert channel.status_code == 201, channel.text
    rule = api(
        api_b,
        key,
        "POST",
        "/v1/alerts/rules",
        {
            "name": "checkout-errors",
            "query": {"level": "error", "service": "checkout"},
            "threshold": 5,
            "window_seconds": 300,
            "interval_seconds": 5,
            "channel_ids": [channel.json()["id"]],
        },
    )
    assert rule.status_code == 201, rule.text
    alerts_before = stream_messages(deployment.nats.url, "ALERTS_EVENTS")

    for n in range(6):
        error = {"service": "checkout", "level": "error", "message": f"payment failed #{n}"}
        assert ingest(cluster.ingest_urls[0], key, [error]).status_code == 202

    webhooks = receiver.wait_for(1, timeout_seconds=40)
    assert len(webhooks) == 1, cluster.logs(["alert-1", "alert-2", "notify-1", "notify-2"])
    assert verify_standard_webhook(webhooks[0], SECRET)
    assert json.loads(webhooks[0].body)["type"] == "incident.triggered"

    # Two more intervals of the still-firing rule, evaluated by two alert instances, delivered by two notify
    # instances: still one alert event, one incident, one webhook.
    time.sleep(11)
    assert stream_messages(deployment.nats.url, "ALERTS_EVENTS") == alerts_before + 1
    assert len(receiver.received) == 1
    incidents = _incidents(api_b, key)
    assert len(incidents) == 1
    incident_id = incidents[0]["id"]
    assert incidents[0]["status"] == "triggered"

    acknowledged = api(api_a, key, "PATCH", f"/v1/incidents/{incident_id}", {"status": "acknowledged"})
    assert acknowledged.status_code == 200, acknowledged.text
    assert len(receiver.wait_for(2, timeout_seconds=20)) == 2
    resolved = api(api_b, key, "PATCH", f"/v1/incidents/{incident_id}", {"status": "resolved"})
    assert resolved.status_code == 200, resolved.text
    assert len(receiver.wait_for(3, timeout_seconds=20)) == 3
    time.sleep(3)  # a duplicate delivery by the other notify instance would arrive by now

    assert _types(receiver) == ["incident.triggered", "incident.acknowledged", "incident.resolved"]
    assert all(verify_standard_webhook(webhook, SECRET) for webhook in receiver.received)
    webhook_ids = [webhook.headers["webhook-id"] for webhook in receiver.received]
    assert len(set(webhook_ids)) == len(webhook_ids) == 3
    detail = api(api_a, key, "GET", f"/v1/incidents/{incident_id}").json()
    assert detail["status"] == "resolved"
    timeline = [entry["event_type"] for entry in detail["timeline"]]
    assert timeline[0] == "triggered"
    assert {"acknowledged", "resolved"} <= set(timeline), timeline
    assert len(_incidents(api_a, key)) == 1
    assert all(process.running() for process in cluster.processes)


def test_every_role_process_stops_cleanly_on_sigterm(deployment: Deployment) -> None:
    cluster, key = deployment.cluster, deployment.key
    workers = {process.name: process.worker_pids() for process in cluster.processes if process.workers > 1}
    # An open live tail must not hold an api worker's drain: the worker ends its tails when the signal comes.
    tail_ended = threading.Event()

    def tail() -> None:
        with (
            httpx.Client(timeout=httpx.Timeout(10.0, read=60.0)) as client,
            client.stream("POST", f"{cluster.api_urls[0]}/v1/logs/tail", json={}, headers={"X-API-Key": key}) as stream,
        ):
            assert stream.status_code == 200
            with contextlib.suppress(httpx.HTTPError):
                for _line in stream.iter_lines():
                    pass
        tail_ended.set()

    tailing = threading.Thread(target=tail, daemon=True)
    tailing.start()
    time.sleep(1)
    for process in reversed(cluster.processes):
        started = time.monotonic()
        assert process.sigterm() == 0, process.logs()
        if process.workers > 1:
            # Well under the kill timeout (grace 5 s + 10 s): the workers drained rather than being killed.
            assert time.monotonic() - started < 10, process.logs()
    assert tail_ended.wait(10)
    for name, pids in workers.items():
        for pid in pids:  # Granian forwarded the signal: every worker exited, none was left behind
            wait_until(lambda pid=pid: not _alive(pid), 10, f"{name} worker {pid} exited")
        # Each worker ran its lifespan shutdown: stopped its role and closed its runtime.
        log = deployment.cluster.one(name).logs()
        assert log.count("mintlog worker stopped") == len(pids), log
        # Granian's stop loop and its per-worker watcher thread both wait on the same child; on a loaded machine
        # the loop can see a worker the watcher already reaped as alive and log that it "refused to gracefully
        # stop" (killing a pid that has exited). A real refusal takes the kill timeout, which the bound above
        # excludes; the line may only come after every worker had stopped.
        if "refused to gracefully stop" in log:
            assert log.index("refused to gracefully stop") > log.rindex("mintlog worker stopped"), log


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
