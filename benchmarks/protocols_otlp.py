"""The OTLP/HTTP logs load of the `ingest_protocols` benchmark: the same realistic events as the native body's
load, sent the way OpenTelemetry SDKs and the Collector's `otlphttp` exporter send them — a protobuf
`ExportLogsServiceRequest` to `POST /v1/logs`, answered 200.

Each batch becomes one request with one `ResourceLogs` per (service, host) pair (`service.name`, `host.name`)
and one scope; each record carries its time in nanoseconds, its SeverityNumber, its message as a string body,
its trace id as bytes and the event's fields (`run` included, which the load counts searchable events by) as
attributes, so a stored event holds what the native body's does. Its entry in
`benchmarks.ingest_protocols.PROTOCOL_LOADS` is `otlp` (posted to `/v1/logs`, accepted on a 200).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

__all__ = ["otlp_body"]

_SEVERITY_NUMBERS = {"trace": 1, "debug": 5, "info": 9, "warn": 13, "error": 17, "fatal": 21}


def _value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def otlp_body(events: list[dict[str, Any]]) -> bytes:
    """`events` (as `benchmarks.load.realistic_event` makes them) as one protobuf `ExportLogsServiceRequest`."""
    resources: dict[tuple[str, str], list[LogRecord]] = {}
    for event in events:
        moment = datetime.fromisoformat(event["timestamp"])
        nanoseconds = int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000
        record = LogRecord(
            time_unix_nano=nanoseconds,
            severity_number=_SEVERITY_NUMBERS[event["level"]],  # type: ignore[arg-type]
            body=AnyValue(string_value=event["message"]),
            trace_id=bytes.fromhex(event["trace_id"]),
            attributes=[KeyValue(key=name, value=_value(value)) for name, value in event["fields"].items()],
        )
        resources.setdefault((event["service"], event["host"]), []).append(record)
    request = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=Resource(
                    attributes=[
                        KeyValue(key="service.name", value=AnyValue(string_value=service)),
                        KeyValue(key="host.name", value=AnyValue(string_value=host)),
                    ]
                ),
                scope_logs=[ScopeLogs(log_records=records)],
            )
            for (service, host), records in resources.items()
        ]
    )
    return request.SerializeToString()
