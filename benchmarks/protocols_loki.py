"""The Loki push load of the `ingest_protocols` benchmark: the same realistic events as the native body's load
(`benchmarks.ingest_protocols.event_batches`), sent the way Promtail and Grafana Alloy send them — snappy-compressed
`logproto.PushRequest` protobuf to `POST /loki/api/v1/push`, answered 204.

Each batch becomes one push whose streams are the batch's distinct (service, host, level) label sets, plus the
`run` label the load counts searchable events by; each entry carries its line, its time in nanoseconds and the
event's other fields (`trace_id`, `user_id`, `status`, `latency_ms`, `region`) as structured metadata, so a
stored event holds what the native body's does.

`loki_body` is the protocol's entry in `benchmarks.ingest_protocols.PROTOCOL_LOADS`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import cramjam

from mintlog.roles.ingest.decoders.loki_proto import PushRequest

__all__ = ["loki_body"]


def _label_string(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f'{name}="{value}"' for name, value in labels.items()) + "}"


def loki_body(events: list[dict[str, Any]]) -> bytes:
    """`events` (as `realistic_event` makes them) as one snappy-compressed Loki push."""
    streams: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        fields = dict(event["fields"])
        labels = {
            "service_name": event["service"],
            "host": event["host"],
            "level": event["level"],
            "run": str(fields.pop("run")),
        }
        moment = datetime.fromisoformat(event["timestamp"])
        nanoseconds = int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000
        metadata = [{"name": "trace_id", "value": event["trace_id"]}]
        metadata += [{"name": name, "value": str(value)} for name, value in fields.items()]
        streams.setdefault(_label_string(labels), []).append(
            {
                "timestamp": {"seconds": nanoseconds // 1_000_000_000, "nanos": nanoseconds % 1_000_000_000},
                "line": event["message"],
                "structuredMetadata": metadata,
            }
        )
    push = PushRequest(streams=[{"labels": labels, "entries": entries} for labels, entries in streams.items()])
    return bytes(cramjam.snappy.compress_raw(push.SerializeToString()))
