"""The syslog TCP load of the `ingest_protocols` benchmark (`syslog_load`, one entry of
`benchmarks.ingest_protocols.PROTOCOL_LOADS`): the same realistic events as the native body's load, sent as
rsyslog sends them — RFC 5424, octet-counted, over a few long-lived TCP connections, the key in a
`[mintlog@32473 key="..."]` element and the event's fields (`run` included) as the structured data `[app ...]`,
stored as `fields["sd.app.*"]`.

Syslog has no answer per message: an event counts as accepted once the listener has read it (its write was
drained: the listener stops reading while it cannot publish), and the load then waits until every sent event is
searchable. The `ingest_protocols` group starts syslog's all-in-one with a syslog port (`syslog_env`); given a
target without one, `syslog_load` starts its own (`MINTLOG_SYSLOG__TCP_PORT`). Run alone:

    .venv/bin/python -m benchmarks.protocols_syslog --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time
from typing import Any

import aiohttp

from benchmarks.load import exact_count, free_port, percentile, rss_kib
from benchmarks.topology import AllInOne

__all__ = ["syslog_env", "syslog_frames", "syslog_load"]

_SEVERITY = {"debug": 7, "info": 6, "warn": 4, "error": 3, "fatal": 2}
_LOCAL0 = 16
_CONNECTIONS = 4
_PORT_VARIABLE = "MINTLOG_SYSLOG__TCP_PORT"


def syslog_frames(events: list[dict[str, Any]], key: str) -> bytes:
    """`events` (as `benchmarks.load.realistic_event` makes them) as octet-counted RFC 5424 messages."""
    frames: list[bytes] = []
    for event in events:
        pri = _LOCAL0 * 8 + _SEVERITY[event["level"]]
        params = " ".join(f'{name}="{value}"' for name, value in event["fields"].items())
        message = (
            f"<{pri}>1 {event['timestamp']} {event['host']} {event['service']} - - "
            f'[mintlog@32473 key="{key}"][app trace_id="{event["trace_id"]}" {params}] {event["message"]}'
        ).encode()
        frames.append(b"%d %s" % (len(message), message))
    return b"".join(frames)


async def _send(port: int, payloads: list[bytes], per_payload: int, seconds: float) -> tuple[int, list[float]]:
    """Write `payloads` in turn on `_CONNECTIONS` connections for `seconds`; the events written and each
    write's drain time."""
    deadline = time.monotonic() + seconds
    drains: list[float] = []
    sent = 0

    async def connection(offset: int) -> None:
        nonlocal sent
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        turn = offset
        while time.monotonic() < deadline:
            started = time.monotonic()
            writer.write(payloads[turn % len(payloads)])
            await writer.drain()
            drains.append(time.monotonic() - started)
            sent += per_payload
            turn += 1
        writer.close()
        await writer.wait_closed()

    await asyncio.gather(*(connection(offset) for offset in range(_CONNECTIONS)))
    return sent, drains


async def _load(
    target: Any, port: int, seconds: float, run_id: str, batches: list[list[dict[str, Any]]], drain_timeout: float
) -> dict[str, Any]:
    payloads = [syslog_frames(batch, target.key) for batch in batches]
    started = time.monotonic()
    sent, drains = await _send(port, payloads, len(batches[0]), seconds)
    send_seconds = time.monotonic() - started
    searchable = 0
    async with aiohttp.ClientSession() as session:
        deadline = time.monotonic() + drain_timeout
        while time.monotonic() < deadline:
            searchable = await exact_count(session, target.api, target.key, {"fields": {"sd.app.run": run_id}})
            if searchable >= sent:
                break
            await asyncio.sleep(0.25)
    all_searchable_after = time.monotonic() - started
    drain_ms = [seconds * 1000 for seconds in drains]
    last_searchable_ms = round((all_searchable_after - send_seconds) * 1000, 1)
    return {
        "run_id": run_id,
        "protocol": "syslog (RFC 5424 over TCP, octet-counted)",
        "duration_s": round(send_seconds, 1),
        "batch_size": len(batches[0]),
        "offered_rate": "max",
        "concurrency": _CONNECTIONS,
        "raw_bytes_per_event": round(sum(map(len, payloads)) / (len(payloads) * len(batches[0])), 1),
        "events_accepted": sent,
        "events_searchable": searchable,
        "zero_loss": searchable == sent,
        "accepted_events_per_s": round(sent / send_seconds),
        "searchable_events_per_s": round(searchable / all_searchable_after),
        "statuses": {},
        # No answers in syslog: a "request" is one batch's write until the listener has read it.
        "ingest_request_p50_ms": round(percentile(drain_ms, 0.5), 1),
        "ingest_request_p99_ms": round(percentile(drain_ms, 0.99), 1),
        # No probes either: the time from the last write until everything was searchable.
        "ingest_to_searchable_p50_ms": last_searchable_ms,
        "ingest_to_searchable_p99_ms": last_searchable_ms,
        "probes": 0,
        "probes_lost": 0,
        "peak_rss_kib": {"mintlog": rss_kib(target.pid)} if getattr(target, "pid", None) else {},
    }


def syslog_env() -> dict[str, str]:
    """The setting an all-in-one needs for `syslog_load`: a free syslog TCP port."""
    return {_PORT_VARIABLE: str(free_port())}


def syslog_load(
    target: Any, seconds: float, run_id: str, batches: list[list[dict[str, Any]]], drain_timeout: float
) -> dict[str, Any]:
    """The `ProtocolLoad` of syslog (see `benchmarks.ingest_protocols`)."""
    port = getattr(target, "extra_env", {}).get(_PORT_VARIABLE)
    if port:
        return asyncio.run(_load(target, int(port), seconds, run_id, batches, drain_timeout))
    port = free_port()
    with AllInOne({_PORT_VARIABLE: str(port)}, name="mintlog-syslog") as own:
        return asyncio.run(_load(own, port, seconds, run_id, batches, drain_timeout))


def main() -> int:
    from benchmarks.ingest_protocols import event_batches

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    run_id = secrets.token_hex(6)
    result = syslog_load(None, args.seconds, run_id, event_batches(run_id, args.batch, 40), 120.0)
    print(json.dumps(result, indent=2))
    return 0 if result["zero_loss"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
