"""The normalization rate with and without level/timestamp detection, in the same run.

Run: `.venv/bin/python -m benchmarks.normalize_rate [--events 20000] [--repeat 5] [--json out.json]`

For each event shape, `normalize_batch` runs over batches of `events` copies (500 per batch, as ingest sends
them) with detection off (`TextParsing(detect=False)`, what every event cost before detection existed),
with detection on (the default), and with detection plus one extraction rule that does not match (the cost
a tenant's rule adds to every event). Each figure is the best of `repeat` runs, in events per second of one
core. Shapes:

- `structured`: JSON events with their own level and timestamp (detection never runs for them);
- `plain text`: the lines of `tests/data/textlog/corpus.jsonl` (33 formats) as bare messages;
- `plain text, level only missing`: the same lines with an explicit timestamp.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mintlog.domain.events import RawBatch
from mintlog.domain.extraction_rules import ExtractionRuleSpec
from mintlog.domain.normalize import normalize_batch
from mintlog.parsing.rules import compile_rule
from mintlog.parsing.text import TextParsing

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "textlog" / "corpus.jsonl"
BATCH = 500
RECEIVED_AT = datetime(2026, 11, 27, 12, tzinfo=UTC)

OFF = TextParsing(detect=False)
ON = TextParsing()
WITH_RULE = TextParsing(
    rules=(compile_rule(ExtractionRuleSpec(name="bench", pattern=r"^TXN (?P<txn>\d+) (?P<amount>\d+\.\d\d)$")),)
)
SETTINGS: dict[str, TextParsing] = {"detection off": OFF, "detection on": ON, "detection on + 1 rule": WITH_RULE}


def lines() -> list[str]:
    return [json.loads(line)["line"] for line in CORPUS.read_text(encoding="utf-8").splitlines()]


def shapes() -> dict[str, Callable[[int], dict[str, Any]]]:
    text = lines()
    return {
        "structured": lambda index: {
            "service": "api",
            "level": "info",
            "message": f"GET /users/{index} 200 12ms",
            "timestamp": "2026-11-26T10:00:00.123Z",
            "fields": {"user_id": "u123", "status": 200},
        },
        "plain text": lambda index: {"message": text[index % len(text)]},
        "plain text, level only missing": lambda index: {
            "message": text[index % len(text)],
            "timestamp": "2026-11-26T10:00:00.123Z",
        },
    }


def batches(make: Callable[[int], dict[str, Any]], events: int) -> list[RawBatch]:
    return [
        RawBatch(
            batch_id=f"b{start}",
            tenant_id="bench",
            received_at=RECEIVED_AT,
            source="http",
            events=[make(index) for index in range(start, min(start + BATCH, events))],
        )
        for start in range(0, events, BATCH)
    ]


def rate(raw: list[RawBatch], parsing: TextParsing, repeat: int) -> float:
    count = sum(len(batch.events) for batch in raw)
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for batch in raw:
            normalize_batch(batch, default_service="unknown", default_host="unknown", parsing=parsing)
        best = min(best, time.perf_counter() - started)
    return count / best


def measure(events: int, repeat: int) -> list[dict[str, Any]]:
    """One row per shape: events/s per setting and the ratio of each to detection off."""
    rows: list[dict[str, Any]] = []
    for shape, make in shapes().items():
        raw = batches(make, events)
        rates = {name: rate(raw, parsing, repeat) for name, parsing in SETTINGS.items()}
        rows.append(
            {
                "shape": shape,
                "events": events,
                "events_per_s": rates,
                "ratio_to_off": {name: value / rates["detection off"] for name, value in rates.items()},
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description="The normalization rate with and without detection.")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    rows = measure(args.events, args.repeat)
    print(f"| shape | {' | '.join(SETTINGS)} (events/s) |")
    print("|---|" + "---:|" * len(SETTINGS))
    for row in rows:
        cells = [f"{row['events_per_s'][name]:,.0f} ({row['ratio_to_off'][name]:.2f} of off)" for name in SETTINGS]
        print(f"| {row['shape']} | {' | '.join(cells)} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
