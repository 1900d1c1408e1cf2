"""The Elasticsearch `_bulk` API as a client sees it: the decoder's mapping of shipper documents to events, and the
routes in an in-process app with fakes (memory bus, fake key metadata), answering in Elasticsearch's shapes."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from mintlog.adapters.bus.memory import MemoryEventBus
from mintlog.adapters.cache.memory import MemoryCache
from mintlog.adapters.ratelimit.memory import MemoryRateLimiter
from mintlog.auth import Authenticator
from mintlog.domain.events import RawBatch
from mintlog.domain.streams import decode_raw_batch
from mintlog.errors import UnsupportedMediaType
from mintlog.http.app import create_app
from mintlog.http.guards import make_requires
from mintlog.http.ratelimit import KeyRateLimits
from mintlog.metrics import Metrics
from mintlog.roles.ingest.bulk_routes import bulk_routes
from mintlog.roles.ingest.decoders.es_bulk import BulkBodyError, EsBulkDecoder, service_of_index
from mintlog.roles.ingest.routes import IngestRequests
from mintlog.roles.ingest.service import IngestService
from mintlog.settings import IngestSettings, RateLimitSettings
from tests.fakes import FakeIdempotencyStore, FakeKeyMetadata


def ndjson(*lines: Any) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


# --- the decoder ----------------------------------------------------------------------------------------------


def test_ecs_documents_from_filebeat_become_events_with_their_attributes() -> None:
    document = {
        "@timestamp": "2026-12-05T10:00:00.123Z",
        "message": "GET /health 200",
        "log": {"level": "warn", "file": {"path": "/var/log/app.log"}},
        "service": {"name": "checkout", "version": "1.2"},
        "host": {"name": "web-1", "os": {"family": "debian"}},
        "trace": {"id": "4bf92f3577b34da6a3ce929d0e0e4736"},
        "span.id": "00f067aa0ba902b7",
        "http": {"status": 200},
    }
    decoder = EsBulkDecoder("ignored-because-service-is-set")

    (event,) = decoder.decode(ndjson({"create": {}}, document), {})

    assert event == {
        "message": "GET /health 200",
        "timestamp": "2026-12-05T10:00:00.123Z",
        "level": "warn",
        "service": "checkout",
        "host": "web-1",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "span_id": "00f067aa0ba902b7",
        "fields": {
            "log": {"file": {"path": "/var/log/app.log"}},
            "service": {"version": "1.2"},
            "host": {"os": {"family": "debian"}},
            "http": {"status": 200},
        },
    }


def test_flat_shipper_documents_use_the_aliases_and_the_index_names_the_service() -> None:
    decoder = EsBulkDecoder("fallback")
    body = ndjson(
        {"index": {"_index": "nginx-2026.12.05", "_id": "a1"}},
        {"log": "upstream timed out", "severity": "error", "hostname": "edge-3", "pid": 42},
        {"index": {}},
        {"msg": "fluent bit line", "level": "info", "host": "db-1", "log.level": "debug"},
    )

    first, second = decoder.decode(body, {})

    assert first == {
        "message": "upstream timed out",
        "level": "error",
        "service": "nginx",
        "host": "edge-3",
        "fields": {"pid": 42},
    }
    assert second == {
        "message": "fluent bit line",
        "level": "debug",
        "service": "fallback",
        "host": "db-1",
        "fields": {"level": "info"},
    }
    assert [(item.action, item.index, item.doc_id, item.event_index) for item in decoder.items] == [
        ("index", "nginx-2026.12.05", "a1", 0),
        ("index", "fallback", None, 1),
    ]


@pytest.mark.parametrize(
    ("index", "service"),
    [("logs-2026.12.05", "logs"), ("app-2026-12-05", "app"), ("app-2026.12", "app"), ("payments", "payments")],
)
def test_the_service_of_an_index_is_its_name_without_a_trailing_date(index: str, service: str) -> None:
    assert service_of_index(index) == service


def test_delete_update_and_bad_documents_are_refused_per_item_and_the_rest_decoded() -> None:
    decoder = EsBulkDecoder("app")
    body = (
        ndjson({"delete": {"_id": "x"}}, {"update": {"_id": "y"}}, {"doc": {"a": 1}}, {"index": {}})
        + b"{not json\n"
        + ndjson({"index": {}}, [1, 2], {"create": {"_id": 7}}, {"message": "kept"})
    )

    events = decoder.decode(body, {})

    assert events == [{"message": "kept", "service": "app"}]
    refused = [(item.action, item.error.type if item.error else None) for item in decoder.items]
    assert refused == [
        ("delete", "illegal_argument_exception"),
        ("update", "illegal_argument_exception"),
        ("index", "mapper_parsing_exception"),
        ("index", "mapper_parsing_exception"),
        ("create", None),
    ]
    assert decoder.items[-1].doc_id == "7"


def test_a_repeated_action_line_is_read_as_the_first_unless_json_equality_would_confuse_its_ids() -> None:
    """An action line equal to the one before is the same action, but `1`, `1.0` and `true` are equal in Python
    and not as `_id`s: only an integer is an id."""
    decoder = EsBulkDecoder("app")
    document = {"message": "m"}
    body = ndjson(
        *({"create": {"_index": "logs-2026.12.06"}}, document) * 2,
        *({"index": {"_id": 1}}, document),
        *({"index": {"_id": 1.0}}, document),
        *({"index": {"_id": True}}, document),
        *({"index": {"_id": 1}}, document),
        *({"index": {"_id": "a"}}, document) * 2,
        *({"index": {}}, document) * 2,
    )

    events = decoder.decode(body, {})

    assert [(item.action, item.index, item.doc_id, item.event_index) for item in decoder.items] == [
        ("create", "logs-2026.12.06", None, 0),
        ("create", "logs-2026.12.06", None, 1),
        ("index", "app", "1", 2),
        ("index", "app", None, 3),
        ("index", "app", None, 4),
        ("index", "app", "1", 5),
        ("index", "app", "a", 6),
        ("index", "app", "a", 7),
        ("index", "app", None, 8),
        ("index", "app", None, 9),
    ]
    assert [event["service"] for event in events] == ["logs"] * 2 + ["app"] * 8
    for refused in (ndjson(None, document), ndjson({"index": {}}, document, None, document)):
        with pytest.raises(BulkBodyError):
            EsBulkDecoder().decode(refused, {})


@pytest.mark.parametrize(
    ("body", "es_type", "says"),
    [
        (b"", "action_request_validation_exception", "no requests added"),
        (b"\n\n", "action_request_validation_exception", "no requests added"),
        (b'{"index": {}\n{"message": "x"}\n', "x_content_parse_exception", "line [1]"),
        (ndjson({"upsert": {}}, {"message": "x"}), "illegal_argument_exception", "but found [upsert]"),
        (ndjson({"index": {}, "create": {}}, {"message": "x"}), "illegal_argument_exception", "one action"),
        (ndjson({"index": "x"}, {"message": "x"}), "illegal_argument_exception", "expected an object"),
        (ndjson({"index": {}}), "illegal_argument_exception", "no document line"),
        (ndjson(["index"], {"message": "x"}), "illegal_argument_exception", "line [1]"),
    ],
)
def test_a_body_that_is_not_a_bulk_is_refused_whole(body: bytes, es_type: str, says: str) -> None:
    with pytest.raises(BulkBodyError) as refused:
        EsBulkDecoder().decode(body, {})
    assert refused.value.status == 400
    assert refused.value.extra["es_type"] == es_type
    assert says in refused.value.detail


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "application/x-ndjson",
        "application/json; charset=utf-8",
        "application/vnd.elasticsearch+x-ndjson; compatible-with=8",
        "application/vnd.elasticsearch+json; compatible-with=8",
    ],
)
def test_the_types_clients_send_are_accepted(content_type: str | None) -> None:
    EsBulkDecoder().check_content_type(content_type)


def test_other_types_are_415() -> None:
    with pytest.raises(UnsupportedMediaType):
        EsBulkDecoder().check_content_type("application/x-www-form-urlencoded")


# --- the routes -----------------------------------------------------------------------------------------------


@dataclass
class Port:
    client: AsyncTestClient[Any]
    metadata: FakeKeyMetadata
    metrics: Metrics
    bus: MemoryEventBus
    key: str

    def batches(self) -> list[RawBatch]:
        return [decode_raw_batch(message.data) for message in self.bus.broker.stream("LOGS_RAW").messages.values()]

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"ApiKey {self.key}"}


@pytest.fixture
def rate_limits() -> RateLimitSettings:
    return RateLimitSettings(enabled=False)


@pytest.fixture
async def port(rate_limits: RateLimitSettings) -> AsyncIterator[Port]:
    metadata, metrics, bus = FakeKeyMetadata(), Metrics(), MemoryEventBus()
    await bus.start()
    limiter = MemoryRateLimiter()
    authenticator = Authenticator(metadata, MemoryCache(), ttl_seconds=300)  # type: ignore[arg-type]
    requires = make_requires(authenticator, rate_limits=KeyRateLimits(limiter, rate_limits, metrics))
    service = IngestService(
        bus=bus,
        idempotency=FakeIdempotencyStore(),
        limits=IngestSettings(max_events_per_batch=100),
        limiter=limiter,
        rate_limits=rate_limits,
        metrics=metrics,
    )
    ingest_request = IngestRequests(service, max_body_bytes=64 * 1024, metrics=metrics)
    app = create_app(
        server="ingest",
        route_handlers=bulk_routes(ingest_request, requires=requires, metrics=metrics),
        metrics=metrics,
        readiness_checks={},
    )
    key, _ = metadata.add(scopes=("ingest:logs",))
    async with AsyncTestClient(app=app) as client:
        yield Port(client, metadata, metrics, bus, key)
    await bus.close()


async def test_a_bulk_is_stored_and_answered_item_by_item_as_elasticsearch_does(port: Port) -> None:
    body = ndjson(
        {"index": {"_index": "web-2026.12.05", "_id": "doc-1"}},
        {"message": "first", "log.level": "error"},
        {"create": {"_index": "web-2026.12.05"}},
        {"message": "second", "service.name": "api"},
    )
    headers = {**port.auth(), "Content-Type": "application/vnd.elasticsearch+x-ndjson; compatible-with=8"}

    response = await port.client.post("/_bulk", content=body, headers=headers)

    assert response.status_code == 200
    assert response.headers["x-elastic-product"] == "Elasticsearch"
    answer = response.json()
    assert answer["errors"] is False
    assert isinstance(answer["took"], int)
    first, second = answer["items"]
    assert first["index"]["_id"] == "doc-1"
    assert (first["index"]["status"], first["index"]["result"], first["index"]["_index"]) == (
        201,
        "created",
        "web-2026.12.05",
    )
    (batch,) = port.batches()
    assert second["create"]["_id"] == f"{batch.batch_id}-00001"
    assert batch.source == "es_bulk"
    assert batch.events == [
        {"message": "first", "level": "error", "service": "web"},
        {"message": "second", "service": "api"},
    ]


async def test_a_partly_bad_bulk_names_exactly_the_bad_items(port: Port) -> None:
    body = (
        ndjson({"index": {}}, {"message": "good"}, {"index": {}}, {})
        + ndjson({"delete": {"_id": "old"}}, {"index": {}})
        + b"{broken\n"
        + ndjson({"index": {}}, {"message": "also good"})
    )

    response = await port.client.post("/logs/_bulk", content=body, headers=port.auth())

    answer = response.json()
    assert response.status_code == 200
    assert answer["errors"] is True
    statuses = [next(iter(item.values()))["status"] for item in answer["items"]]
    assert statuses == [201, 400, 400, 400, 201]
    types = [next(iter(item.values())).get("error", {}).get("type") for item in answer["items"]]
    assert types == [None, "mapper_parsing_exception", "illegal_argument_exception", "mapper_parsing_exception", None]
    assert answer["items"][1]["index"]["error"]["reason"] == "event has no `message` and no `fields`"
    assert [event["message"] for event in port.batches()[0].events] == ["good", "also good"]
    rejected = port.metrics.registry.get_sample_value
    assert rejected("mintlog_ingest_events_rejected_total", {"reason": "unsupported_action"}) == 1
    assert rejected("mintlog_ingest_events_rejected_total", {"reason": "malformed_document"}) == 1


async def test_a_bulk_whose_every_document_is_refused_is_still_answered_per_item(port: Port) -> None:
    body = ndjson({"index": {}}, {}, {"delete": {"_id": "x"}})

    response = await port.client.post("/_bulk", content=body, headers=port.auth())

    assert response.status_code == 200
    answer = response.json()
    assert answer["errors"] is True
    assert [next(iter(item.values()))["status"] for item in answer["items"]] == [400, 400]
    assert port.batches() == []


async def test_a_malformed_body_gets_elasticsearch_s_error_shape_not_a_problem(port: Port) -> None:
    response = await port.client.post("/_bulk", content=b'{"index": {\n{"message": "x"}\n', headers=port.auth())

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == 400
    assert body["error"]["type"] == "x_content_parse_exception"
    assert body["error"]["root_cause"][0]["type"] == "x_content_parse_exception"
    assert port.batches() == []


async def test_gzip_bodies_are_read(port: Port) -> None:
    body = gzip.compress(ndjson({"index": {"_index": "zipped"}}, {"message": "compressed"}))
    headers = {**port.auth(), "Content-Encoding": "gzip", "Content-Type": "application/x-ndjson"}

    response = await port.client.post("/_bulk", content=body, headers=headers)

    assert response.json()["errors"] is False
    assert port.batches()[0].events == [{"message": "compressed", "service": "zipped"}]


async def test_without_a_key_the_answer_is_elasticsearch_s_401(port: Port) -> None:
    response = await port.client.post("/_bulk", content=ndjson({"index": {}}, {"message": "x"}))

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "security_exception"
    assert response.headers["www-authenticate"]


async def test_oversized_and_wrong_type_bodies_keep_their_status_in_elasticsearch_s_shape(port: Port) -> None:
    too_big = ndjson(*[line for _ in range(2000) for line in ({"index": {}}, {"message": "x" * 40})])
    wrong_type = {**port.auth(), "Content-Type": "text/csv"}

    big = await port.client.post("/_bulk", content=too_big, headers=port.auth())
    typed = await port.client.post("/_bulk", content=ndjson({"index": {}}, {"message": "x"}), headers=wrong_type)

    assert (big.status_code, big.json()["status"]) == (413, 413)
    assert (typed.status_code, typed.json()["status"]) == (415, 415)
    assert port.batches() == []


@pytest.mark.parametrize("rate_limits", [RateLimitSettings(tenant_ingest_events_per_second=1, burst_seconds=1)])
async def test_over_the_tenant_quota_is_elasticsearch_s_429_which_clients_retry(port: Port) -> None:
    body = ndjson({"index": {}}, {"message": "one"}, {"index": {}}, {"message": "two"})

    response = await port.client.post("/_bulk", content=body, headers=port.auth())

    assert response.status_code == 429
    assert response.json()["error"]["type"] == "es_rejected_execution_exception"
    assert response.headers["retry-after"]


async def test_the_probes_shippers_make_first_answer_like_a_cluster(port: Port) -> None:
    info = await port.client.get("/", headers=port.auth())
    exists = await port.client.head("/", headers=port.auth())
    license_ = await port.client.get("/_license", headers=port.auth())
    health = await port.client.get("/_cluster/health", headers=port.auth())
    template = await port.client.head("/_index_template/filebeat-8.11.0", headers=port.auth())
    put_template = await port.client.put("/_template/logstash", json={"index_patterns": ["x"]}, headers=port.auth())
    policy = await port.client.get("/_ilm/policy/filebeat", headers=port.auth())

    assert info.json()["version"]["number"].startswith("8.")
    assert info.headers["x-elastic-product"] == "Elasticsearch"
    assert exists.status_code == 200
    assert license_.json()["license"]["status"] == "active"
    assert health.json()["status"] == "green"
    assert template.status_code == 200
    assert put_template.json() == {"acknowledged": True}
    assert policy.status_code == 200
    assert (await port.client.get("/")).status_code == 401


async def test_put_is_a_bulk_too_as_elasticsearch_py_8_sends_it(port: Port) -> None:
    response = await port.client.put(
        "/web/_bulk", content=ndjson({"index": {}}, {"message": "put"}), headers=port.auth()
    )

    assert (response.status_code, response.json()["errors"]) == (200, False)
    assert port.batches()[0].events == [{"message": "put", "service": "web"}]


def test_the_benchmark_s_bulk_bodies_carry_the_same_events_as_its_native_ones() -> None:
    from benchmarks.ingest_protocols import es_bulk_body, event_batches

    (batch,) = event_batches("run1", 20, 1)
    events = EsBulkDecoder("logs").decode(es_bulk_body(batch), {})

    for native, bulk in zip(batch, events, strict=True):
        assert {key: bulk[key] for key in ("message", "level", "service", "host", "timestamp", "trace_id")} == {
            key: native[key] for key in ("message", "level", "service", "host", "timestamp", "trace_id")
        }
        assert bulk["fields"] == native["fields"]
