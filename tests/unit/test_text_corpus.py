"""Level and timestamp detection measured on `tests/data/textlog/corpus.jsonl` (see its README): every format
must get both right on at least 95 % of its lines, and no format may invent a level for a line that writes
none on more than 5 % of its lines. Run with `-s` to see the table."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mintlog.domain.normalize import normalize_event
from mintlog.parsing.text import TextParsing
from tests.data.textlog import generate

CORPUS = Path(__file__).parents[1] / "data" / "textlog" / "corpus.jsonl"
MIN_ACCURACY = 0.95
MAX_INVENTED_LEVELS = 0.05


@dataclass
class Score:
    lines: int = 0
    level_right: int = 0
    time_right: int = 0
    invented_levels: int = 0
    without_level: int = 0


def corpus() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]


def score_corpus() -> dict[str, Score]:
    scores: dict[str, Score] = {}
    for index, record in enumerate(corpus()):
        received_at = datetime.fromisoformat(record["received_at"])
        event = normalize_event(
            {"message": record["line"]},
            tenant_id="acme",
            event_id=f"e-{index}",
            received_at=received_at,
            source="http",
            default_service="svc",
            default_host="host",
            parsing=TextParsing(zone=ZoneInfo(record["zone"])),
        )
        expected_time = received_at if record["time"] is None else datetime.fromisoformat(record["time"])
        score = scores.setdefault(record["format"], Score())
        score.lines += 1
        score.level_right += event.level == record["level"]
        score.time_right += event.timestamp == expected_time
        if record["level"] == "info" and "detected.level_source" not in event.fields:
            score.without_level += 1
        elif record["level"] == "info" and event.level != "info":
            score.invented_levels += 1
            score.without_level += 1
    return scores


def table(scores: dict[str, Score]) -> str:
    rows = ["| format | lines | level | timestamp | level invented |", "|---|---:|---:|---:|---:|"]
    total = Score()
    for name, score in scores.items():
        rows.append(
            f"| {name} | {score.lines} | {score.level_right / score.lines:.1%} | "
            f"{score.time_right / score.lines:.1%} | {score.invented_levels} |"
        )
        total.lines += score.lines
        total.level_right += score.level_right
        total.time_right += score.time_right
        total.invented_levels += score.invented_levels
    rows.append(
        f"| all | {total.lines} | {total.level_right / total.lines:.1%} | {total.time_right / total.lines:.1%} | "
        f"{total.invented_levels} |"
    )
    return "\n".join(rows)


@pytest.fixture(scope="module")
def scores() -> dict[str, Score]:
    measured = score_corpus()
    print("\n" + table(measured))
    return measured


def test_the_corpus_has_at_least_16_formats_of_50_lines(scores: dict[str, Score]) -> None:
    assert len(scores) >= 16
    assert min(score.lines for score in scores.values()) >= 50


@pytest.mark.parametrize("name", list(generate.FORMATS))
def test_each_format_gets_levels_and_timestamps_right(scores: dict[str, Score], name: str) -> None:
    score = scores[name]

    assert score.level_right / score.lines >= MIN_ACCURACY, f"{name}: level {score.level_right}/{score.lines}"
    assert score.time_right / score.lines >= MIN_ACCURACY, f"{name}: timestamp {score.time_right}/{score.lines}"
    assert score.invented_levels <= MAX_INVENTED_LEVELS * score.lines


def test_the_committed_corpus_is_what_the_generator_writes() -> None:
    assert CORPUS.read_text(encoding="utf-8") == generate.render()


def test_the_corpus_covers_every_level_and_lines_without_a_time() -> None:
    records = corpus()
    assert set(Counter(record["level"] for record in records)) == {"trace", "debug", "info", "warn", "error", "fatal"}
    assert sum(record["time"] is None for record in records) >= 200
