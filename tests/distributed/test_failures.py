"""Failures under continuous ingest, with each role its own OS process on an external NATS JetStream, a private
PostgreSQL, a private Redis and the shared OpenSearch.

Every scenario runs a loader thread posting batches (tests/distributed/load.py) while it disrupts one piece:
SIGTERM of each role (it must exit 0), kill -9 of each role, kill -9 of NATS, PostgreSQL, Redis and OpenSearch,
OpenSearch made unreachable, each then restarted. Afterwards every event that got a 202 must be searchable exactly once.
A last test kills alert and notify in the middle of the incident flow: still one incident, one webhook.
The counts of each scenario are printed, and written as a Markdown table to `$RELIABILITY_REPORT` when that
is set (docs/reliability.md quotes them).

The main deployment uses the OpenSearch shared with the rest of the test suite, which is never stopped: its role
processes reach it through a TCP proxy (`TcpProxy`), and "OpenSearch unreachable" cuts the proxy (connections
reset, new ones refused). The kill -9 of OpenSearch runs against a deployment of its own (ingest, pipeline, api,
own NATS and Redis, a fresh database) on a private OpenSearch node (`private_opensearch.py`): the JVM is
SIGKILLed under load and restarted on the same data dir.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx
import pytest

from tests.distributed.client import api, ingest, search_all, wait_for_total
from tests.distributed.cluster import (
    Cluster,
    NatsServer,
    PostgresServer,
    RedisServer,
    RoleProcess,
    TcpProxy,
    wait_until,
)
from tests.distributed.conftest import OpenSearchTarget, required_service, role_settings
from tests.distributed.load import Loader, Outcome
from tests.distributed.private_opensearch import PrivateOpenSearch
from tests.e2e.receiver import WebhookReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(180)]

ROLES = ("ingest", "pipeline", "api", "alert", "notify")
SETTLE_SECONDS = 1.5
# Ingest and the pipeline are stopped under a heavier load, so that they die with work in flight: requests not
# yet answered, batches fetched and not yet acked.
BATCH_SIZES = {"pipeline": 200, "ingest": 200}


class Target(Protocol):
    """What `run_scenario` needs of a deployment."""

    @property
    def cluster(self) -> Cluster: ...
    @property
    def key(self) -> str: ...
    @property
    def outcomes(self) -> list[Outcome]: ...
    @property
    def ingest_url(self) -> str: ...
    @property
    def api_url(self) -> str: ...


@pytest.fixture(scope="module")
def outcomes() -> Iterator[list[Outcome]]:
    """The outcomes of every scenario of the module, reported (and written to `$RELIABILITY_REPORT`) at its end."""
    collected: list[Outcome] = []
    yield collected
    _report(collected)


@dataclass
class Deployment:
    cluster: Cluster
    nats: NatsServer
    redis: RedisServer
    postgres: PostgresServer
    opensearch: TcpProxy
    key: str
    outcomes: list[Outcome]

    def role(self, role: str) -> RoleProcess:
        return self.cluster.of(role)[0]

    @property
    def ingest_url(self) -> str:
        return self.role("ingest").url

    @property
    def api_url(self) -> str:
        return self.role("api").url


@pytest.fixture(scope="module")
def deployment(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    module_opensearch: OpenSearchTarget,
    outcomes: list[Outcome],
) -> Iterator[Deployment]:
    # Private PostgreSQL and Redis servers are started below (they get killed); asking for the shared ones
    # first makes scripts/services.sh install their binaries on a fresh machine, or fails loudly.
    required_service(request, "postgres_server_url")
    required_service(request, "redis_url")
    root = tmp_path_factory.mktemp("distributed-failures")
    nats, redis, postgres = NatsServer(root / "nats"), RedisServer(root / "redis"), PostgresServer()
    opensearch = TcpProxy(module_opensearch.url.removeprefix("http://").rstrip("/"))
    cluster: Cluster | None = None
    try:
        nats.start()
        redis.start()
        postgres.start()
        opensearch.start()
        env = role_settings(
            nats_url=nats.url,
            database_url=postgres.url,
            opensearch=OpenSearchTarget(f"http://127.0.0.1:{opensearch.port}", module_opensearch.prefix),
            redis_url=redis.url,
            blob_dir=root / "objects",
        )
        cluster = Cluster(root, env, dict.fromkeys(ROLES, 1))
        key = cluster.bootstrap("chaos")
        cluster.start()
        yield Deployment(cluster, nats, redis, postgres, opensearch, key, outcomes)
    finally:
        if cluster is not None:
            cluster.cleanup()
        nats.stop()
        redis.stop()
        opensearch.stop()
        postgres.remove()


@dataclass
class OpenSearchCrashDeployment:
    """Ingest, pipeline and api on a private OpenSearch node that the test kills, own NATS and Redis."""

    cluster: Cluster
    opensearch: PrivateOpenSearch
    key: str
    outcomes: list[Outcome]

    @property
    def ingest_url(self) -> str:
        return self.cluster.of("ingest")[0].url

    @property
    def api_url(self) -> str:
        return self.cluster.of("api")[0].url


@pytest.fixture(scope="module")
def opensearch_crash_deployment(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str, outcomes: list[Outcome]
) -> Iterator[OpenSearchCrashDeployment]:
    root = tmp_path_factory.mktemp("distributed-opensearch-crash")
    nats, redis, opensearch = NatsServer(root / "nats"), RedisServer(root / "redis"), PrivateOpenSearch()
    cluster: Cluster | None = None
    try:
        opensearch.start()  # fails (never skips) when OpenSearch cannot be installed or started
        nats.start()
        redis.start()
        env = role_settings(
            nats_url=nats.url,
            database_url=module_database_url,
            opensearch=OpenSearchTarget(opensearch.url, "crash"),
            redis_url=redis.url,
            blob_dir=root / "objects",
        )
        cluster = Cluster(root, env, {"ingest": 1, "pipeline": 1, "api": 1})
        key = cluster.bootstrap("os-crash")
        cluster.start()
        yield OpenSearchCrashDeployment(cluster, opensearch, key, outcomes)
    finally:
        if cluster is not None:
            cluster.cleanup()
        nats.stop()
        redis.stop()
        opensearch.remove()


def _report(outcomes: list[Outcome]) -> None:
    if not outcomes:
        return
    lines = [
        "| scenario | 202'd events | found | lost | duplicated | unknown (found) | refused (found) | not sent |"
        " HTTP answers |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        answers = ", ".join(f"{status} x{count}" for status, count in sorted(o.statuses.items()))
        lines.append(
            f"| {o.scenario} | {o.accepted} | {o.found} | {o.lost} | {o.duplicated} | {o.unknown} ({o.unknown_found})"
            f" | {o.refused} ({o.refused_found}) | {o.not_sent} | {answers} |"
        )
    table = "\n".join(lines) + "\n"
    print("\n" + table)
    target = os.environ.get("RELIABILITY_REPORT")
    if target:
        Path(target).write_text(table)


def run_scenario(
    deployment: Target, scenario: str, disrupt: Callable[[Loader], None], *, batch_size: int = 10
) -> Outcome:
    """Ingest continuously around `disrupt`, then check every 202'd event is searchable exactly once."""
    loader = Loader(url=lambda: deployment.ingest_url, key=deployment.key, service=scenario, batch_size=batch_size)
    loader.start()
    try:
        loader.wait_accepted(100, timeout_seconds=30)
        disrupt(loader)
        for process in deployment.cluster.processes:
            assert process.running(), f"{process.name} died:\n{process.logs()}"
        before = len(loader.accepted)
        loader.wait_accepted(before + 100, timeout_seconds=60)  # the system accepts again after the restart
    finally:
        loader.stop()

    accepted = set(loader.accepted)
    assert len(accepted) == len(loader.accepted)
    # A loaded machine drains a backlog slowly (a restarted OpenSearch took 8 s a bulk request in CI): wait while
    # it progresses, up to 5 minutes; 60 s without one more event found means it stopped.
    reached = wait_for_total(
        deployment.api_url, deployment.key, {"service": scenario}, len(accepted), 300, stall_seconds=60
    )
    time.sleep(SETTLE_SECONDS)  # a redelivered duplicate would be indexed by now
    events = search_all(deployment.api_url, deployment.key, {"service": scenario})
    marks = Counter(str(event["fields"]["mark"]) for event in events)
    outcome = Outcome(
        scenario=scenario,
        accepted=len(accepted),
        found=len(events),
        lost=len(accepted - set(marks)),
        duplicated=sum(count - 1 for count in marks.values() if count > 1),
        unknown=len(loader.unknown),
        unknown_found=len(set(loader.unknown) & set(marks)),
        refused=len(loader.refused),
        refused_found=len(set(loader.refused) & set(marks)),
        not_sent=loader.not_sent,
        statuses=dict(loader.statuses),
    )
    deployment.outcomes.append(outcome)
    unexplained = set(marks) - accepted - set(loader.unknown) - set(loader.refused)
    assert not unexplained, f"found events that were never sent: {sorted(unexplained)[:5]}"
    assert outcome.lost == 0, (reached, outcome, deployment.cluster.logs(["pipeline-1", "ingest-1"]))
    assert outcome.duplicated == 0, outcome
    assert len({event["id"] for event in events}) == len(events)
    return outcome


@pytest.mark.parametrize("role", ROLES)
def test_sigterm_drains_and_exits_0_then_restart_loses_nothing(deployment: Deployment, role: str) -> None:
    process = deployment.role(role)

    def disrupt(loader: Loader) -> None:
        loader.wait_in_flight()
        code = process.sigterm()
        assert code == 0, process.logs()
        assert "mintlog stopped" in process.logs()
        time.sleep(1)
        process.start()

    outcome = run_scenario(deployment, f"sigterm-{role}", disrupt, batch_size=BATCH_SIZES.get(role, 10))
    assert outcome.unknown == 0, "a request in flight at SIGTERM was not answered"


@pytest.mark.parametrize("role", ROLES)
def test_kill_9_then_restart_loses_and_duplicates_nothing(deployment: Deployment, role: str) -> None:
    process = deployment.role(role)

    def disrupt(loader: Loader) -> None:
        loader.wait_in_flight()
        process.kill9()
        time.sleep(1)
        process.start()

    run_scenario(deployment, f"kill9-{role}", disrupt, batch_size=BATCH_SIZES.get(role, 10))


def _readyz(url: str) -> tuple[int, dict[str, str]]:
    response = httpx.get(f"{url}/readyz", timeout=15)
    return response.status_code, dict(response.json()["checks"])


def test_kill_9_nats_ingest_answers_503_with_retry_after_then_nothing_is_lost(deployment: Deployment) -> None:
    def disrupt(loader: Loader) -> None:
        deployment.nats.kill9()
        wait_until(lambda: loader.statuses[503] >= 2, 30, f"ingest answers 503 while NATS is down: {loader.statuses}")
        refused = loader.refusals[-1]
        assert refused.status_code == 503
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert int(refused.headers["retry-after"]) > 0
        for url in (deployment.ingest_url, deployment.api_url):
            status, checks = _readyz(url)
            assert status == 503
            assert checks["bus"] != "ok", checks
            assert checks["database"] == "ok", checks
            assert checks["store"] == "ok", checks
        deployment.nats.start()

    outcome = run_scenario(deployment, "kill9-nats", disrupt)
    assert outcome.statuses.get(503, 0) >= 2
    for url in (deployment.ingest_url, deployment.api_url):
        status, checks = _readyz(url)
        assert status == 200, checks
        assert {"bus", "store", "database"} <= set(checks), checks


def test_kill_9_postgres_ingest_keeps_accepting_readyz_names_the_database(deployment: Deployment) -> None:
    def disrupt(loader: Loader) -> None:
        deployment.postgres.kill9()
        before = len(loader.accepted)
        loader.wait_accepted(before + 100, timeout_seconds=30)  # keys come from the cache, the bus is up
        status, checks = _readyz(deployment.api_url)
        assert status == 503
        assert checks["database"] != "ok", checks
        assert checks["bus"] == "ok", checks
        deployment.postgres.start()

    run_scenario(deployment, "kill9-postgres", disrupt)
    wait_until(lambda: _readyz(deployment.api_url)[0] == 200, 30, "api ready again after PostgreSQL is back")


def test_kill_9_redis_ingest_keeps_accepting(deployment: Deployment) -> None:
    def disrupt(loader: Loader) -> None:
        deployment.redis.kill9()
        before = len(loader.accepted)
        loader.wait_accepted(before + 100, timeout_seconds=30)  # keys from the database, local rate limits
        deployment.redis.start()

    run_scenario(deployment, "kill9-redis", disrupt)


def test_opensearch_unreachable_ingest_keeps_accepting_and_the_backlog_drains(deployment: Deployment) -> None:
    def disrupt(loader: Loader) -> None:
        deployment.opensearch.cut()
        try:
            before = len(loader.accepted)
            loader.wait_accepted(before + 300, timeout_seconds=30)  # ingest needs only the bus
            status, checks = _readyz(deployment.api_url)
            assert status == 503
            assert checks["store"] != "ok", checks
            assert checks["bus"] == "ok", checks
            assert checks["database"] == "ok", checks
            time.sleep(5)  # a backlog builds up in LOGS_RAW / LOGS_PARSED
        finally:
            deployment.opensearch.restore()

    outcome = run_scenario(deployment, "opensearch-unreachable", disrupt)
    assert outcome.accepted > 300
    wait_until(lambda: _readyz(deployment.api_url)[0] == 200, 30, "api ready again after OpenSearch is back")


# Module setup starts a private OpenSearch and the test restarts it: two JVM starts, each a minute or more on a
# loaded CI machine, plus a drain waited for while it progresses (up to 5 min), inside one pytest-timeout budget
# (which counts fixture set-up).
@pytest.mark.timeout(900)
def test_kill_9_opensearch_ingest_keeps_accepting_then_restart_drains_exactly_once(
    opensearch_crash_deployment: OpenSearchCrashDeployment,
) -> None:
    """SIGKILL of the OpenSearch JVM while the pipeline is writing; restarted on the same data dir."""
    target = opensearch_crash_deployment
    opensearch = target.opensearch

    def disrupt(loader: Loader) -> None:
        loader.wait_in_flight()
        opensearch.kill9()
        down_since = time.monotonic()
        before = len(loader.accepted)
        loader.wait_accepted(before + 300, timeout_seconds=30)  # ingest needs only the bus
        status, checks = _readyz(target.api_url)
        assert status == 503
        assert checks["store"] != "ok", checks
        assert checks["bus"] == "ok", checks
        assert checks["database"] == "ok", checks
        time.sleep(max(0.0, 5 - (time.monotonic() - down_since)))  # a backlog builds up in the streams
        opensearch.restart()

    outcome = run_scenario(target, "kill9-opensearch", disrupt)
    assert outcome.accepted > 300
    assert opensearch.running()
    wait_until(lambda: _readyz(target.api_url)[0] == 200, 30, "api ready again after OpenSearch restarted")


def test_kill_9_alert_and_notify_mid_flow_still_one_incident_and_one_webhook(deployment: Deployment) -> None:
    """The rule's threshold is crossed, and both roles of the incident flow die before they can act on it."""
    api_url, key = deployment.api_url, deployment.key
    with WebhookReceiver() as receiver:
        channel = api(
            api_url,
            key,
            "POST",
            "/v1/notifications/channels",
            {"name": "crash", "channel_type": "webhook", "config": {"url": receiver.url, "secret": "s3cret"}},
        )
        assert channel.status_code == 201, channel.text
        rule = api(
            api_url,
            key,
            "POST",
            "/v1/alerts/rules",
            {
                "name": "crash-errors",
                "query": {"level": "error", "service": "crash-flow"},
                "threshold": 2,
                "window_seconds": 300,
                "interval_seconds": 5,
                "channel_ids": [channel.json()["id"]],
            },
        )
        assert rule.status_code == 201, rule.text
        errors = [{"service": "crash-flow", "level": "error", "message": f"boom {n}"} for n in range(3)]
        assert ingest(deployment.ingest_url, key, errors).status_code == 202
        # Let the alert fire (one tick), then kill both roles around the alert event and its delivery.
        time.sleep(3)
        alert, notify = deployment.role("alert"), deployment.role("notify")
        notify.kill9()
        alert.kill9()
        time.sleep(1)
        alert.start()
        notify.start()

        webhooks = receiver.wait_for(1, timeout_seconds=60)
        assert len(webhooks) >= 1, deployment.cluster.logs(["alert-1", "notify-1"])
        time.sleep(12)  # two more intervals, and the notify poller, after the restarts
        incidents = api(api_url, key, "GET", "/v1/incidents?status=open").json()["items"]
        assert [incident["rule_id"] for incident in incidents] == [rule.json()["id"]], incidents
        assert [json.loads(webhook.body)["type"] for webhook in receiver.received] == ["incident.triggered"]
