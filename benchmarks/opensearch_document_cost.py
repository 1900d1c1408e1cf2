"""What each part of Mintlog's OpenSearch document costs the OpenSearch node, in CPU per event.

    .venv/bin/python -m benchmarks.opensearch_document_cost --events 100000 --repeats 3

`benchmarks/load.py`'s realistic events, normalized like the pipeline does, encoded by the store's own
`encode_document`, then sent to the OpenSearch of `scripts/services.sh` as `_bulk` bodies of 5,000 events,
4 in flight (what `MINTLOG_INDEXER__CONCURRENT_WRITES` keeps), each followed by a refresh of its index as the
store does. Every variant goes to a fresh index of its own, and the node's CPU seconds (`/proc/<pid>/stat`
of its JVM, so the node must run on this machine) over the variant's requests are divided by its events.
Bodies are encoded before the clock starts: the figures are the node's alone.

Variants (each the full document less one part, so the difference to `full` is what that part costs):

- `full`: the document `OpenSearchLogStore.write` sends, with `create` and the event id as `_id`;
- `no-numbers`: without `field_numbers` (one nested document per number of `fields`);
- `no-flat-object`: without `fields` (the `flat_object` copy of `fields`);
- `no-field-pairs`: without `field_pairs`;
- `whole-source`: the full document into an index whose `_source` keeps the whole document, where the
  store's template keeps only `event` (`_source.includes`, which OpenSearch applies to every document);
- `no-refresh`: the full document without the refresh after each body (the node then refreshes at its
  own pace: what the per-write refresh costs);
- `plain-bulk`: the events as sent, automatic ids, OpenSearch's default dynamic mapping, no refresh (what
  `benchmarks/opensearch_bulk.py` measures: the incumbent).

Variants run in turn, `--repeats` times (the first round warms the JVM up: read the later ones). Prints one
JSON line per variant and round; indices and templates are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import msgspec

from benchmarks.cpu_accounting import opensearch_pid, process_cpu_seconds
from benchmarks.load import realistic_event
from mintlog.adapters.logstore.opensearch_documents import encode_document
from mintlog.adapters.logstore.opensearch_layout import index_template
from mintlog.domain.events import LogEvent, RawBatch
from mintlog.domain.normalize import normalize_batch
from mintlog.settings import IngestSettings

BODY_EVENTS = 5_000
IN_FLIGHT = 4
_NDJSON = {"Content-Type": "application/x-ndjson"}

Transform = Callable[[dict[str, Any]], dict[str, Any]]


def _without(part: str) -> Transform:
    def transform(document: dict[str, Any]) -> dict[str, Any]:
        document.pop(part, None)
        return document

    return transform


def _unchanged(document: dict[str, Any]) -> dict[str, Any]:
    return document


# name: (document transform, template kind, refresh after each body)
VARIANTS: dict[str, tuple[Transform, str, bool]] = {
    "full": (_unchanged, "store", True),
    "no-numbers": (_without("field_numbers"), "store", True),
    "no-flat-object": (_without("fields"), "store", True),
    "no-field-pairs": (_without("field_pairs"), "store", True),
    "whole-source": (_unchanged, "whole-source", True),
    "no-refresh": (_unchanged, "store", False),
}


def prepared_events(count: int) -> tuple[list[dict[str, Any]], list[LogEvent]]:
    rng = random.Random(1)
    run = secrets.token_hex(4)
    raws = [realistic_event(run, rng) for _ in range(count)]
    events: list[LogEvent] = []
    for first in range(0, count, BODY_EVENTS):
        batch = RawBatch(
            batch_id=f"{run}{first:012x}",
            tenant_id="bench",
            received_at=datetime.now(UTC),
            source="http",
            events=msgspec.json.decode(json.dumps(raws[first : first + BODY_EVENTS])),
        )
        events.extend(
            normalize_batch(batch, default_service="unknown", default_host="unknown", limits=IngestSettings())
        )
    return raws, events


def store_bodies(events: list[LogEvent], index: str, transform: Transform) -> list[bytes]:
    bodies: list[bytes] = []
    for first in range(0, len(events), BODY_EVENTS):
        lines: list[bytes] = []
        for event in events[first : first + BODY_EVENTS]:
            document = transform(msgspec.json.decode(encode_document(event)))
            lines.append(msgspec.json.encode({"create": {"_index": index, "_id": event.id}}))
            lines.append(msgspec.json.encode(document))
        bodies.append(b"\n".join(lines) + b"\n")
    return bodies


def plain_bodies(raws: list[dict[str, Any]], index: str) -> list[bytes]:
    bodies: list[bytes] = []
    for first in range(0, len(raws), BODY_EVENTS):
        lines: list[bytes] = []
        for raw in raws[first : first + BODY_EVENTS]:
            lines.append(msgspec.json.encode({"create": {"_index": index}}))
            lines.append(msgspec.json.encode(raw))
        bodies.append(b"\n".join(lines) + b"\n")
    return bodies


async def send_all(session: aiohttp.ClientSession, url: str, index: str, bodies: list[bytes], refresh: bool) -> None:
    slots = asyncio.Semaphore(IN_FLIGHT)

    async def send(body: bytes) -> None:
        async with slots:
            async with session.post(f"{url}/_bulk?filter_path=errors", data=body, headers=_NDJSON) as response:
                answer = await response.json()
                if response.status != 200 or answer.get("errors"):
                    raise RuntimeError(f"bulk into {index} failed: {response.status} {answer}")
            if refresh:
                async with session.post(f"{url}/{index}/_refresh") as response:
                    await response.read()

    await asyncio.gather(*(send(body) for body in bodies))
    async with session.post(f"{url}/{index}/_refresh") as response:
        await response.read()


async def run(args: argparse.Namespace) -> None:
    url = args.opensearch_url.rstrip("/")
    node = opensearch_pid(url)
    if node is None:
        raise SystemExit(f"no OpenSearch node of {url} runs on this machine: its CPU cannot be read")
    prefix = f"doccost{secrets.token_hex(3)}"
    raws, events = prepared_events(args.events)
    templates = {"store": prefix, "whole-source": f"{prefix}src"}
    async with aiohttp.ClientSession() as session:
        try:
            for kind, name in templates.items():
                template = index_template(name, shards=1, replicas=0)
                if kind == "whole-source":
                    del template["template"]["mappings"]["_source"]
                async with session.put(f"{url}/_index_template/{name}", json=template) as response:
                    if response.status != 200:
                        raise RuntimeError(f"template {name}: {response.status} {await response.text()}")
            for round_number in range(1, args.repeats + 1):
                for variant in [*VARIANTS, "plain-bulk"]:
                    if variant == "plain-bulk":
                        index = f"plain{prefix}-{round_number}"
                        bodies, refresh = plain_bodies(raws, index), False
                    else:
                        transform, kind, refresh = VARIANTS[variant]
                        index = f"{templates[kind]}-{variant}-{round_number}"
                        bodies = store_bodies(events, index, transform)
                    await asyncio.sleep(2)  # let the previous variant's merges settle
                    cpu_before, started = process_cpu_seconds(node), time.perf_counter()
                    await send_all(session, url, index, bodies, refresh)
                    seconds, cpu_after = time.perf_counter() - started, process_cpu_seconds(node)
                    assert cpu_before is not None
                    assert cpu_after is not None
                    print(
                        json.dumps(
                            {
                                "round": round_number,
                                "variant": variant,
                                "events": len(events),
                                "events_per_s": round(len(events) / seconds),
                                "opensearch_us_per_event": round((cpu_after - cpu_before) / len(events) * 1e6, 1),
                            }
                        ),
                        flush=True,
                    )
        finally:
            async with session.delete(f"{url}/{prefix}*,plain{prefix}-*") as response:
                await response.read()
            for name in templates.values():
                async with session.delete(f"{url}/_index_template/{name}") as response:
                    await response.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--opensearch-url", default="http://127.0.0.1:59200")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
