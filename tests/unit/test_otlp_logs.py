"""OTLP/HTTP logs: the decoder (protobuf and OTLP/JSON → events, then normalized as the pipeline does) and the
route's OTLP-shaped answers, with fakes (an in-process app, the memory bus, a fake key store)."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from google.rpc.status_pb2 import Status
from litestar.testing import AsyncTestClient
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs, SeverityNumber
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from mintlog.adapters.bus.memory import MemoryEventBus
from mintlog.adapters.cache.memory import MemoryCache
from mintlog.adapters.ratelimit.memory import MemoryRateLimiter
from mintlog.auth import Authenticator
from mintlog.domain.events import LogEvent, RawBatch
from mintlog.domain.normalize import normalize_event
from mintlog.domain.streams import decode_raw_batch
from mintlog.errors import BadRequest, ProblemError, UnsupportedMediaType
from mintlog.http.app import create_app
from mintlog.http.guards import make_requires
from mintlog.http.ratelimit import KeyRateLimits
from mintlog.metrics import Metrics
from mintlog.roles.ingest.decoders.otlp import OTLP
from mintlog.roles.ingest.otlp_routes import otlp_routes
from mintlog.roles.ingest.routes import IngestRequests
from mintlog.roles.ingest.service import IngestService
from mintlog.settings import IngestSettings, RateLimitSettings
from tests.fakes import FakeIdempotencyStore, FakeKeyMetadata

NS = 1_764_158_400_123_456_789  # 2025-11-26T12:00:00.123456789Z
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"
PROTOBUF = {"content-type": "application/x-protobuf"}
JSON = {"content-type": "application/json"}
RECEIVED_AT = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def text(value: str) -> AnyValue:
    return AnyValue(string_value=value)


def pairs(**values: AnyValue) -> list[KeyValue]:
    return [KeyValue(key=key.replace("__", "."), value=value) for key, value in values.items()]


def protobuf_request(*records: LogRecord, resource: list[KeyValue] | None = None, **scope: Any) -> bytes:
    """An `ExportLogsServiceRequest` as an OpenTelemetry SDK sends it: one resource, one scope."""
    request = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=Resource(attributes=resource if resource is not None else pairs(service__name=text("api"))),
                scope_logs=[ScopeLogs(scope=InstrumentationScope(**scope), log_records=list(records))],
            )
        ]
    )
    return request.SerializeToString()


def normalized(event: dict[str, Any]) -> LogEvent:
    return normalize_event(
        event,
        tenant_id="t",
        event_id="e",
        received_at=RECEIVED_AT,
        source="otlp",
        default_service="default",
        default_host="unknown",
    )


# The decoder: protobuf


def test_a_protobuf_record_maps_resource_scope_severity_time_ids_body_and_attributes() -> None:
    body = protobuf_request(
        LogRecord(
            time_unix_nano=NS,
            observed_time_unix_nano=NS + 5,
            severity_number=SeverityNumber.SEVERITY_NUMBER_ERROR,
            severity_text="ERROR",
            body=text("payment failed"),
            attributes=pairs(user__id=AnyValue(int_value=42), retry=AnyValue(bool_value=True)),
            trace_id=bytes.fromhex(TRACE_ID),
            span_id=bytes.fromhex(SPAN_ID),
        ),
        resource=pairs(
            service__name=text("checkout"),
            host__name=text("web-1"),
            service__version=text("1.4.2"),
            deployment__environment=text("prod"),
        ),
        name="checkout.payments",
        version="2.0",
        attributes=pairs(team=text("payments")),
    )

    [event] = OTLP.decode(body, PROTOBUF)

    assert event == {
        "service": "checkout",
        "host": "web-1",
        "message": "payment failed",
        "severity_number": 17,
        "severity_text": "ERROR",
        "timestamp": NS,
        "trace_id": TRACE_ID,
        "span_id": SPAN_ID,
        "fields": {
            "resource.service.version": "1.4.2",
            "resource.deployment.environment": "prod",
            "scope.name": "checkout.payments",
            "scope.version": "2.0",
            "scope.team": "payments",
            "user.id": 42,
            "retry": True,
            "time_unix_nano": NS,
        },
    }
    stored = normalized(event)
    assert (stored.service, stored.host, stored.level) == ("checkout", "web-1", "error")
    assert stored.timestamp == datetime(2025, 11, 26, 12, 0, 0, 123456, tzinfo=UTC)
    assert (stored.trace_id, stored.span_id, stored.message) == (TRACE_ID, SPAN_ID, "payment failed")
    assert stored.fields["severity_text"] == "ERROR"
    assert stored.fields["resource.service.version"] == "1.4.2"


@pytest.mark.parametrize(
    ("severity_number", "severity_text", "level"),
    [
        (1, "", "trace"),
        (4, "", "trace"),
        (5, "", "debug"),
        (9, "", "info"),
        (12, "", "info"),
        (13, "", "warn"),
        (17, "", "error"),
        (21, "", "fatal"),
        (24, "", "fatal"),
        (0, "WARNING", "warn"),
        (0, "critical", "fatal"),
        (13, "info", "warn"),  # the number wins; the text stays in fields
    ],
)
def test_severity_number_ranges_and_severity_text_become_the_level(
    severity_number: int, severity_text: str, level: str
) -> None:
    record = LogRecord(severity_number=severity_number, severity_text=severity_text, body=text("x"))  # type: ignore[arg-type]
    [event] = OTLP.decode(protobuf_request(record), PROTOBUF)
    assert normalized(event).level == level


def test_the_observed_time_stands_in_for_a_missing_time_and_no_time_at_all_is_the_receive_time() -> None:
    micros = 1_764_158_400_123_456_000  # no nanoseconds below the microsecond: nothing extra kept
    observed, timeless = OTLP.decode(
        protobuf_request(LogRecord(observed_time_unix_nano=micros, body=text("a")), LogRecord(body=text("b"))),
        PROTOBUF,
    )
    assert observed["timestamp"] == micros
    assert "time_unix_nano" not in observed["fields"]
    assert normalized(observed).timestamp == datetime(2025, 11, 26, 12, 0, 0, 123456, tzinfo=UTC)
    assert "timestamp" not in timeless
    assert normalized(timeless).timestamp == RECEIVED_AT


def test_host_falls_back_to_the_pod_name_then_the_host_id_which_stay_in_fields() -> None:
    pod = pairs(service__name=text("api"), k8s__pod__name=text("api-7d9f"), host__id=text("i-0abc"))
    [from_pod] = OTLP.decode(protobuf_request(LogRecord(body=text("x")), resource=pod), PROTOBUF)
    assert from_pod["host"] == "api-7d9f"
    assert from_pod["fields"]["resource.k8s.pod.name"] == "api-7d9f"

    [from_id] = OTLP.decode(
        protobuf_request(LogRecord(body=text("x")), resource=pairs(host__id=text("i-0abc"))), PROTOBUF
    )
    assert (from_id["host"], "service" in from_id) == ("i-0abc", False)
    assert normalized(from_id).service == "default"


def test_a_map_body_is_json_text_lifted_into_fields_and_other_bodies_are_json_text() -> None:
    map_body = AnyValue(
        kvlist_value=KeyValueList(
            values=pairs(event=text("login"), user=AnyValue(int_value=7), ok=AnyValue(bool_value=True))
        )
    )
    array_body = AnyValue(array_value=ArrayValue(values=[text("a"), AnyValue(double_value=1.5)]))
    records = [LogRecord(body=map_body), LogRecord(body=array_body), LogRecord(body=AnyValue(int_value=3))]

    as_map, as_array, as_number = OTLP.decode(protobuf_request(*records), PROTOBUF)

    assert json.loads(as_map["message"]) == {"event": "login", "user": 7, "ok": True}
    lifted = normalized(as_map)
    assert (lifted.fields["event"], lifted.fields["user"], lifted.fields["ok"]) == ("login", 7, True)
    assert as_array["message"] == '["a",1.5]'
    assert as_number["message"] == "3"


def test_any_values_become_json_values() -> None:
    attributes = pairs(
        raw=AnyValue(bytes_value=b"\x00\xff"),
        nan=AnyValue(double_value=float("nan")),
        inf=AnyValue(double_value=float("-inf")),
        nested=AnyValue(
            kvlist_value=KeyValueList(values=pairs(a=AnyValue(array_value=ArrayValue(values=[text("x")]))))
        ),
        empty=AnyValue(),
    )
    [event] = OTLP.decode(protobuf_request(LogRecord(body=text("x"), attributes=attributes)), PROTOBUF)
    fields = event["fields"]
    assert (fields["raw"], fields["nan"], fields["inf"], fields["nested"]) == ("AP8=", "NaN", "-Infinity", {"a": ["x"]})
    assert "empty" not in fields


def test_all_zero_ids_and_an_empty_request_carry_nothing() -> None:
    [event] = OTLP.decode(protobuf_request(LogRecord(body=text("x"), trace_id=bytes(16), span_id=bytes(8))), PROTOBUF)
    assert "trace_id" not in event
    assert "span_id" not in event
    assert OTLP.decode(b"", PROTOBUF) == []


def test_records_of_several_resources_and_scopes_come_in_request_order() -> None:
    request = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=Resource(attributes=pairs(service__name=text(service))),
                scope_logs=[
                    ScopeLogs(
                        scope=InstrumentationScope(name=scope),
                        log_records=[LogRecord(body=text(f"{service}/{scope}/{n}")) for n in range(2)],
                    )
                    for scope in ("s1", "s2")
                ],
            )
            for service in ("a", "b")
        ]
    )
    events = OTLP.decode(request.SerializeToString(), PROTOBUF)
    assert [event["message"] for event in events] == [
        f"{service}/{scope}/{n}" for service in ("a", "b") for scope in ("s1", "s2") for n in range(2)
    ]
    assert [event["service"] for event in events] == ["a"] * 4 + ["b"] * 4


@pytest.mark.parametrize(
    "body",
    [
        protobuf_request(LogRecord(body=text("x" * 50)))[:-10],  # truncated
        b"\xff\xff\xff\xff",  # not protobuf
        protobuf_request(LogRecord(body=text("é"))).replace("é".encode(), b"\xc3\x28"),  # a string that is not UTF-8
    ],
    ids=["truncated", "garbage", "invalid-utf8"],
)
def test_an_unreadable_protobuf_body_is_refused_whole(body: bytes) -> None:
    with pytest.raises(BadRequest) as refused:
        OTLP.decode(body, PROTOBUF)
    assert refused.value.code == "malformed_protobuf"


# The decoder: OTLP/JSON


def json_request(*records: dict[str, Any], resource: list[dict[str, Any]] | None = None) -> bytes:
    """OTLP/JSON written by hand as the specification says: lowerCamelCase, hex ids, int64 as strings."""
    attributes = resource if resource is not None else [{"key": "service.name", "value": {"stringValue": "api"}}]
    return json.dumps(
        {
            "resourceLogs": [
                {
                    "resource": {"attributes": attributes},
                    "scopeLogs": [{"scope": {"name": "app.module"}, "logRecords": list(records)}],
                }
            ]
        }
    ).encode()


def test_an_otlp_json_record_maps_like_the_protobuf_one() -> None:
    record = {
        "timeUnixNano": str(NS),
        "severityNumber": 13,
        "severityText": "WARN",
        "body": {"stringValue": "disk almost full"},
        "attributes": [
            {"key": "disk.free", "value": {"intValue": "1024"}},
            {"key": "ratio", "value": {"doubleValue": 0.97}},
            {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"boolValue": False}]}}},
        ],
        "traceId": TRACE_ID,
        "spanId": SPAN_ID,
        "flags": 1,
        "somethingNew": {"ignored": True},
    }
    resource = [
        {"key": "service.name", "value": {"stringValue": "storage"}},
        {"key": "host.name", "value": {"stringValue": "db-1"}},
    ]

    [event] = OTLP.decode(json_request(record, resource=resource), JSON)

    assert event == {
        "service": "storage",
        "host": "db-1",
        "message": "disk almost full",
        "severity_number": 13,
        "severity_text": "WARN",
        "timestamp": NS,
        "trace_id": TRACE_ID,
        "span_id": SPAN_ID,
        "fields": {
            "scope.name": "app.module",
            "disk.free": 1024,
            "ratio": 0.97,
            "tags": ["a", False],
            "time_unix_nano": NS,
        },
    }
    assert normalized(event).level == "warn"


def test_otlp_json_takes_proto_field_names_enum_names_and_int64_numbers_too() -> None:
    record = {
        "time_unix_nano": NS,
        "severity_number": "SEVERITY_NUMBER_ERROR",
        "body": {"string_value": "old style"},
        "trace_id": TRACE_ID,
    }
    body = json.dumps({"resource_logs": [{"scope_logs": [{"log_records": [record]}]}]}).encode()
    [event] = OTLP.decode(body, {"content-type": "application/json; charset=utf-8"})
    assert (event["timestamp"], event["severity_number"], event["trace_id"]) == (NS, 17, TRACE_ID)
    assert event["message"] == "old style"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"resourceLogs": [', "malformed_json"),
        (b'{"resourceLogs": []}\xff', "malformed_json"),
        (
            b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "\xff\xfe"}}]}]}]}',
            "malformed_json",
        ),
        (b"[]", "wrong_shape"),
        (b'{"resourceLogs": {"not": "a list"}}', "wrong_shape"),
        (b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": "soon"}]}]}]}', "wrong_shape"),
        (json_request({"body": {"stringValue": "x"}, "traceId": "S0/1bZ4Fzh7a9ZHbAj2w5w=="}), "bad_id"),
    ],
    ids=["truncated", "trailing-garbage", "invalid-utf8", "not-an-object", "wrong-type", "bad-int64", "base64-id"],
)
def test_unreadable_otlp_json_is_refused_whole(body: bytes, code: str) -> None:
    with pytest.raises(BadRequest) as refused:
        OTLP.decode(body, JSON)
    assert refused.value.code == code


def test_only_protobuf_and_json_are_accepted() -> None:
    OTLP.check_content_type("application/x-protobuf")
    OTLP.check_content_type("Application/JSON; charset=utf-8")
    for content_type in ("text/plain", "application/x-ndjson", None):
        with pytest.raises(UnsupportedMediaType):
            OTLP.check_content_type(content_type)


# The route


QUOTA = RateLimitSettings(tenant_ingest_events_per_second=5, burst_seconds=1, default_key_requests_per_minute=6000)


@dataclass
class Otlp:
    client: AsyncTestClient[Any]
    bus: MemoryEventBus
    key: str
    keys: FakeKeyMetadata

    def batches(self) -> list[RawBatch]:
        return [decode_raw_batch(message.data) for message in self.bus.broker.stream("LOGS_RAW").messages.values()]

    async def export(self, body: bytes, content_type: str = "application/x-protobuf", **headers: str) -> Any:
        return await self.client.post(
            "/v1/logs", content=body, headers={"X-API-Key": self.key, "Content-Type": content_type, **headers}
        )


@pytest.fixture
async def otlp() -> AsyncIterator[Otlp]:
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
    routes = otlp_routes(IngestRequests(service, max_body_bytes=4096, metrics=metrics), requires=requires)
    app = create_app(server="test", route_handlers=routes, metrics=metrics, readiness_checks={})
    async with AsyncTestClient(app=app) as client:
        yield Otlp(client, bus, keys.add()[0], keys)
    await bus.close()


def protobuf_status(response: Any, status: int) -> Status:
    assert response.status_code == status, response.content
    assert response.headers["content-type"] == "application/x-protobuf"
    return Status.FromString(response.content)


def json_status(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert set(answer) == {"code", "message"}
    return answer


async def test_a_protobuf_export_is_200_with_an_empty_response_once_durable_with_source_otlp(otlp: Otlp) -> None:
    response = await otlp.export(protobuf_request(LogRecord(body=text("one")), LogRecord(body=text("two"))))

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    assert not ExportLogsServiceResponse.FromString(response.content).HasField("partial_success")
    [batch] = otlp.batches()
    assert batch.source == "otlp"
    assert [event["message"] for event in batch.events] == ["one", "two"]


async def test_a_gzip_json_export_is_200_with_an_empty_json_response(otlp: Otlp) -> None:
    body = gzip.compress(json_request({"body": {"stringValue": "from json"}}))

    response = await otlp.export(body, "application/json", **{"Content-Encoding": "gzip"})

    assert (response.status_code, response.headers["content-type"], response.json()) == (200, "application/json", {})
    assert [batch.events[0]["message"] for batch in otlp.batches()] == ["from json"]


async def test_rejected_records_are_a_partial_success_in_the_request_encoding_and_the_others_stored(otlp: Otlp) -> None:
    records = [LogRecord(body=text("fine")), LogRecord(body=text("x" * 101)), LogRecord(body=text("also fine"))]

    response = await otlp.export(protobuf_request(*records))

    assert response.status_code == 200
    partial = ExportLogsServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_log_records == 1
    assert "log record 1:" in partial.error_message
    assert "`message`" in partial.error_message
    [batch] = otlp.batches()
    assert [event["message"] for event in batch.events] == ["fine", "also fine"]

    as_json = await otlp.export(
        json_request({"body": {"stringValue": "ok"}}, {"body": {"stringValue": "y" * 101}}), "application/json"
    )
    assert as_json.status_code == 200
    answer = as_json.json()["partialSuccess"]
    assert answer["rejectedLogRecords"] == "1"
    assert "log record 1:" in answer["errorMessage"]


async def test_an_export_whose_every_record_is_rejected_is_a_400_status_and_stores_nothing(otlp: Otlp) -> None:
    status = protobuf_status(await otlp.export(protobuf_request(LogRecord(body=text("x" * 101)))), 400)
    assert status.code == 3
    assert "log record 0:" in status.message
    assert otlp.batches() == []


@pytest.mark.parametrize(
    ("body", "content_type", "words"),
    [
        (protobuf_request(LogRecord(body=text("x" * 50)))[:-10], "application/x-protobuf", "truncated"),
        (b'{"resourceLogs": [', "application/json", "not valid JSON"),
        (b"not gzip at all", "application/x-protobuf", "gzip"),
    ],
    ids=["truncated-protobuf", "bad-json", "bad-gzip"],
)
async def test_bad_bodies_get_a_400_status_in_the_request_encoding_and_store_nothing(
    otlp: Otlp, body: bytes, content_type: str, words: str
) -> None:
    headers = {"Content-Encoding": "gzip"} if words == "gzip" else {}
    response = await otlp.export(body, content_type, **headers)
    if content_type == "application/json":
        assert words in json_status(response, 400)["message"]
    else:
        status = protobuf_status(response, 400)
        assert (status.code, words in status.message) == (3, True)
    assert otlp.batches() == []


async def test_size_type_and_key_errors_are_otlp_statuses_never_problem_json(otlp: Otlp) -> None:
    big = protobuf_request(*[LogRecord(body=text("x" * 90)) for _ in range(60)])
    assert protobuf_status(await otlp.export(big), 413).code == 3
    assert json_status(await otlp.export(b"hello", "text/plain"), 415)["code"] == 3
    unauthenticated = await otlp.client.post(
        "/v1/logs", content=b"", headers={"X-API-Key": "mlk_nope", "Content-Type": "application/x-protobuf"}
    )
    assert protobuf_status(unauthenticated, 401).code == 16
    wrong_scope, _ = otlp.keys.add(scopes=("search:logs",))
    forbidden = json_status(await otlp.export(b"{}", "application/json", **{"X-API-Key": wrong_scope}), 403)
    assert (forbidden["code"], "ingest:logs" in forbidden["message"]) == (7, True)
    assert otlp.batches() == []


async def test_over_the_tenant_quota_is_429_with_retry_after_which_otlp_exporters_retry(otlp: Otlp) -> None:
    records = [LogRecord(body=text(f"line {n}")) for n in range(5)]
    assert (await otlp.export(protobuf_request(*records))).status_code == 200

    refused = await otlp.export(protobuf_request(*records))

    assert protobuf_status(refused, 429).code == 8
    assert int(refused.headers["retry-after"]) >= 1
    assert len(otlp.batches()) == 1


async def test_an_export_without_records_is_200(otlp: Otlp) -> None:
    response = await otlp.export(b"")
    assert (response.status_code, response.content) == (200, b"")
    assert (await otlp.export(b"{}", "application/json")).json() == {}
    assert otlp.batches() == []


def test_every_refusal_of_the_decoder_is_a_problem_error_the_route_can_answer() -> None:
    with pytest.raises(ProblemError):
        OTLP.decode(b"\x0a\xff", PROTOBUF)


async def test_the_ingest_document_describes_both_encodings_and_the_otlp_status_errors(otlp: Otlp) -> None:
    response = await otlp.client.get("/schema/openapi.json")
    assert response.status_code == 200
    operation = response.json()["paths"]["/v1/logs"]["post"]
    both = {"application/x-protobuf", "application/json"}

    assert set(operation["requestBody"]["content"]) == both
    assert set(operation["responses"]["200"]["content"]) == both
    for status in ("400", "401", "413", "415", "429", "503"):
        content = operation["responses"][status]["content"]
        assert set(content) == both
        assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/OtlpStatus"}
