"""What each step of the all-in-one hot path costs per event, in one thread (best of 3, µs per event).

    .venv/bin/python -m benchmarks.bench_pipeline_stages

The events are `benchmarks/load.py`'s (batches of 500, ~309 bytes of JSON each). The steps, in the order an
event meets them: the ingest body's JSON decoding (the ceiling), validation, the raw batch's MessagePack
encoding (ingest); its decoding, normalization, the archive's NDJSON line, gzip at levels 1 and 6 (with the
compression ratio), the parsed batch's encoding (normalize stage); its decoding, the Tantivy document, and
Tantivy's `add_json` into a fresh on-disk index followed by one commit (index stage; `add_json` hands the
document to Tantivy's indexing thread, whose work is not in this thread's time: see
`benchmarks/bench_tantivy_write.py` for the store's total CPU per event).
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import tantivy

from benchmarks.load import realistic_event
from mintlog.adapters.logstore.tantivy_schema import (
    MESSAGE_TOKENIZER,
    build_schema,
    configure_new_index,
    encode_document,
    message_analyzer,
    to_utc,
)
from mintlog.domain.events import ParsedBatch, RawBatch
from mintlog.domain.normalize import normalize_batch
from mintlog.domain.streams import decode_parsed_batch, decode_raw_batch, encode_bus_message
from mintlog.domain.validation import validate_events
from mintlog.roles.pipeline.archive import _encode_line, pack_lines  # pyright: ignore[reportPrivateUsage]
from mintlog.settings import IngestSettings

BATCH = 500
BODIES = 20
LIMITS = IngestSettings()


def per_event(step: Callable[[int], object], repeats: int = 20) -> float:
    """Best of 3 rounds of `repeats` calls of `step(i)` (each over one batch), in µs per event."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for index in range(repeats):
            step(index)
        best = min(best, (time.perf_counter() - started) / (repeats * BATCH))
    return best * 1e6


def main() -> None:
    rng = random.Random(3)
    bodies = [
        json.dumps({"events": [realistic_event("stages", rng) for _ in range(BATCH)]}).encode() for _ in range(BODIES)
    ]
    decoded = [msgspec.json.decode(body)["events"] for body in bodies]
    raw_batches = [
        RawBatch(batch_id=f"{n:024x}", tenant_id="bench", received_at=datetime.now(UTC), source="http", events=events)
        for n, events in enumerate(decoded)
    ]
    raw_bytes = [encode_bus_message(batch) for batch in raw_batches]
    normalized = [
        normalize_batch(b, default_service="unknown", default_host="unknown", limits=LIMITS) for b in raw_batches
    ]
    parsed_bytes = [encode_bus_message(ParsedBatch(batch_id="p", tenant_id="bench", events=e)) for e in normalized]
    lines = [
        _encode_line(raw_batches[0], raw, event, index)[1]
        for index, (raw, event) in enumerate(zip(raw_batches[0].events, normalized[0], strict=True))
    ] * BODIES
    raw_ndjson = sum(len(line) for line in lines)
    documents = [[encode_document(event, to_utc(event.timestamp)) for event in events] for events in normalized]

    figures: dict[str, float | str] = {
        "ingest: JSON decode (the ceiling)": per_event(lambda i: msgspec.json.decode(bodies[i % BODIES])),
        "ingest: validate": per_event(lambda i: validate_events(list(decoded[i % BODIES]), LIMITS)),
        "ingest: raw batch encode": per_event(lambda i: encode_bus_message(raw_batches[i % BODIES])),
        "normalize: raw batch decode": per_event(lambda i: decode_raw_batch(raw_bytes[i % BODIES])),
        "normalize: normalize": per_event(
            lambda i: normalize_batch(raw_batches[i % BODIES], default_service="u", default_host="u", limits=LIMITS)
        ),
        "normalize: archive line": per_event(
            lambda i: [
                _encode_line(raw_batches[i % BODIES], raw, event, index)
                for index, (raw, event) in enumerate(
                    zip(raw_batches[i % BODIES].events, normalized[i % BODIES], strict=True)
                )
            ]
        ),
        "normalize: parsed batch encode": per_event(
            lambda i: encode_bus_message(ParsedBatch(batch_id="p", tenant_id="bench", events=normalized[i % BODIES]))
        ),
        "index: parsed batch decode": per_event(lambda i: decode_parsed_batch(parsed_bytes[i % BODIES])),
        "index: Tantivy document": per_event(
            lambda i: [encode_document(event, to_utc(event.timestamp)) for event in normalized[i % BODIES]]
        ),
    }
    for level in (1, 6):
        figures[f"normalize: gzip level {level}"] = (
            per_event(lambda _i, level=level: pack_lines(lines, level), 1) / BODIES
        )
        figures[f"normalize: gzip level {level}, NDJSON ÷ gzip"] = (
            f"{raw_ndjson / len(pack_lines(lines, level).data):.2f}"
        )
    with tempfile.TemporaryDirectory() as directory:
        tantivy.Index(build_schema(), path=directory)
        configure_new_index(Path(directory))
        index = tantivy.Index.open(directory)
        index.register_tokenizer(MESSAGE_TOKENIZER, message_analyzer())
        writer = index.writer(64 * 1024 * 1024, 1)
        figures["index: add_json (this thread)"] = per_event(
            lambda i: [writer.add_json(d) for d in documents[i % BODIES]]
        )
        started = time.perf_counter()
        writer.commit()
        figures["index: commit after the add_json rounds (ms)"] = f"{(time.perf_counter() - started) * 1000:.0f}"
    width = max(len(name) for name in figures)
    for name, value in figures.items():
        print(f"{name:{width}}  {value:6.2f}" if isinstance(value, float) else f"{name:{width}}  {value:>6}")


if __name__ == "__main__":
    main()
