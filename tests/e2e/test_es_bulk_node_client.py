"""The Elasticsearch `_bulk` API proven with the official Node.js client, `@elastic/elasticsearch` 8, unchanged.

`tests/clients/elasticsearch-js/bulk.mjs` sends with the client's `helpers.bulk` and with `client.bulk` to a real
`mintlog run`, after `client.info()` (the client refuses any answer without `X-Elastic-Product: Elasticsearch`).
A clean bulk is reported a success by the client (the helper's stats, `errors: false` with `201` items) and every
document is found with its service, host, level, timestamp and fields; a partly bad bulk is reported per item
(the helper's `onDrop` and `failed` count, the `400` items of `client.bulk`) naming exactly the bad documents,
and every good one is stored. The API key travels in the client's three forms: `ApiKey <key>`, `ApiKey
base64(id:key)` and Basic.

Node.js and npm must be installed (`.ci/run` installs them with apt-get); the client is installed from the npm
registry with `npm ci` (tests/clients/elasticsearch-js/package-lock.json) when missing or when the lockfile changed
(tests/e2e/node_clients.py). Without node the tests fail, never skip.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.harness import MintlogProcess
from tests.e2e.node_clients import CLIENTS, installed_node

pytestmark = pytest.mark.e2e

PROJECT = CLIENTS / "elasticsearch-js"
SINCE = "2000-01-01T00:00:00Z"
LEVELS = ["debug", "info", "warn", "error", "fatal"]


@pytest.fixture(scope="module")
def node() -> str:
    """The node binary, with the client installed (`npm ci` from the lockfile when missing or stale)."""
    return installed_node(PROJECT)


def send(
    node: str, mintlog: MintlogProcess, key: str, mode: str, operations: list[dict[str, Any]], *, auth: str, gzip: bool
) -> dict[str, Any]:
    """What the client reported after sending `operations` with `mode` (`helper` or `bulk`)."""
    env = {
        **os.environ,
        "ES_URL": mintlog.ingest_url,
        "ES_KEY": key,
        "ES_AUTH": auth,
        "ES_GZIP": "1" if gzip else "0",
        "ES_OPERATIONS": json.dumps(operations),
    }
    finished = subprocess.run(
        [node, "bulk.mjs", mode], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert finished.returncode == 0, finished.stderr
    outcome = json.loads(finished.stdout.strip().splitlines()[-1])
    assert outcome.pop("version") == "8.11.0"  # client.info() passed the product check
    return outcome


def found(mintlog: MintlogProcess, key: str, service: str, count: int) -> list[dict[str, Any]]:
    """Every event of `service` once there are `count`, which must be all of them."""
    answer = mintlog.wait_for_total(key, {"query": f"service:{service}", "from": SINCE, "size": 1000}, count)
    assert answer["total"] == count, answer
    return answer["events"]


def documents(index: str, count: int) -> list[dict[str, Any]]:
    """`count` documents for `index`, as Filebeat-style ECS documents with distinct times, levels and fields."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    return [
        {
            "action": "create" if number % 2 else "index",
            "index": index,
            "id": f"doc-{number}",
            "document": {
                "@timestamp": (start + timedelta(seconds=number, microseconds=1000 * number)).isoformat(),
                "message": f"order {number} paid",
                "log": {"level": LEVELS[number % len(LEVELS)]},
                "host": {"name": f"web-{number % 3}", "ip": "10.0.0.7"},
                "order": {"id": number, "currency": "EUR"},
            },
        }
        for number in range(count)
    ]


def assert_stored_as_sent(events: list[dict[str, Any]], sent: list[dict[str, Any]], service: str) -> None:
    by_message = {event["message"]: event for event in events}
    for operation in sent:
        document = operation["document"]
        event = by_message[document["message"]]
        assert (event["service"], event["host"], event["level"], event["source"]) == (
            service,
            document["host"]["name"],
            document["log"]["level"],
            "es_bulk",
        )
        assert datetime.fromisoformat(event["timestamp"]) == datetime.fromisoformat(document["@timestamp"])
        assert (event["fields"]["order.id"], event["fields"]["host.ip"]) == (document["order"]["id"], "10.0.0.7")


def test_the_bulk_helper_reports_a_clean_gzip_bulk_a_success_and_every_document_is_found(
    node: str, running: tuple[MintlogProcess, str]
) -> None:
    mintlog, key = running
    operations = documents("node-helper-2026.12.06", 40)

    outcome = send(node, mintlog, key, "helper", operations, auth="apikey", gzip=True)

    assert outcome == {"total": 40, "successful": 40, "failed": 0, "drops": []}
    assert_stored_as_sent(found(mintlog, key, "node-helper", 40), operations, "node-helper")


def test_client_bulk_answers_created_items_and_every_document_is_found(
    node: str, running: tuple[MintlogProcess, str]
) -> None:
    mintlog, key = running
    operations = documents("node-bulk", 10)

    outcome = send(node, mintlog, key, "bulk", operations, auth="basic", gzip=False)

    assert outcome["errors"] is False
    items = [next(iter(item.items())) for item in outcome["items"]]
    assert [(action, item["_id"], item["status"], item["result"]) for action, item in items] == [
        (operation["action"], operation["id"], 201, "created") for operation in operations
    ]
    assert_stored_as_sent(found(mintlog, key, "node-bulk", 10), operations, "node-bulk")


def partly_bad(service: str) -> list[dict[str, Any]]:
    return [
        {"action": "index", "index": service, "id": "good-1", "document": {"message": "good one"}},
        {"action": "index", "index": service, "id": "empty", "document": {}},  # nothing to store
        {"action": "create", "index": service, "id": "good-2", "document": {"message": "good two"}},
        {"action": "delete", "index": service, "id": "old"},  # logs are append-only
        {"action": "index", "index": service, "id": "huge", "document": {"message": "x" * 70_000}},  # over the limit
        {"action": "index", "index": service, "id": "good-3", "document": {"message": "good three"}},
    ]


BAD = {"empty": "mapper_parsing_exception", "old": "illegal_argument_exception", "huge": "mapper_parsing_exception"}


def test_the_bulk_helper_drops_exactly_the_bad_documents_of_a_partly_bad_bulk_and_stores_the_good_ones(
    node: str, running: tuple[MintlogProcess, str]
) -> None:
    mintlog, key = running

    outcome = send(node, mintlog, key, "helper", partly_bad("node-partly-helper"), auth="apikey-pair", gzip=False)

    assert (outcome["total"], outcome["successful"], outcome["failed"]) == (6, 3, 3)
    dropped = {next(iter(drop["operation"].values()))["_id"]: drop for drop in outcome["drops"]}
    assert {name: drop["error"]["type"] for name, drop in dropped.items()} == BAD
    assert {drop["status"] for drop in dropped.values()} == {400}
    assert "65536" in dropped["huge"]["error"]["reason"]
    events = found(mintlog, key, "node-partly-helper", 3)
    assert sorted(event["message"] for event in events) == ["good one", "good three", "good two"]


def test_client_bulk_reports_per_item_errors_for_a_partly_bad_bulk_and_stores_the_good_ones(
    node: str, running: tuple[MintlogProcess, str]
) -> None:
    mintlog, key = running

    outcome = send(node, mintlog, key, "bulk", partly_bad("node-partly-bulk"), auth="apikey", gzip=True)

    assert outcome["errors"] is True
    items = {item["_id"]: item for item in (next(iter(answer.values())) for answer in outcome["items"])}
    assert list(items) == ["good-1", "empty", "good-2", "old", "huge", "good-3"]  # one item per action, in order
    assert {name: item["error"]["type"] for name, item in items.items() if item["status"] == 400} == BAD
    assert {name for name, item in items.items() if item["status"] == 201} == {"good-1", "good-2", "good-3"}
    events = found(mintlog, key, "node-partly-bulk", 3)
    assert sorted(event["message"] for event in events) == ["good one", "good three", "good two"]
