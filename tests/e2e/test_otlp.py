"""OTLP/HTTP logs end to end: the OpenTelemetry Python SDK's OTLP/HTTP log exporters (protobuf and JSON), configured
only by the standard environment variables, export to a real `mintlog run`, and the records are found by search with
the right service, host, level, timestamp, trace context and fields; bad bodies get OTLP-shaped answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs, SeverityNumber
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from tests.e2e.harness import MintlogProcess

pytestmark = pytest.mark.e2e

SDK_APP = Path(__file__).with_name("otlp_sdk_app.py")
LEVELS = {
    "cart loaded": "debug",
    "payment authorized": "info",
    "stock low": "warn",
    "shipping quote failed": "error",
    "order lost": "fatal",
}


def run_sdk_app(otel_env: dict[str, str]) -> dict[str, str]:
    """Run the instrumented app with only `otel_env` as its OpenTelemetry configuration; its span's ids."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "MINTLOG_"))}
    env.update(
        {
            "OTEL_LOGS_EXPORTER": "otlp_proto_http",
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED": "true",
            "OTEL_RESOURCE_ATTRIBUTES": "host.name=sdk-host-1,deployment.environment=e2e",
            **otel_env,
        }
    )
    started = time.time()
    finished = subprocess.run(
        [sys.executable, str(SDK_APP)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert finished.returncode == 0, finished.stderr
    exporter_complaints = [line for line in finished.stderr.splitlines() if " opentelemetry." in line]
    assert exporter_complaints == [], finished.stderr
    assert time.time() - started < 30  # nothing was retried for long
    return json.loads(finished.stdout.strip().splitlines()[-1])


def found_events(mintlog: MintlogProcess, key: str, service: str, count: int) -> list[dict[str, Any]]:
    answer = mintlog.wait_for_total(key, {"query": f"service:{service}", "from": "now-1h"}, count, timeout_seconds=30)
    assert answer["total"] == count, answer
    return answer["events"]


def assert_sdk_records_stored(events: list[dict[str, Any]], ids: dict[str, str], host: str = "sdk-host-1") -> None:
    by_message = {event["message"]: event for event in events}
    assert {message: event["level"] for message, event in by_message.items()} == LEVELS
    now = datetime.now(UTC)
    for event in events:
        assert event["source"] == "otlp"
        assert event["host"] == host
        assert (event["trace_id"], event["span_id"]) == (ids["trace_id"], ids["span_id"])
        assert abs((datetime.fromisoformat(event["timestamp"]) - now).total_seconds()) < 120
        fields = event["fields"]
        assert fields["scope.name"] == "shop.checkout"
        assert fields["resource.deployment.environment"] == "e2e"
        assert fields["resource.telemetry.sdk.language"] == "python"
        assert "code.function.name" in fields or "code.function" in fields
    authorized = by_message["payment authorized"]["fields"]
    assert (authorized["order.id"], authorized["amount"]) == ("o-42", 19.99)
    assert by_message["cart loaded"]["fields"]["cart.items"] == 3
    assert by_message["shipping quote failed"]["fields"]["carrier"] == "acme"


def test_the_python_sdk_exports_protobuf_with_gzip_configured_by_the_standard_env_vars(
    running: tuple[MintlogProcess, str],
) -> None:
    mintlog, key = running
    ids = run_sdk_app(
        {
            "OTEL_SERVICE_NAME": "otel-proto-e2e",
            "OTEL_EXPORTER_OTLP_ENDPOINT": mintlog.ingest_url,
            "OTEL_EXPORTER_OTLP_HEADERS": f"X-API-Key={key}",
            "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
        }
    )

    assert_sdk_records_stored(found_events(mintlog, key, "otel-proto-e2e", 5), ids)


def test_the_python_sdk_exports_otlp_json_to_the_logs_endpoint(running: tuple[MintlogProcess, str]) -> None:
    mintlog, key = running
    ids = run_sdk_app(
        {
            "OTEL_LOGS_EXPORTER": "otlp_json_http",
            "OTEL_SERVICE_NAME": "otel-json-e2e",
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": f"{mintlog.ingest_url}/v1/logs",
            "OTEL_EXPORTER_OTLP_HEADERS": f"X-API-Key={key}",
        }
    )

    assert_sdk_records_stored(found_events(mintlog, key, "otel-json-e2e", 5), ids)


def test_the_python_sdk_authenticates_with_a_bearer_token(running: tuple[MintlogProcess, str]) -> None:
    mintlog, key = running
    ids = run_sdk_app(
        {
            "OTEL_SERVICE_NAME": "otel-bearer-e2e",
            "OTEL_EXPORTER_OTLP_ENDPOINT": mintlog.ingest_url,
            "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Bearer%20{key}",
            "OTEL_RESOURCE_ATTRIBUTES": "k8s.pod.name=shop-7d9f,deployment.environment=e2e",
        }
    )

    assert_sdk_records_stored(found_events(mintlog, key, "otel-bearer-e2e", 5), ids, host="shop-7d9f")


def export(mintlog: MintlogProcess, key: str, body: bytes, content_type: str) -> httpx.Response:
    return httpx.post(
        f"{mintlog.ingest_url}/v1/logs",
        content=body,
        headers={"X-API-Key": key, "Content-Type": content_type},
        timeout=30,
    )


def protobuf_request(service: str, *messages: str) -> bytes:
    resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value=service))])
    records = [
        LogRecord(body=AnyValue(string_value=message), severity_number=SeverityNumber.SEVERITY_NUMBER_INFO)
        for message in messages
    ]
    return ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(resource=resource, scope_logs=[ScopeLogs(log_records=records)])]
    ).SerializeToString()


def test_bad_bodies_get_otlp_statuses_and_a_partial_success_loses_nothing_accepted(
    running: tuple[MintlogProcess, str],
) -> None:
    mintlog, key = running
    whole = protobuf_request("otel-bad-e2e", "never stored " + "x" * 40)
    truncated = export(mintlog, key, whole[:-7], "application/x-protobuf")
    assert (truncated.status_code, truncated.headers["content-type"]) == (400, "application/x-protobuf")
    assert Status.FromString(truncated.content).code == 3

    invalid_utf8 = whole.replace(b"never", b"n\xffver")
    refused = export(mintlog, key, invalid_utf8, "application/x-protobuf")
    assert (refused.status_code, Status.FromString(refused.content).code) == (400, 3)

    bad_json = export(mintlog, key, b'{"resourceLogs": [{"scopeLogs": [', "application/json")
    assert (bad_json.status_code, bad_json.headers["content-type"]) == (400, "application/json")
    assert bad_json.json()["code"] == 3
    assert "JSON" in bad_json.json()["message"]

    long_key = "k" * 300  # a field name over the limit: that record alone is refused
    partial = ExportLogsServiceRequest.FromString(protobuf_request("otel-bad-e2e", "kept one", "refused", "kept two"))
    partial.resource_logs[0].scope_logs[0].log_records[1].attributes.add(key=long_key).value.string_value = "v"
    answer = export(mintlog, key, partial.SerializeToString(), "application/x-protobuf")
    assert answer.status_code == 200
    partial_success = ExportLogsServiceResponse.FromString(answer.content).partial_success
    assert partial_success.rejected_log_records == 1
    assert "log record 1:" in partial_success.error_message

    events = found_events(mintlog, key, "otel-bad-e2e", 2)
    assert sorted(event["message"] for event in events) == ["kept one", "kept two"]
    problem_json = export(mintlog, key, b"plain", "text/plain")
    assert (problem_json.status_code, problem_json.headers["content-type"]) == (415, "application/json")
