"""Split a query string into tokens, each with its 0-based character offset.

Words run until whitespace or one of `( ) [ ] { } "`; a backslash makes the next character part of the
word whatever it is. A word keeps its raw text (escapes unresolved): the parser decides what `:`, `*`,
`?`, `>` and `<` mean, and an escaped one means itself. Quoted phrases are resolved here (`\\"` and `\\\\`,
or any escaped character, stand for themselves).

`-` and `+` directly before a clause (`-level:debug`, `+timeout`, `-(a b)`) are operators, except inside
a range and right after `field:` or `field:>` (and the other comparisons); elsewhere they belong to the word.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from mintlog.query.errors import QuerySyntaxError

__all__ = [
    "Kind",
    "Token",
    "count_wildcards",
    "ends_with_colon",
    "to_glob",
    "tokenize",
    "unescape",
    "unescaped_colon",
    "unescaped_wildcard",
]


class Kind(Enum):
    """What a token is."""

    WORD = "word"
    QUOTED = "quoted phrase"
    LPAREN = "'('"
    RPAREN = "')'"
    LBRACKET = "'['"
    RBRACKET = "']'"
    LBRACE = "'{'"
    RBRACE = "'}'"
    AND = "AND"
    OR = "OR"
    NOT = "NOT"
    MINUS = "'-'"
    PLUS = "'+'"
    END = "end of query"


@dataclass(frozen=True, slots=True)
class Token:
    """One token: its kind, its text (raw for words, resolved for quoted phrases), where it starts and where
    it ends (the offset after its last character, closing quote included)."""

    kind: Kind
    text: str
    position: int
    end: int


_PUNCTUATION = {
    "(": Kind.LPAREN,
    ")": Kind.RPAREN,
    "[": Kind.LBRACKET,
    "]": Kind.RBRACKET,
    "{": Kind.LBRACE,
    "}": Kind.RBRACE,
}
_WORD_END = frozenset('()[]{}"')
_OPERATORS = {"AND": Kind.AND, "&&": Kind.AND, "OR": Kind.OR, "||": Kind.OR, "NOT": Kind.NOT}


def ends_with_colon(raw: str) -> bool:
    """Whether a raw word ends with an unescaped `:` (so the next token is its value)."""
    if not raw.endswith(":"):
        return False
    backslashes = len(raw) - 1 - len(raw[:-1].rstrip("\\"))
    return backslashes % 2 == 0


def _expects_value(raw: str) -> bool:
    """Whether a word ends where its value should follow: `field:`, `field:>`, `field:<=`, ..."""
    if ends_with_colon(raw):
        return True
    for operator in (">=", "<=", ">", "<"):
        if raw.endswith(operator):
            return ends_with_colon(raw[: -len(operator)])
    return False


def tokenize(query: str) -> list[Token]:
    """The tokens of `query`, ending with one `END` token; raises `QuerySyntaxError` on a broken quote or escape."""
    tokens: list[Token] = []
    index = 0
    length = len(query)
    in_range = False
    while index < length:
        character = query[index]
        if character.isspace():
            index += 1
            continue
        kind = _PUNCTUATION.get(character)
        if kind is not None:
            tokens.append(Token(kind, character, index, index + 1))
            if kind in (Kind.LBRACKET, Kind.LBRACE):
                in_range = True
            elif kind in (Kind.RBRACKET, Kind.RBRACE):
                in_range = False
            index += 1
            continue
        if character == '"':
            index = _quoted(query, index, tokens)
            continue
        if (
            character in "-+"
            and not in_range
            and index + 1 < length
            and not query[index + 1].isspace()
            and query[index + 1] != ")"
            and not (tokens and tokens[-1].kind is Kind.WORD and _expects_value(tokens[-1].text))
        ):
            tokens.append(Token(Kind.MINUS if character == "-" else Kind.PLUS, character, index, index + 1))
            index += 1
            continue
        index = _word(query, index, tokens, in_range)
    tokens.append(Token(Kind.END, "", length, length))
    return tokens


def _quoted(query: str, start: int, tokens: list[Token]) -> int:
    characters: list[str] = []
    index = start + 1
    while index < len(query):
        character = query[index]
        if character == "\\":
            if index + 1 == len(query):
                break
            characters.append(query[index + 1])
            index += 2
            continue
        if character == '"':
            tokens.append(Token(Kind.QUOTED, "".join(characters), start, index + 1))
            return index + 1
        characters.append(character)
        index += 1
    raise QuerySyntaxError("unterminated quoted phrase: expected a closing '\"'", start)


def _word(query: str, start: int, tokens: list[Token], in_range: bool) -> int:
    index = start
    while index < len(query):
        character = query[index]
        if character == "\\":
            if index + 1 == len(query):
                raise QuerySyntaxError("a backslash must be followed by the character it escapes", index)
            index += 2
            continue
        if character.isspace() or character in _WORD_END:
            break
        index += 1
    raw = query[start:index]
    operator = None if in_range else _OPERATORS.get(raw)
    tokens.append(Token(operator or Kind.WORD, raw, start, index))
    return index


# --- raw words -------------------------------------------------------------------------------------------


def unescaped_colon(raw: str) -> int | None:
    """The index of the first unescaped `:` of a raw word."""
    index = 0
    while index < len(raw):
        character = raw[index]
        if character == "\\":
            index += 2
            continue
        if character == ":":
            return index
        index += 1
    return None


def unescaped_wildcard(raw: str) -> int | None:
    """The index of the first unescaped `*` or `?` of a raw word."""
    index = 0
    while index < len(raw):
        character = raw[index]
        if character == "\\":
            index += 2
            continue
        if character in "*?":
            return index
        index += 1
    return None


def unescape(raw: str) -> str:
    """A raw word with its escapes resolved."""
    if "\\" not in raw:
        return raw
    characters: list[str] = []
    index = 0
    while index < len(raw):
        if raw[index] == "\\" and index + 1 < len(raw):
            index += 1
        characters.append(raw[index])
        index += 1
    return "".join(characters)


def to_glob(raw: str) -> str:
    """A raw word as an OpenSearch wildcard pattern: only `*`, `?` and `\\` stay escaped; runs of `*` merge."""
    characters: list[str] = []
    index = 0
    while index < len(raw):
        character = raw[index]
        if character == "\\" and index + 1 < len(raw):
            escaped = raw[index + 1]
            characters.append("\\" + escaped if escaped in "*?\\" else escaped)
            index += 2
            continue
        if character == "*" and characters and characters[-1] == "*":
            index += 1
            continue
        characters.append(character)
        index += 1
    return "".join(characters)


def count_wildcards(pattern: str) -> int:
    """The number of unescaped `*` and `?` in a wildcard pattern."""
    count = 0
    index = 0
    while index < len(pattern):
        if pattern[index] == "\\":
            index += 2
            continue
        count += pattern[index] in "*?"
        index += 1
    return count
