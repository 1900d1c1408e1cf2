"""The generated regexes: decimal ranges equal exact arithmetic, wildcards equal glob semantics, in every engine."""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import tantivy

from mintlog.adapters.logstore.tantivy_schema import message_analyzer
from mintlog.query.patterns import (
    PLAIN_DECIMAL,
    decimal_range_pattern,
    glob_to_python,
    glob_to_rust,
    lucene_escape,
    rust_escape,
)
from mintlog.query.text import analyze, positioned_words
from mintlog.query.values import float_text, plain_decimal, value_texts

PLAIN = re.compile(PLAIN_DECIMAL)
TEXTS = [
    "0", "-0", "0.0", "-0.0", "00", "1", "9", "10", "99", "100", "101", "499", "500", "500.0", "500.5", "599",
    "599.0", "599.01", "600", "5000", "-1", "-1.5", "-1.50", "-2", "0.1", "0.01", "0.09", "0.5", "0.999",
    "12.5", "19.99", "20", "20.00", "1e3", "1.", ".5", "+1", "01", "abc", "-", "--1", "1 ", "٣",
]  # fmt: skip


RAW_TEXTS = [*TEXTS, "k=500", "k=5000", "a.b+c=-1.5", "x\ny", "web-1", "web-10", "we*b", "w\\eb", "é=1"]


def in_range(text: str, lower: Decimal | None, upper: Decimal | None, include_lower: bool, include_upper: bool) -> bool:
    if PLAIN.fullmatch(text) is None:
        return False
    value = Decimal(text)
    above = lower is None or value > lower or (include_lower and value == lower)
    below = upper is None or value < upper or (include_upper and value == upper)
    return above and below


def random_decimal(generator: random.Random) -> Decimal:
    integer = generator.choice(["0", str(generator.randint(1, 9)), str(generator.randint(10, 999)), "100000"])
    fraction = generator.choice(["", "", "." + str(generator.randint(0, 999)).zfill(generator.randint(1, 4)), ".5"])
    return Decimal(generator.choice(["", "-"]) + integer + fraction)


def random_ranges(count: int) -> Iterator[tuple[Decimal | None, Decimal | None, bool, bool]]:
    generator = random.Random(42)
    for _ in range(count):
        lower = None if generator.random() < 0.15 else random_decimal(generator)
        upper = None if generator.random() < 0.15 else random_decimal(generator)
        if lower is not None and generator.random() < 0.3:
            upper = lower + Decimal(generator.choice(["0", "1", "0.5", "0.001", "1000"]))
        yield lower, upper, generator.random() < 0.5, generator.random() < 0.5


def test_a_decimal_range_pattern_accepts_exactly_the_numbers_in_the_range() -> None:
    generator = random.Random(7)
    for lower, upper, include_lower, include_upper in random_ranges(2000):
        pattern = decimal_range_pattern(lower, upper, include_lower=include_lower, include_upper=include_upper)
        regex = re.compile(pattern) if pattern is not None else None
        texts = [*TEXTS, *(str(random_decimal(generator)) for _ in range(20))]
        texts += [str(bound) for bound in (lower, upper) if bound is not None]
        for text in texts:
            expected = in_range(text, lower, upper, include_lower, include_upper)
            assert (regex is not None and regex.fullmatch(text) is not None) == expected, (
                lower, upper, include_lower, include_upper, text, pattern,
            )  # fmt: skip


def test_an_empty_range_has_no_pattern() -> None:
    assert decimal_range_pattern(Decimal(5), Decimal(1)) is None
    assert decimal_range_pattern(Decimal(1), Decimal(1), include_lower=False) is None
    assert decimal_range_pattern(Decimal(1), Decimal(1)) == "1(\\.0+)?"


def test_bounds_with_more_digits_than_the_decimal_context_stay_exact() -> None:
    lower = Decimal("-123456789012345678901234567890.5")

    pattern = decimal_range_pattern(lower, None)

    assert pattern is not None
    assert re.fullmatch(pattern, "-123456789012345678901234567890.5")
    assert not re.fullmatch(pattern, "-123456789012345678901234567890.51")


@pytest.fixture(scope="module")
def raw_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[tantivy.Index, tantivy.Schema]:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("text", stored=True, tokenizer_name="raw", index_option="basic")
    schema = builder.build()
    index = tantivy.Index(schema, path=str(Path(tmp_path_factory.mktemp("raw"))))
    writer = index.writer(16_000_000, 1)
    for text in RAW_TEXTS:
        writer.add_json(json.dumps({"text": text}))
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    return index, schema


def tantivy_texts(raw_index: tuple[tantivy.Index, tantivy.Schema], regex: str) -> set[str]:
    index, schema = raw_index
    searcher = index.searcher()
    hits = searcher.search(tantivy.Query.regex_query(schema, "text", regex), 100).hits
    return {str(searcher.doc(address).get_first("text")) for _score, address in hits}


def test_tantivy_runs_the_range_patterns_like_python(raw_index: tuple[tantivy.Index, tantivy.Schema]) -> None:
    for lower, upper, include_lower, include_upper in random_ranges(60):
        pattern = decimal_range_pattern(lower, upper, include_lower=include_lower, include_upper=include_upper)
        if pattern is None:
            continue
        expected = {text for text in TEXTS if in_range(text, lower, upper, include_lower, include_upper)}
        assert tantivy_texts(raw_index, f"({pattern})") == expected, pattern


@pytest.mark.parametrize(
    ("pattern", "prefix", "expected"),
    [
        ("web-?", "", {"web-1"}),
        ("web-*", "", {"web-1", "web-10"}),
        ("*-1*", "", {"web-1", "web-10", "-1", "--1", "-1.5", "-1.50", "a.b+c=-1.5"}),
        ("x?y", "", {"x\ny"}),
        ("we\\*b", "", {"we*b"}),
        ("*", "k=", {"k=500", "k=5000"}),
        ("5?0", "k=", {"k=500"}),
        ("-1.?", "a.b+c=", {"a.b+c=-1.5"}),
        ("1", "é=", {"é=1"}),
        ("w\\\\eb", "", {"w\\eb"}),
    ],
)
def test_wildcards_mean_the_same_in_tantivy_and_python(
    raw_index: tuple[tantivy.Index, tantivy.Schema], pattern: str, prefix: str, expected: set[str]
) -> None:
    assert tantivy_texts(raw_index, glob_to_rust(pattern, prefix)) == expected
    python = glob_to_python(pattern)
    assert {text for text in RAW_TEXTS if text.startswith(prefix) and python.fullmatch(text[len(prefix) :])} == expected


def test_a_wildcard_never_backtracks_catastrophically() -> None:
    matcher = glob_to_python("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b")
    started = time.perf_counter()

    assert matcher.fullmatch("a" * 5000) is None
    assert time.perf_counter() - started < 0.5


def test_escapes_make_any_text_literal() -> None:
    hostile = 'a.b+c*d?e(f)g|h[i]j{k}l^m$n#o&p-q~r\\s t"u<v>w@x=é'

    assert re.fullmatch(rust_escape(hostile), hostile)
    assert re.fullmatch(lucene_escape(hostile), hostile)


def test_values_have_one_index_text_each() -> None:
    assert value_texts("u123") == ["u123"]
    assert value_texts(True) == ["true"]
    assert value_texts(-12) == ["-12"]
    assert value_texts(500.0) == ["500.0"]
    assert value_texts(1e20) == ["100000000000000000000.0"]
    assert value_texts(1.5e-7) == ["0.00000015"]
    assert value_texts([1, None, "a", float("nan")]) == ["1", "a"]
    assert value_texts(None) == value_texts(float("inf")) == value_texts([]) == []
    assert value_texts("é" * 5000) == ["é" * 4096]
    assert float_text(float("nan")) is None
    assert plain_decimal("-0.50") == Decimal("-0.50")
    assert plain_decimal("1e3") is None
    assert plain_decimal("01") is None


@pytest.mark.parametrize(
    "text",
    [
        "Connection reset by peer",
        "ÉCOLE straße İstanbul हिंदी Ⅻ ² ½ a_b",
        "Zahlung fehlgeschlagen: Größe überschritten",
        "検索 クエリ 完了",
        "ΟΔΟΣ ΟΔΟΣ",
        "naïve café ﬁle",
        "a " + "é" * 127 + " b " + "é" * 128 + " c",
        "x" * 255 + " " + "y" * 256 + " z",
    ],
)
def test_words_are_those_of_the_index_analyzer(text: str) -> None:
    indexed = message_analyzer().analyze(text)

    assert [word for _position, word in positioned_words(text)] == indexed
    words, too_long = analyze(text)
    assert too_long == (len(words) > len(indexed))
    if not too_long:
        assert words == indexed
