"""The Elasticsearch `_bulk` API proven with the official clients, unchanged, against a real `mintlog run`.

`elasticsearch` 8.x (API key in `Authorization: ApiKey`, product check on every answer) and `opensearch-py`
(HTTP Basic with the key as password) send with their `helpers.bulk`; the events are then found with their
service, host, level, timestamp and fields; a partly bad bulk raises `BulkIndexError` naming exactly the bad
documents while the good ones are stored; a malformed body gets Elasticsearch's error shape; nothing accepted
is lost. The search runs with `Authorization: Bearer`, so the API port's auth forms are exercised too.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from elasticsearch import Elasticsearch
from elasticsearch import helpers as es_helpers
from opensearchpy import OpenSearch
from opensearchpy import helpers as os_helpers

from tests.e2e.harness import MintlogProcess

pytestmark = pytest.mark.e2e

SINCE = "2000-01-01T00:00:00Z"
# Yesterday at 10:00 UTC: inside any retention and ingest time window whenever the suite runs.
BASE = (datetime.now(UTC) - timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
DAY = BASE.strftime("%Y-%m-%d")


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MintlogProcess, str]]:
    process = MintlogProcess(data_dir=tmp_path_factory.mktemp("mintlog") / "data")
    try:
        process.start()
        yield process, process.bootstrap("demo")
    finally:
        process.cleanup()


def search(mintlog: MintlogProcess, key: str, query: str, total: int, timeout_seconds: float = 30) -> dict[str, Any]:
    """The events matching `query` once there are `total` (with the key as a Bearer token)."""
    deadline = time.monotonic() + timeout_seconds
    answer: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = httpx.post(
            f"{mintlog.api_url}/v1/logs/search",
            json={"query": query, "from": SINCE, "size": 100},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        answer = response.json()
        if answer["total"] >= total:
            return answer
        time.sleep(0.1)
    raise AssertionError(f"{query}: {answer.get('total')} of {total} events found")


def elasticsearch(mintlog: MintlogProcess, key: str) -> Elasticsearch:
    return Elasticsearch(mintlog.ingest_url, api_key=key, request_timeout=30)


def opensearch(mintlog: MintlogProcess, key: str) -> OpenSearch:
    return OpenSearch(hosts=[mintlog.ingest_url], http_auth=("mintlog", key), timeout=30)


def test_elasticsearch_client_bulk_is_stored_and_found_with_its_attributes(
    running: tuple[MintlogProcess, str],
) -> None:
    mintlog, key = running
    client = elasticsearch(mintlog, key)
    assert client.info()["version"]["number"].startswith("8.")
    actions = [
        {
            "_index": f"checkout-{BASE:%Y.%m.%d}",
            "_op_type": "create" if i % 2 else "index",
            "@timestamp": f"{DAY}T10:00:{i:02d}.000Z",
            "message": f"order {i} paid",
            "log": {"level": "error" if i == 3 else "info"},
            "host": {"name": "web-1", "ip": "10.0.0.7"},
            "order": {"id": i, "currency": "EUR"},
        }
        for i in range(10)
    ]

    stored, errors = es_helpers.bulk(client, actions)

    assert (stored, errors) == (10, [])
    found = search(mintlog, key, "service:checkout", 10)["events"]
    by_message = {event["message"]: event for event in found}
    third = by_message["order 3 paid"]
    assert (third["service"], third["host"], third["level"]) == ("checkout", "web-1", "error")
    assert third["timestamp"] == f"{DAY}T10:00:03Z"
    assert third["fields"]["order.id"] == 3
    assert third["fields"]["order.currency"] == "EUR"
    assert third["fields"]["host.ip"] == "10.0.0.7"
    assert third["source"] == "es_bulk"
    assert {event["level"] for event in found} == {"info", "error"}


def test_opensearch_client_bulk_is_stored_and_found(running: tuple[MintlogProcess, str]) -> None:
    mintlog, key = running
    client = opensearch(mintlog, key)
    actions = [
        {
            "_index": "ignored-index",
            "_source": {
                "@timestamp": f"{DAY}T11:00:00Z",
                "msg": f"fluent line {i}",
                "service.name": "payments",
                "hostname": "db-2",
                "level": "warn",
                "attempt": i,
            },
        }
        for i in range(5)
    ]

    stored, errors = os_helpers.bulk(client, actions)

    assert (stored, errors) == (5, [])
    found = search(mintlog, key, "service:payments", 5)["events"]
    assert {(event["host"], event["level"], event["timestamp"]) for event in found} == {
        ("db-2", "warn", f"{DAY}T11:00:00Z")
    }
    assert sorted(event["fields"]["attempt"] for event in found) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("client_name", ["elasticsearch", "opensearch"])
def test_a_partly_bad_bulk_raises_bulk_index_error_naming_exactly_the_bad_documents(
    running: tuple[MintlogProcess, str], client_name: str
) -> None:
    mintlog, key = running
    service = f"partly-{client_name}"
    actions: list[dict[str, Any]] = [
        {"_index": service, "_id": "good-1", "message": "good one"},
        {"_index": service, "_id": "empty"},  # nothing to store: refused by validation
        {"_index": service, "_id": "good-2", "message": "good two"},
        {"_op_type": "delete", "_index": service, "_id": "old"},  # logs are append-only
        {"_index": service, "_id": "huge", "message": "x" * 70_000},  # over the message limit
        {"_index": service, "_id": "good-3", "message": "good three"},
    ]
    if client_name == "elasticsearch":
        client: Any = elasticsearch(mintlog, key)
        bulk, error_type = es_helpers.bulk, es_helpers.BulkIndexError
    else:
        client = opensearch(mintlog, key)
        bulk, error_type = os_helpers.bulk, os_helpers.BulkIndexError

    with pytest.raises(error_type) as raised:
        bulk(client, actions)

    failed = {next(iter(error.values()))["_id"]: next(iter(error.values())) for error in raised.value.errors}
    assert set(failed) == {"empty", "old", "huge"}
    assert {item["status"] for item in failed.values()} == {400}
    assert failed["old"]["error"]["type"] == "illegal_argument_exception"
    assert failed["huge"]["error"]["type"] == "mapper_parsing_exception"
    found = search(mintlog, key, f"service:{service}", 3)
    assert sorted(event["message"] for event in found["events"]) == ["good one", "good three", "good two"]


def test_malformed_ndjson_gets_elasticsearch_s_error_shape(running: tuple[MintlogProcess, str]) -> None:
    mintlog, key = running
    pair = base64.b64encode(f"any-id:{key}".encode()).decode()

    response = httpx.post(
        f"{mintlog.ingest_url}/_bulk",
        content=b'{"index": {"_index": "broken"}\n{"message": "x"}\n',
        headers={"Authorization": f"ApiKey {pair}", "Content-Type": "application/x-ndjson"},
        timeout=30,
    )

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == 400
    assert body["error"]["type"] == "x_content_parse_exception"
    assert body["error"]["root_cause"][0]["reason"] == body["error"]["reason"]


def test_a_thousand_documents_in_chunks_are_all_found(running: tuple[MintlogProcess, str]) -> None:
    mintlog, key = running
    client = elasticsearch(mintlog, key)
    actions = ({"_index": "volume", "message": f"event {i}", "sequence": i} for i in range(1000))

    stored, errors = es_helpers.bulk(client, actions, chunk_size=250)

    assert (stored, errors) == (1000, [])
    found = search(mintlog, key, "service:volume", 1000)
    assert found["total"] == 1000
