"""The `ingest_protocols` group of the suite: sustained events/s end to end of every ingest protocol beside the
native body, in the same run, on the same events (issue 16's target: every protocol at least 0.8 of native).

Each protocol is one entry of `PROTOCOL_LOADS`: a function that loads a started all-in-one `mintlog run`
(`benchmarks.topology.AllInOne`) for `seconds` with `batches` (lists of `benchmarks.load.realistic_event`
events, each with `fields.run` = `run_id`) sent in its own wire format, and returns `benchmarks.load.load`'s
result (accepted and searchable events/s, zero loss, latencies). A protocol with HTTP bodies only says how a
batch becomes its body (`http_protocol`); one without (syslog) writes its own function. To add a protocol: one
function, one entry in the table (and one in `PROTOCOL_ENV` if its all-in-one needs a setting).

The suite (`benchmarks.suite.ingest_protocols`) loads the native body before and after every other protocol and
compares each to the mean of the two native loads around it.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from typing import Any

from benchmarks.load import load, realistic_event
from benchmarks.protocols_loki import loki_body
from benchmarks.protocols_otlp import otlp_body
from benchmarks.protocols_syslog import syslog_env, syslog_load

__all__ = ["PROTOCOL_ENV", "PROTOCOL_LOADS", "ProtocolLoad", "event_batches", "http_protocol"]

ProtocolLoad = Callable[[Any, float, str, list[list[dict[str, Any]]], float], dict[str, Any]]
"""`(target, seconds, run_id, batches, drain_timeout) -> load result` (see the module)."""


def event_batches(run_id: str, batch: int, distinct: int) -> list[list[dict[str, Any]]]:
    """`distinct` batches of `batch` realistic events (seeded as `benchmarks.load.make_bodies` is)."""
    rng = random.Random(42)
    return [[realistic_event(run_id, rng) for _ in range(batch)] for _ in range(distinct)]


def http_protocol(
    path: str, content_type: str, encode: Callable[[list[dict[str, Any]]], bytes], accepted_status: int = 202
) -> ProtocolLoad:
    """The load of a protocol whose batches are HTTP request bodies on the ingest port: `encode` turns one batch
    into its body, posted to `path`; a request counts as accepted when it answers `accepted_status`."""

    def run(
        target: Any, seconds: float, run_id: str, batches: list[list[dict[str, Any]]], drain_timeout: float
    ) -> dict[str, Any]:
        return asyncio.run(
            load(
                ingest=target.ingest,
                api=target.api,
                key=target.key,
                pid=getattr(target, "pid", None),
                duration=seconds,
                batch=len(batches[0]),
                run_id=run_id,
                bodies=[encode(batch) for batch in batches],
                drain_timeout=drain_timeout,
                path=path,
                content_type=content_type,
                accepted_status=accepted_status,
            )
        )

    return run


def native_body(events: list[dict[str, Any]]) -> bytes:
    """`{"events": [...]}`: the native body."""
    return json.dumps({"events": events}).encode()


def es_bulk_body(events: list[dict[str, Any]]) -> bytes:
    """An Elasticsearch `_bulk` body of the same events as ECS documents, as Filebeat would send them."""
    lines: list[str] = []
    for event in events:
        document: dict[str, Any] = {
            "@timestamp": event["timestamp"],
            "message": event["message"],
            "log": {"level": event["level"]},
            "service": {"name": event["service"]},
            "host": {"name": event["host"]},
            "trace": {"id": event["trace_id"]},
            **event["fields"],
        }
        lines.append('{"create":{"_index":"logs"}}')
        lines.append(json.dumps(document))
    return ("\n".join(lines) + "\n").encode()


PROTOCOL_LOADS: dict[str, ProtocolLoad] = {
    "native": http_protocol("/v1/ingest/logs", "application/json", native_body),
    "es_bulk": http_protocol("/_bulk", "application/x-ndjson", es_bulk_body, accepted_status=200),
    "syslog": syslog_load,  # RFC 5424 over TCP, octet-counted
    "otlp": http_protocol("/v1/logs", "application/x-protobuf", otlp_body, accepted_status=200),
    "loki": http_protocol("/loki/api/v1/push", "application/x-protobuf", loki_body, accepted_status=204),
    # One entry per protocol (OTLP, Loki, syslog): name → load function.
}
"""Every protocol the group measures, `native` first: the figures compare each to it."""

PROTOCOL_ENV: dict[str, Callable[[], dict[str, str]]] = {"syslog": syslog_env}
"""The settings a protocol's all-in-one starts with, when it needs some (syslog: its TCP port): each protocol's
load then runs against the one all-in-one the group started, never beside a second, idle one."""
