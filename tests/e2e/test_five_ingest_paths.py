"""Five paths, one truth: the same 1,000 events sent through every ingest path are found 5,000 times, alike.

One `mintlog run` with its syslog TCP listener on, one tenant and one key. 1,000 events (each with its own marker,
five services, four hosts, five levels, times spread over the last two hours at microsecond precision, some
written with an offset other than UTC, non-ASCII text, numeric and text fields) are sent, each protocol written
on the wire by hand as its senders write it:

- the native body, `POST /v1/ingest/logs` (JSON);
- Elasticsearch `_bulk` (NDJSON of ECS-style documents, `Authorization: ApiKey`);
- OTLP/HTTP logs (protobuf `ExportLogsServiceRequest` from `opentelemetry-proto`, one resource per service and
  host);
- Loki push (snappy-compressed protobuf `PushRequest`, one stream per service, host and level label set,
  fields as structured metadata);
- syslog over TCP (RFC 5424, octet-counted, the key and the fields in structured data).

Then search finds exactly 5,000 events, 1,000 per `source`, and for every path the event of each marker has
the service, host, level, timestamp (microseconds: what each of the five carries) and message that were sent,
and its fields under the names and types that path gives them (Loki's structured metadata and syslog's
structured data are strings). Levels are the five a syslog severity can say (syslog has no `trace`).
"""

from __future__ import annotations

import base64
import json
import re
import socket
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import cramjam
import httpx
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs, SeverityNumber
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from mintlog.roles.ingest.decoders.loki_proto import PushRequest
from tests.e2e.harness import MintlogProcess, free_port

pytestmark = pytest.mark.e2e

EVENTS = 1_000
SINCE = "2000-01-01T00:00:00Z"
SOURCES = ("http", "es_bulk", "otlp", "loki", "syslog")
SERVICES = ("checkout", "payments", "search-api", "auth", "mailer")
HOSTS = ("web-1", "web-2", "db-1.eu-west.internal", "10.0.3.7")
LEVELS = ("debug", "info", "warn", "error", "fatal")
OTLP_SEVERITY = {
    "debug": SeverityNumber.SEVERITY_NUMBER_DEBUG,
    "info": SeverityNumber.SEVERITY_NUMBER_INFO,
    "warn": SeverityNumber.SEVERITY_NUMBER_WARN,
    "error": SeverityNumber.SEVERITY_NUMBER_ERROR,
    "fatal": SeverityNumber.SEVERITY_NUMBER_FATAL,
}
SYSLOG_SEVERITY = {"debug": 7, "info": 6, "warn": 4, "error": 3, "fatal": 2}
SYSLOG_LOCAL0 = 16
SD_ID = "order@32473"
MARKER = re.compile(r"\[(m\d{4})\]$")


@dataclass(frozen=True)
class Sent:
    """One event as its sender knows it."""

    marker: str
    service: str
    host: str
    level: str
    at: datetime  # the instant, with microseconds
    written: str  # the same instant as RFC 3339 text, in UTC or another offset
    message: str
    order_id: int
    region: str
    duration_ms: float

    @property
    def unix_nanos(self) -> int:
        return (int(self.at.timestamp()) * 1_000_000 + self.at.microsecond) * 1_000

    def fields(self) -> dict[str, Any]:
        return {
            "marker": self.marker,
            "order_id": self.order_id,
            "region": self.region,
            "duration_ms": self.duration_ms,
        }


def build_events() -> list[Sent]:
    """1,000 distinct events over the two hours before now (never in the future, never past retention)."""
    newest = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    india = timezone(timedelta(hours=5, minutes=30))
    events: list[Sent] = []
    for number in range(EVENTS):
        at = newest - timedelta(seconds=7 * number, microseconds=(number * 7919) % 1_000_000)
        written = at.astimezone(india).isoformat() if number % 7 == 0 else at.isoformat().replace("+00:00", "Z")
        marker = f"m{number:04d}"
        verb = ("paid", "refunded", "shipped to München", "looked up 🔍", "mailed “receipt”")[number % 5]
        events.append(
            Sent(
                marker=marker,
                service=SERVICES[number % len(SERVICES)],
                host=HOSTS[(number // 5) % len(HOSTS)],
                level=LEVELS[(number // 3) % len(LEVELS)],
                at=at,
                written=written,
                message=f"order {number} {verb} for customer {number % 97}  [{marker}]",
                order_id=100_000 + number,
                region=("eu-west", "us-east", "ap-south")[number % 3],
                duration_ms=round(0.25 + number * 1.5, 2),
            )
        )
    return events


# --- the five senders, each writing its protocol on the wire ---------------------------------------------------


def send_native(mintlog: MintlogProcess, key: str, events: list[Sent]) -> None:
    body = {
        "events": [
            {
                "timestamp": event.written,
                "level": event.level,
                "service": event.service,
                "host": event.host,
                "message": event.message,
                "fields": event.fields(),
            }
            for event in events
        ]
    }
    response = mintlog.ingest(key, body)
    assert response.status_code == 202, response.text
    assert (response.json()["accepted"], response.json()["rejected"]) == (EVENTS, 0)


def send_bulk(mintlog: MintlogProcess, key: str, events: list[Sent]) -> None:
    lines: list[str] = []
    for event in events:
        lines.append(json.dumps({"create": {"_index": f"logs-{event.service}-2026.12"}}))
        document = {
            "@timestamp": event.written,
            "message": event.message,
            "log": {"level": event.level},
            "service": {"name": event.service},
            "host": {"name": event.host},
            **event.fields(),
        }
        lines.append(json.dumps(document, ensure_ascii=False))
    pair = base64.b64encode(f"mintlog:{key}".encode()).decode()
    response = httpx.post(
        f"{mintlog.ingest_url}/_bulk",
        content="\n".join(lines).encode() + b"\n",
        headers={"Authorization": f"ApiKey {pair}", "Content-Type": "application/x-ndjson"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["errors"] is False, [item for item in answer["items"] if "error" in next(iter(item.values()))]
    assert len(answer["items"]) == EVENTS


def _string(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def send_otlp(mintlog: MintlogProcess, key: str, events: list[Sent]) -> None:
    by_resource: dict[tuple[str, str], list[LogRecord]] = {}
    for event in events:
        record = LogRecord(
            time_unix_nano=event.unix_nanos,
            severity_number=OTLP_SEVERITY[event.level],
            severity_text=event.level.upper(),
            body=AnyValue(string_value=event.message),
            attributes=[
                _string("marker", event.marker),
                KeyValue(key="order_id", value=AnyValue(int_value=event.order_id)),
                _string("region", event.region),
                KeyValue(key="duration_ms", value=AnyValue(double_value=event.duration_ms)),
            ],
        )
        by_resource.setdefault((event.service, event.host), []).append(record)
    request = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=Resource(attributes=[_string("service.name", service), _string("host.name", host)]),
                scope_logs=[ScopeLogs(log_records=records)],
            )
            for (service, host), records in by_resource.items()
        ]
    )
    response = httpx.post(
        f"{mintlog.ingest_url}/v1/logs",
        content=request.SerializeToString(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/x-protobuf"},
        timeout=60,
    )
    assert response.status_code == 200, response.content
    assert not ExportLogsServiceResponse.FromString(response.content).HasField("partial_success")


def send_loki(mintlog: MintlogProcess, key: str, events: list[Sent]) -> None:
    streams: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        labels = f'{{service_name="{event.service}", host="{event.host}", level="{event.level}"}}'
        seconds, nanos = divmod(event.unix_nanos, 1_000_000_000)
        metadata = {key: str(value) for key, value in event.fields().items()}
        streams.setdefault(labels, []).append(
            {
                "timestamp": {"seconds": seconds, "nanos": nanos},
                "line": event.message,
                "structuredMetadata": [{"name": name, "value": value} for name, value in metadata.items()],
            }
        )
    push = PushRequest(streams=[{"labels": labels, "entries": entries} for labels, entries in streams.items()])
    response = httpx.post(
        f"{mintlog.ingest_url}/loki/api/v1/push",
        content=bytes(cramjam.snappy.compress_raw(push.SerializeToString())),
        headers={"Authorization": "Basic " + base64.b64encode(f"loki:{key}".encode()).decode()},
        timeout=60,
    )
    assert response.status_code == 204, response.text


def syslog_frame(event: Sent, key: str) -> bytes:
    """One RFC 5424 message, octet-counted (RFC 6587): the key and the fields in structured data, a BOM before
    the UTF-8 message as RFC 5424 asks."""
    pri = SYSLOG_LOCAL0 * 8 + SYSLOG_SEVERITY[event.level]
    params = " ".join(f'{name}="{value}"' for name, value in event.fields().items())
    message = (
        f"<{pri}>1 {event.written} {event.host} {event.service} 4242 ORDER "
        f'[mintlog@32473 key="{key}"][{SD_ID} {params}] \ufeff{event.message}'
    ).encode()
    return f"{len(message)} ".encode() + message


def send_syslog(port: int, key: str, events: list[Sent]) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(b"".join(syslog_frame(event, key) for event in events))


# --- what each path makes of an event's fields -----------------------------------------------------------------


def expected_fields(source: str, event: Sent) -> dict[str, Any]:
    if source in ("http", "es_bulk", "otlp"):
        return event.fields()  # JSON and OTLP keep the types they were sent with
    as_text = {name: str(value) for name, value in event.fields().items()}
    if source == "loki":
        return as_text  # structured metadata is strings
    return {
        **{f"sd.{SD_ID}.{name}": value for name, value in as_text.items()},
        "syslog.facility": "local0",
        "syslog.procid": "4242",
        "syslog.msgid": "ORDER",
    }


@pytest.fixture(scope="module")
def syslog_mintlog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MintlogProcess, str, int]]:
    """A Mintlog with its syslog TCP listener on, a key, and the listener's port."""
    tcp_port = free_port()
    process = MintlogProcess(
        data_dir=tmp_path_factory.mktemp("five-paths") / "data",
        extra_env={"MINTLOG_SYSLOG__TCP_PORT": str(tcp_port)},
    )
    try:
        key = process.bootstrap("five-paths")
        process.start()
        yield process, key, tcp_port
    finally:
        process.cleanup()


def every_event(mintlog: MintlogProcess, key: str) -> list[dict[str, Any]]:
    """Every event of the tenant, paged 1,000 at a time."""
    events: list[dict[str, Any]] = []
    body: dict[str, Any] = {"from": SINCE, "size": 1000, "sort": "asc"}
    while True:
        response = mintlog.search(key, body)
        assert response.status_code == 200, response.text
        page = response.json()
        events.extend(page["events"])
        if page.get("next_cursor") is None:
            return events
        body = {**body, "cursor": page["next_cursor"]}


def count_by_source(mintlog: MintlogProcess, key: str) -> dict[str, int]:
    """How many events each path stored, by aggregation."""
    response = httpx.post(
        f"{mintlog.api_url}/v1/logs/aggregate",
        json={"from": SINCE, "group_by": "source"},
        headers={"X-API-Key": key},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return {bucket["key"]: bucket["count"] for bucket in response.json()["buckets"]}


@pytest.mark.timeout(300)  # a start under load (up to 120 s), five sends, indexing 5,000 events, paging them
def test_the_same_thousand_events_through_five_paths_are_found_five_thousand_times_alike(
    syslog_mintlog: tuple[MintlogProcess, str, int],
) -> None:
    mintlog, key, syslog_port = syslog_mintlog
    events = build_events()
    sent = {event.marker: event for event in events}

    send_native(mintlog, key, events)
    send_bulk(mintlog, key, events)
    send_otlp(mintlog, key, events)
    send_loki(mintlog, key, events)
    send_syslog(syslog_port, key, events)

    answer = mintlog.wait_for_total(key, {"from": SINCE, "size": 1}, 5 * EVENTS, timeout_seconds=60)
    assert (answer["total"], answer["total_relation"]) == (5 * EVENTS, "eq"), count_by_source(mintlog, key)
    time.sleep(1)  # a late duplicate would show now: nothing may come twice
    stored = every_event(mintlog, key)
    assert len(stored) == 5 * EVENTS
    assert Counter(event["source"] for event in stored) == dict.fromkeys(SOURCES, EVENTS)

    found: dict[str, dict[str, dict[str, Any]]] = {source: {} for source in SOURCES}
    for event in stored:
        matched = MARKER.search(event["message"])
        assert matched is not None, event
        assert matched[1] not in found[event["source"]], f"{matched[1]} stored twice by {event['source']}"
        found[event["source"]][matched[1]] = event
    for source in SOURCES:
        assert set(found[source]) == set(sent), source
        differences: list[str] = []
        for marker, event in found[source].items():
            expected = sent[marker]
            as_sent = (expected.service, expected.host, expected.level, expected.at, expected.message)
            as_stored = (
                event["service"],
                event["host"],
                event["level"],
                datetime.fromisoformat(event["timestamp"]),
                event["message"],
            )
            if as_stored != as_sent:
                differences.append(f"{marker}: sent {as_sent}, stored {as_stored}")
            fields = event.get("fields", {})
            wanted = expected_fields(source, expected)
            if {name: fields.get(name) for name in wanted} != wanted:
                differences.append(f"{marker}: fields {fields}, expected to hold {wanted}")
        assert differences == [], f"{source}: {len(differences)} events differ, e.g. {differences[:3]}"

    assert count_by_source(mintlog, key) == dict.fromkeys(SOURCES, EVENTS)
