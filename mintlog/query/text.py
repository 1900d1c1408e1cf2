"""Full-text analysis of `message`, identical to the Tantivy index's `mintlog_text` analyzer.

A message is split on every character that is not alphanumeric (Rust's `char::is_alphanumeric`), each word
of 256 UTF-8 bytes or more is dropped (its position stays empty, so a phrase never spans it), and the words
are lowercased character by character. ASCII text, by far the most common, is analyzed here in Python;
other text goes through Tantivy's own tokenizer and lowercaser, so the two never disagree on Unicode.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tantivy

__all__ = ["MAX_WORD_BYTES", "analyze", "positioned_words"]

MAX_WORD_BYTES = 255
"""Longest word the index keeps, in UTF-8 bytes."""

_ASCII_WORD = re.compile(r"[A-Za-z0-9]+")
_lock = threading.Lock()
_analyzers: tuple[tantivy.TextAnalyzer, tantivy.TextAnalyzer] | None = None


def _tantivy_analyzers() -> tuple[tantivy.TextAnalyzer, tantivy.TextAnalyzer]:
    """The Tantivy analyzers giving the original and the lowercased words; call with `_lock` held."""
    global _analyzers
    if _analyzers is None:
        import tantivy  # only for non-ASCII text

        _analyzers = (
            tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).build(),
            tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).filter(tantivy.Filter.lowercase()).build(),
        )
    return _analyzers


def positioned_words(text: str) -> list[tuple[int, str]]:
    """The words of `text` as the index sees them: `(position, lowercased word)`, long words left out."""
    if text.isascii():
        words = _ASCII_WORD.findall(text)
        return [(position, word.lower()) for position, word in enumerate(words) if len(word) <= MAX_WORD_BYTES]
    with _lock:
        original, lowered = _tantivy_analyzers()
        words = original.analyze(text)
        lowered_words = lowered.analyze(text)
    return [
        (position, lowered_word)
        for position, (word, lowered_word) in enumerate(zip(words, lowered_words, strict=True))
        if len(word.encode("utf-8", "surrogatepass")) <= MAX_WORD_BYTES
    ]


def analyze(text: str) -> tuple[list[str], bool]:
    """The words of a query text (lowercased, in order) and whether one of them is too long to be indexed."""
    if text.isascii():
        words = _ASCII_WORD.findall(text)
        return [word.lower() for word in words], any(len(word) > MAX_WORD_BYTES for word in words)
    with _lock:
        original, lowered = _tantivy_analyzers()
        words = original.analyze(text)
        lowered_words = lowered.analyze(text)
    too_long = any(len(word.encode("utf-8", "surrogatepass")) > MAX_WORD_BYTES for word in words)
    return lowered_words, too_long
