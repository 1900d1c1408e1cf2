"""Loki's push API: the decoder (JSON and snappy protobuf → events) and the route's Loki-shaped answers, with fakes
(an in-process app, the memory bus, a fake key store)."""

from __future__ import annotations

import base64
import gzip
import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import cramjam
import pytest
from litestar.testing import AsyncTestClient

from mintlog.adapters.bus.memory import MemoryEventBus
from mintlog.adapters.cache.memory import MemoryCache
from mintlog.adapters.ratelimit.memory import MemoryRateLimiter
from mintlog.auth import Authenticator
from mintlog.domain.events import RawBatch
from mintlog.domain.streams import decode_raw_batch
from mintlog.errors import PayloadTooLarge, ProblemError, UnsupportedMediaType
from mintlog.http.app import create_app
from mintlog.http.guards import make_requires
from mintlog.http.ratelimit import KeyRateLimits
from mintlog.metrics import Metrics
from mintlog.roles.ingest.decoders.loki import LokiDecoder, parse_labels
from mintlog.roles.ingest.decoders.loki_proto import PushRequest
from mintlog.roles.ingest.loki_routes import loki_routes
from mintlog.roles.ingest.routes import IngestRequests
from mintlog.roles.ingest.service import IngestService
from mintlog.settings import IngestSettings, RateLimitSettings
from tests.fakes import FakeIdempotencyStore, FakeKeyMetadata

NS = 1_764_158_400_123_456_789  # 2025-11-26T12:00:00.123456789Z
JSON = {"content-type": "application/json"}
PROTOBUF = {"content-type": "application/x-protobuf"}
DECODER = LokiDecoder(max_decompressed_bytes=64 * 1024)


def protobuf_push(streams: list[dict[str, Any]]) -> bytes:
    """A snappy-compressed `logproto.PushRequest`, as Promtail, Alloy and winston-loki send it."""
    return bytes(cramjam.snappy.compress_raw(PushRequest(streams=streams).SerializeToString()))


def json_push(*streams: tuple[dict[str, str], list[list[Any]]]) -> bytes:
    return json.dumps({"streams": [{"stream": labels, "values": values} for labels, values in streams]}).encode()


def refusal(body: bytes, headers: Mapping[str, str], decoder: LokiDecoder = DECODER) -> ProblemError:
    with pytest.raises(ProblemError) as refused:
        decoder.decode(body, headers)
    return refused.value


# The decoder


def test_json_entries_become_events_with_service_host_level_from_labels_and_the_other_labels_as_fields() -> None:
    labels = {"job": "checkout", "instance": "web-1", "level": "warn", "env": "prod"}
    body = json_push((labels, [[str(NS), "payment slow"], [str(NS + 1), "retrying", {"attempt": "2"}]]))

    events = DECODER.decode(body, JSON)

    assert events == [
        {
            "service": "checkout",
            "host": "web-1",
            "level": "warn",
            "fields": {"env": "prod"},
            "message": "payment slow",
            "timestamp": NS,
        },
        {
            "service": "checkout",
            "host": "web-1",
            "level": "warn",
            "fields": {"env": "prod", "attempt": "2"},
            "message": "retrying",
            "timestamp": NS + 1,
        },
    ]


def test_protobuf_entries_become_events_with_structured_metadata_and_trace_ids() -> None:
    body = protobuf_push(
        [
            {
                "labels": '{service_name="api", job="ignored-for-service", hostname="db-2", detected_level="error"}',
                "entries": [
                    {
                        "timestamp": {"seconds": NS // 10**9, "nanos": NS % 10**9},
                        "line": "query failed",
                        "structuredMetadata": [
                            {"name": "trace_id", "value": "4bf92f3577b34da6a3ce929d0e0e4736"},
                            {"name": "span_id", "value": "00f067aa0ba902b7"},
                            {"name": "user", "value": "42"},
                        ],
                    },
                    {"line": "no time of its own"},
                ],
            },
            {"labels": '{app="worker", node="n1", lvl="debug"}', "entries": [{"line": "tick"}]},
        ]
    )

    first, second, third = DECODER.decode(body, PROTOBUF)

    stream_fields = {"job": "ignored-for-service"}  # the labels that gave service, host and level are not repeated
    assert first == {
        "service": "api",
        "host": "db-2",
        "level": "error",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "span_id": "00f067aa0ba902b7",
        "fields": {**stream_fields, "user": "42"},
        "message": "query failed",
        "timestamp": NS,
    }
    assert second == {
        "service": "api",
        "host": "db-2",
        "level": "error",
        "fields": stream_fields,
        "message": "no time of its own",
    }
    assert (third["service"], third["host"], third["level"], third["message"]) == ("worker", "n1", "debug", "tick")


def test_structured_metadata_may_name_the_service_host_and_level_too_and_wins_over_labels() -> None:
    body = json_push(({"job": "api", "level": "info"}, [[str(NS), "x", {"level": "error", "node": "n2", "k": "v"}]]))

    [event] = DECODER.decode(body, JSON)

    assert (event["service"], event["host"], event["level"]) == ("api", "n2", "error")
    assert event["fields"] == {"k": "v"}


def test_service_comes_from_service_name_then_service_then_job_then_app() -> None:
    def service_of(labels: dict[str, str]) -> str | None:
        [event] = DECODER.decode(json_push((labels, [[str(NS), "x"]])), JSON)
        return event.get("service")

    everything = {"app": "d", "job": "c", "service": "b", "service_name": "a"}
    assert service_of(everything) == "a"
    assert service_of({**everything, "service_name": ""}) == "b"
    assert service_of({"app": "d", "job": "c"}) == "c"
    assert service_of({"app": "d", "env": "prod"}) == "d"
    assert service_of({"env": "prod"}) is None  # the pipeline's default service then


def test_old_and_unambiguous_timestamps_keep_their_instant() -> None:
    body = json_push(({"job": "x"}, [["1000000000", "one second after the epoch"], [str(NS), "now"]]))

    early, late = DECODER.decode(body, JSON)

    assert early["timestamp"] == "1970-01-01T00:00:01+00:00"  # as digits it would read as 2001 (seconds)
    assert late["timestamp"] == NS


def test_a_gzip_json_body_and_a_json_type_with_parameters_decode_like_plain_json() -> None:
    body = json_push(({"job": "x"}, [[str(NS), "hello"]]))
    assert DECODER.decode(body, {"content-type": "application/json; charset=utf-8"})[0]["message"] == "hello"
    assert gzip.decompress(gzip.compress(body)) == body  # the body reader decompresses; see the route tests


def test_a_push_without_content_type_is_read_as_snappy_protobuf_like_loki_does() -> None:
    body = protobuf_push([{"labels": '{job="x"}', "entries": [{"line": "hi"}]}])
    DECODER.check_content_type(None)
    assert DECODER.decode(body, {})[0]["message"] == "hi"


def test_other_content_types_are_415() -> None:
    with pytest.raises(UnsupportedMediaType):
        DECODER.check_content_type("text/plain")


def test_label_strings_are_read_like_loki_with_escapes() -> None:
    assert parse_labels('{job="api", msg="say \\"hi\\"\\n", path=`C:\\x`}') == (
        ("job", "api"),
        ("msg", 'say "hi"\n'),
        ("path", "C:\\x"),
    )


@pytest.mark.parametrize(
    ("labels", "code"),
    [
        ("{}", "missing_labels"),
        ("", "missing_labels"),
        ('{job="x"', "bad_labels"),
        ("{job=x}", "bad_labels"),
        ('{job=~"x"}', "bad_labels"),
        ('{a="1", a="2"}', "bad_labels"),
        ('{job="x"} trailing', "bad_labels"),
    ],
)
def test_a_stream_with_missing_or_unreadable_labels_refuses_the_push(labels: str, code: str) -> None:
    body = protobuf_push([{"labels": labels, "entries": [{"line": "x"}]}])
    error = refusal(body, PROTOBUF)
    assert (error.status, error.code) == (400, code)
    if code == "missing_labels":
        assert error.detail == "error at least one label pair is required per stream"


def test_a_json_stream_without_labels_refuses_the_push_with_loki_s_message() -> None:
    error = refusal(json_push(({}, [[str(NS), "x"]])), JSON)
    assert (error.code, error.detail) == ("missing_labels", "error at least one label pair is required per stream")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"   ", "empty_body"),
        (b'{"streams": [', "malformed_json"),
        (b'{"streams": [{"stream": {"job": "\xff"}, "values": []}]}', "malformed_json"),
        (b'{"streams": {"job": "x"}}', "wrong_shape"),
        (b'{"streams": [{"stream": {"job": "x"}, "values": [["1"]]}]}', "wrong_shape"),
        (b'{"streams": [{"stream": {"job": "x"}, "values": [["1", "x", "y"]]}]}', "wrong_shape"),
        (b'{"streams": [{"stream": {"job": "x"}, "values": [[1, "x"]]}]}', "wrong_shape"),
        (b'{"streams": [{"stream": {"job": "x"}, "values": [["soon", "x"]]}]}', "bad_timestamp"),
        (b'{"streams": [{"stream": {"job": "x"}, "values": [["99999999999999999999", "x"]]}]}', "bad_timestamp"),
    ],
)
def test_unreadable_json_is_400(body: bytes, code: str) -> None:
    error = refusal(body, JSON)
    assert (error.status, error.code) == (400, code)


def test_bad_snappy_truncated_protobuf_and_invalid_utf8_are_400() -> None:
    push = PushRequest(streams=[{"labels": '{job="x"}', "entries": [{"line": "hello"}]}]).SerializeToString()
    assert refusal(b"not snappy at all", PROTOBUF).code == "bad_snappy"
    assert refusal(protobuf_push([{"labels": '{job="x"}', "entries": [{"line": "x" * 100}]}])[:-10], PROTOBUF).code == (
        "bad_snappy"
    )
    assert refusal(bytes(cramjam.snappy.compress_raw(push[:-3])), PROTOBUF).code == "malformed_protobuf"
    invalid_utf8 = bytes(cramjam.snappy.compress_raw(push.replace(b"hello", b"h\xffllo")))
    assert refusal(invalid_utf8, PROTOBUF).code == "malformed_protobuf"


def test_a_snappy_block_claiming_more_than_the_body_limit_is_413_before_decompressing() -> None:
    small = LokiDecoder(max_decompressed_bytes=1000)
    body = protobuf_push([{"labels": '{job="x"}', "entries": [{"line": "x" * 2000}]}])
    error = refusal(body, PROTOBUF, small)
    assert isinstance(error, PayloadTooLarge)
    assert error.code == "decompressed_body_too_large"


def test_streams_without_entries_bring_no_events() -> None:
    body = json_push(({}, []), ({"job": "x"}, []))
    assert DECODER.decode(body, JSON) == []
    assert DECODER.decode(protobuf_push([{"labels": "{}"}]), PROTOBUF) == []


# The route

RECENT = str(time.time_ns())  # inside the default retention of 30 days


@dataclass
class Loki:
    client: AsyncTestClient[Any]
    bus: MemoryEventBus
    metrics: Metrics
    key: str
    keys: FakeKeyMetadata

    def batches(self) -> list[RawBatch]:
        return [decode_raw_batch(message.data) for message in self.bus.broker.stream("LOGS_RAW").messages.values()]

    async def push(self, body: bytes, content_type: str = "application/json", **headers: str) -> Any:
        return await self.client.post(
            "/loki/api/v1/push",
            content=body,
            headers={"X-API-Key": self.key, "Content-Type": content_type, **headers},
        )


QUOTA = RateLimitSettings(tenant_ingest_events_per_second=5, burst_seconds=1, default_key_requests_per_minute=6000)


@pytest.fixture
async def loki() -> AsyncIterator[Loki]:
    keys, metrics, bus = FakeKeyMetadata(), Metrics(), MemoryEventBus()
    await bus.start()
    limiter = MemoryRateLimiter()
    authenticator = Authenticator(keys, MemoryCache(), ttl_seconds=300)  # type: ignore[arg-type]
    requires = make_requires(authenticator, rate_limits=KeyRateLimits(limiter, QUOTA, metrics))
    service = IngestService(
        bus=bus,
        idempotency=FakeIdempotencyStore(),
        limits=IngestSettings(max_message_bytes=100),
        limiter=limiter,
        rate_limits=QUOTA,
        metrics=metrics,
    )
    routes = loki_routes(IngestRequests(service, max_body_bytes=4096, metrics=metrics), requires=requires)
    app = create_app(server="test", route_handlers=routes, metrics=metrics, readiness_checks={})
    async with AsyncTestClient(app=app) as client:
        yield Loki(client, bus, metrics, keys.add()[0], keys)
    await bus.close()


def assert_loki_text(response: Any, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    for word in words:
        assert word in response.text


async def test_a_json_push_is_204_with_an_empty_body_once_durable_with_source_loki(loki: Loki) -> None:
    response = await loki.push(json_push(({"job": "api"}, [[RECENT, "one"], [RECENT, "two"]])))

    assert (response.status_code, response.content) == (204, b"")
    [batch] = loki.batches()
    assert batch.source == "loki"
    assert [event["message"] for event in batch.events] == ["one", "two"]


async def test_a_snappy_protobuf_push_and_a_gzip_json_push_are_stored(loki: Loki) -> None:
    protobuf = protobuf_push([{"labels": '{job="api"}', "entries": [{"line": "from protobuf"}]}])
    assert (await loki.push(protobuf, "application/x-protobuf")).status_code == 204
    gzipped = gzip.compress(json_push(({"job": "api"}, [[RECENT, "from gzip json"]])))
    assert (await loki.push(gzipped, "application/json", **{"Content-Encoding": "gzip"})).status_code == 204

    assert [batch.events[0]["message"] for batch in loki.batches()] == ["from protobuf", "from gzip json"]


async def test_rejected_entries_are_named_in_a_400_while_the_others_are_stored(loki: Loki) -> None:
    values = [[RECENT, "fine"], [RECENT, "x" * 101], [RECENT, "also fine"]]

    response = await loki.push(json_push(({"job": "api"}, values)))

    assert_loki_text(response, 400, "1 of 3 entries were rejected", "entry 1:", "`message`")
    [batch] = loki.batches()
    assert [event["message"] for event in batch.events] == ["fine", "also fine"]
    assert loki.metrics.registry.get_sample_value("mintlog_ingest_events_rejected_total", {"reason": "too_long"}) == 1


async def test_a_push_whose_every_entry_is_rejected_is_400_text_and_stores_nothing(loki: Loki) -> None:
    response = await loki.push(json_push(({"job": "api"}, [[RECENT, "x" * 101]])))

    assert_loki_text(response, 400, "every event of the batch was rejected", "entry 0:")
    assert loki.batches() == []


@pytest.mark.parametrize(
    ("body", "content_type", "words"),
    [
        (b'{"streams": [', "application/json", "not valid JSON"),
        (b"\x00\x01garbage", "application/x-protobuf", "snappy"),
        (json_push(({}, [[RECENT, "x"]])), "application/json", "error at least one label pair is required per stream"),
    ],
    ids=["malformed-json", "garbage-protobuf", "no-labels"],
)
async def test_bad_bodies_get_loki_s_plain_text_400_and_store_nothing(
    loki: Loki, body: bytes, content_type: str, words: str
) -> None:
    assert_loki_text(await loki.push(body, content_type), 400, words)
    assert loki.batches() == []


async def test_an_oversized_body_is_413_an_unknown_type_415_and_no_key_401_all_as_text(loki: Loki) -> None:
    big = json_push(({"job": "api"}, [[RECENT, "x" * 90] for _ in range(60)]))
    assert_loki_text(await loki.push(big), 413, "limit")
    assert_loki_text(await loki.push(b"hello", "text/plain"), 415, "application/x-protobuf")
    unauthenticated = await loki.client.post("/loki/api/v1/push", content=b"{}", headers={"X-API-Key": "mlk_nope"})
    assert_loki_text(unauthenticated, 401)
    assert "www-authenticate" in unauthenticated.headers
    wrong_scope, _ = loki.keys.add(scopes=("search:logs",))
    assert_loki_text(await loki.push(b"{}", **{"X-API-Key": wrong_scope}), 403, "ingest:logs")
    assert loki.batches() == []


async def test_over_the_tenant_quota_is_429_text_with_retry_after(loki: Loki) -> None:
    values = [[RECENT, f"line {i}"] for i in range(5)]
    assert (await loki.push(json_push(({"job": "api"}, values)))).status_code == 204

    refused = await loki.push(json_push(({"job": "api"}, values)))

    assert_loki_text(refused, 429, "quota")
    assert int(refused.headers["retry-after"]) >= 1
    assert len(loki.batches()) == 1


async def test_a_push_without_entries_is_204_like_loki(loki: Loki) -> None:
    response = await loki.push(b'{"streams": []}')
    assert (response.status_code, response.content) == (204, b"")
    assert loki.batches() == []


async def test_basic_auth_with_the_key_as_password_is_what_promtail_and_alloy_send(loki: Loki) -> None:
    basic = base64.b64encode(f"tenant-1:{loki.key}".encode()).decode()
    body = json_push(({"job": "api"}, [[RECENT, "via basic auth"]]))

    response = await loki.client.post(
        "/loki/api/v1/push",
        content=body,
        headers={"Authorization": f"Basic {basic}", "Content-Type": "application/json"},
    )

    assert response.status_code == 204
    assert [batch.events[0]["message"] for batch in loki.batches()] == ["via basic auth"]


async def test_the_openapi_document_gives_both_body_types_the_204_and_plain_text_errors(loki: Loki) -> None:
    document = (await loki.client.get("/schema/openapi.json")).json()
    operation = document["paths"]["/loki/api/v1/push"]["post"]

    assert sorted(operation["requestBody"]["content"]) == ["application/json", "application/x-protobuf"]
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/LokiPushJson"
    }
    assert "content" not in operation["responses"]["204"]
    errors = {status: answer for status, answer in operation["responses"].items() if status >= "400"}
    assert sorted(errors) == ["400", "401", "403", "408", "413", "415", "429", "503"]
    assert all(list(answer["content"]) == ["text/plain"] for answer in errors.values())
