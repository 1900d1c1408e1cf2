"""Parse a query string into a `Node` tree, checking names, values and limits.

Grammar (EBNF; see docs/query-language.md for every construct)::

    query      = [ or ] END ;
    or         = and { ( "OR" | "||" ) and } ;
    and        = unary { [ "AND" | "&&" ] unary } ;          (* adjacent clauses are AND-ed *)
    unary      = ( "NOT" | "-" | "+" ) unary | primary ;
    primary    = "(" or ")" | clause ;
    clause     = field ":" value | "_exists_:" field | word | phrase | "*" ;
    value      = word | phrase | range | comparison | "(" or ")" ;  (* inside, bare values use the field *)
    range      = ( "[" | "{" ) bound "TO" bound ( "]" | "}" ) ;
    comparison = ( ">" | ">=" | "<" | "<=" ) bound ;

Precedence: NOT (and `-`) binds tightest, then AND (explicit or implicit), then OR. The parse is one
left-to-right pass with no backtracking; every limit is checked as it is reached, so any input is answered
in time linear in its length.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

from mintlog.domain.events import LEVELS
from mintlog.query.ast import (
    ALWAYS_PRESENT_FIELDS,
    FIELDS_PREFIX,
    KEYWORD_FIELDS,
    Exists,
    MatchAll,
    MatchNone,
    Node,
    Not,
    NumberRange,
    Term,
    Text,
    TimeBound,
    TimeRange,
    Wildcard,
    all_of,
    any_of,
    field_key,
)
from mintlog.query.errors import QuerySyntaxError
from mintlog.query.hints import (
    QueryWarning,
    equals_sign_field,
    level_meant,
    lowercase_operator,
    quoted,
    replace_span,
    similar_field,
    unknown_field_fix,
    unknown_level_reason,
)
from mintlog.query.lexer import (
    Kind,
    Token,
    count_wildcards,
    to_glob,
    tokenize,
    unescape,
    unescaped_colon,
    unescaped_wildcard,
)
from mintlog.query.patterns import decimal_range_pattern, glob_to_python
from mintlog.query.text import analyze
from mintlog.query.timebounds import resolve_time

__all__ = ["MAX_WARNINGS", "ParsedQuery", "QueryLimits", "parse", "parse_with_warnings"]

_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
# Time expressions are checked against a fixed instant at parse time and resolved with the caller's `now`.
_REFERENCE_NOW = datetime(2000, 1, 1, tzinfo=UTC)
_HIGH_CARDINALITY_FIELDS = frozenset({"id", "trace_id", "span_id"})
_FIELD_LIST = "message, timestamp, service, level, host, trace_id, span_id, source, id or fields.<key>"
_COMPARISONS = (">=", "<=", ">", "<")
_CLAUSE_STARTS = (Kind.WORD, Kind.QUOTED, Kind.LPAREN, Kind.NOT, Kind.MINUS, Kind.PLUS)
_BRACKETS = (Kind.LBRACKET, Kind.RBRACKET, Kind.LBRACE, Kind.RBRACE)
_LEVEL_LIST = ", ".join(LEVELS)
MAX_WARNINGS = 10
"""Most warnings one query gets: an answer lists a few mistakes, not one per word of a hostile query."""
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class QueryLimits:
    """Bounds that keep parsing and every compiled query cheap; each breach is a `QuerySyntaxError`."""

    max_length: int = 4096
    """Longest query, in characters."""
    max_depth: int = 32
    """Deepest nesting of parentheses, field groups and NOT/-/+ operators."""
    max_clauses: int = 256
    """Most leaf clauses (terms, phrases, field matches, ranges, `_exists_`)."""
    max_pattern_length: int = 256
    """Longest wildcard pattern, in characters."""
    max_wildcards: int = 16
    """Most `*` and `?` in one pattern."""
    max_key_length: int = 1024
    """Longest key after `fields.`."""
    max_number_digits: int = 30
    """Most digits before, and after, the decimal point of a number used in a range or comparison."""
    max_range_pattern: int = 700
    """Longest regular expression a numeric range may compile to (OpenSearch refuses more than 1000)."""


_DEFAULT_LIMITS = QueryLimits()


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    """A parsed query and the warnings of what in it is valid but likely not what was meant."""

    node: Node
    warnings: tuple[QueryWarning, ...]


def parse(query: str, *, limits: QueryLimits = _DEFAULT_LIMITS) -> Node:
    """The tree of `query`; an empty or blank query is `MatchAll`.

    Raises `QuerySyntaxError` naming the 0-based character offset of the first problem (and, for a
    plausible mistake, a `suggestion`). Parsing does not depend on the time: relative times (`now-1h`) are
    only checked here and resolved by the compilers.
    """
    return parse_with_warnings(query, limits=limits).node


def parse_with_warnings(query: str, *, limits: QueryLimits = _DEFAULT_LIMITS) -> ParsedQuery:
    """`parse`, with the warnings of the query (docs/query-language.md, "Hints"), in query order."""
    return _parse(query, limits, hints=True)


def _parse(query: str, limits: QueryLimits, *, hints: bool) -> ParsedQuery:
    if len(query) > limits.max_length:
        raise QuerySyntaxError(f"the query is longer than {limits.max_length} characters", limits.max_length)
    parser = _Parser(query, tokenize(query), limits, hints=hints)
    node = parser.parse()
    return ParsedQuery(node, tuple(parser.warnings))


class _Parser:
    def __init__(self, query: str, tokens: list[Token], limits: QueryLimits, *, hints: bool) -> None:
        self._query = query
        self._tokens = tokens
        self._index = 0
        self._limits = limits
        self._hints = hints
        self._depth = 0
        self._clauses = 0
        self.warnings: list[QueryWarning] = []

    # --- token helpers ------------------------------------------------------------------------------

    def _peek(self) -> Token:
        return self._tokens[self._index]

    def _next(self) -> Token:
        token = self._tokens[self._index]
        if token.kind is not Kind.END:
            self._index += 1
        return token

    def _fail(self, expected: str, token: Token) -> QuerySyntaxError:
        reason = f"expected {expected}, found {_describe(token)}"
        if token.kind in _BRACKETS and self._hints:
            return self._bracket_in_word(reason, token)
        return QuerySyntaxError(reason, token.position)

    # --- hints --------------------------------------------------------------------------------------

    def _parses(self, suggestion: str) -> str | None:
        """`suggestion` when it is a valid query (checked without hints, so this never recurses), else None."""
        try:
            _parse(suggestion, self._limits, hints=False)
        except QuerySyntaxError:
            return None
        return suggestion

    def _bracket_in_word(self, reason: str, token: Token) -> QuerySyntaxError:
        """The error for a bracket that is part of a word (`kernel[0]`, `fields.key:a[1]`): quote the word."""
        query = self._query
        start, end = token.position, token.end
        while start > 0 and not query[start - 1].isspace() and query[start - 1] not in '()"':
            start -= 1
        while end < len(query) and not query[end].isspace() and query[end] not in '()"':
            end += 1
        word = query[start:end]
        if not word.strip("[]{}"):
            return QuerySyntaxError(reason, token.position)
        colon = unescaped_colon(word)
        if colon is not None and self._is_field(unescape(word[:colon])):
            start += colon + 1  # the field is right; its value needs the quotes
        text = unescape(query[start:end])
        suggestion = self._parses(replace_span(query, start, end, quoted(text)))
        if suggestion is None:
            return QuerySyntaxError(reason, token.position)
        return QuerySyntaxError(
            f"{reason}; brackets start a range only after field:, so to search for {text} quote it: {quoted(text)}",
            token.position,
            suggestion=suggestion,
        )

    def _lowercase_operator(self, token: Token) -> str | None:
        """`AND`/`OR` when `token` is that word in another case, standing between two clauses."""
        if token.kind is not Kind.WORD:
            return None
        operator = lowercase_operator(token.text)
        if operator is None or self._tokens[self._index + 1].kind not in _CLAUSE_STARTS:
            return None
        return operator

    def _warn(self, code: str, message: str, position: int, suggestion: str | None) -> None:
        self.warnings.append(QueryWarning(code=code, message=message, position=position, suggestion=suggestion))

    def _warning_wanted(self) -> bool:
        return self._hints and len(self.warnings) < MAX_WARNINGS

    def _warn_lowercase_operator(self, token: Token, operator: str) -> None:
        if not self._warning_wanted():
            return
        # An operator between two clauses is always valid where the word was: no need to parse the suggestion.
        suggestion = replace_span(self._query, token.position, token.end, operator)
        self._warn(
            "lowercase_operator",
            f"{token.text!r} is searched as a word (operators are upper case); did you mean {operator}? "
            "To search the words, quote them as a phrase",
            token.position,
            suggestion,
        )

    def _warn_equals_sign(self, token: Token) -> None:
        if not self._warning_wanted():
            return
        meant = equals_sign_field(token.text)
        if meant is None:
            return
        field, value = meant
        if field == "level" and value.lower() not in LEVELS:
            value = level_meant(value) or value
        clause = f"{field}:{value}"
        # One clause for one clause: the query is valid with it when the clause is valid alone.
        valid = self._parses(clause) is not None
        self._warn(
            "equals_sign",
            f"{token.text!r} is searched as text; to match a field, write {clause}",
            token.position,
            replace_span(self._query, token.position, token.end, clause) if valid else None,
        )

    def _enter(self, token: Token) -> None:
        self._depth += 1
        if self._depth > self._limits.max_depth:
            raise QuerySyntaxError(f"the query nests deeper than {self._limits.max_depth} levels", token.position)

    def _leaf(self, position: int) -> None:
        self._clauses += 1
        if self._clauses > self._limits.max_clauses:
            raise QuerySyntaxError(f"the query has more than {self._limits.max_clauses} clauses", position)

    # --- boolean structure --------------------------------------------------------------------------

    def parse(self) -> Node:
        if self._peek().kind is Kind.END:
            return MatchAll()
        node = self._or(None)
        token = self._peek()
        if token.kind is not Kind.END:
            if token.kind is Kind.RPAREN:
                raise QuerySyntaxError("unexpected ')': there is no '(' to close", token.position)
            raise self._fail("AND, OR or another clause", token)
        return node

    def _or(self, field: str | None) -> Node:
        clauses = [self._and(field)]
        while self._peek().kind is Kind.OR:
            self._next()
            clauses.append(self._and(field))
        return any_of(clauses)

    def _and(self, field: str | None) -> Node:
        clauses = [self._unary(field)]
        while True:
            token = self._peek()
            if token.kind is Kind.AND:
                self._next()
            elif token.kind not in _CLAUSE_STARTS:
                break
            elif (operator := self._lowercase_operator(token)) is not None:
                # Still the word it always was (never a level value), with a warning.
                self._next()
                self._warn_lowercase_operator(token, operator)
                clauses.append(
                    self._word_value(field or "message", token.text, token.position, token.end, lenient=True)
                )
                continue
            clauses.append(self._unary(field))
        return all_of(clauses)

    def _unary(self, field: str | None) -> Node:
        token = self._peek()
        if token.kind in (Kind.NOT, Kind.MINUS, Kind.PLUS):
            self._next()
            self._enter(token)
            clause = self._unary(field)
            self._depth -= 1
            if token.kind is Kind.PLUS:
                return clause
            return _negate(clause)
        return self._primary(field)

    def _primary(self, field: str | None) -> Node:
        token = self._next()
        if token.kind is Kind.LPAREN:
            return self._group(token, field)
        if token.kind is Kind.WORD:
            return self._word_clause(token, field)
        if token.kind is Kind.QUOTED:
            return self._quoted_value(field or "message", token)
        if token.kind in (Kind.LBRACKET, Kind.LBRACE) and field is not None:
            return self._range(field, token)
        raise self._fail("a term, a quoted phrase, field:value, or '('", token)

    def _group(self, opening: Token, field: str | None) -> Node:
        self._enter(opening)
        if self._peek().kind is Kind.RPAREN:
            raise self._fail("a clause inside the parentheses", self._peek())
        node = self._or(field)
        closing = self._next()
        if closing.kind is not Kind.RPAREN:
            raise self._fail(f"')' to close the '(' at position {opening.position}", closing)
        self._depth -= 1
        return node

    # --- clauses ------------------------------------------------------------------------------------

    def _word_clause(self, token: Token, default_field: str | None) -> Node:
        raw = token.text
        colon = unescaped_colon(raw)
        if colon is None:
            if default_field is None:
                self._warn_equals_sign(token)
            return self._word_value(default_field or "message", raw, token.position, token.end)
        name_raw, value_raw = raw[:colon], raw[colon + 1 :]
        value_position = token.position + colon + 1
        if name_raw == "*" and value_raw == "*":
            self._leaf(token.position)
            return MatchAll()
        if unescape(name_raw) == "_exists_":
            return self._exists(value_raw, value_position)
        field = self._field(name_raw, token.position, value_raw)
        if value_raw:
            return self._word_value(field, value_raw, value_position, token.end)
        value = self._next()
        if value.kind is Kind.WORD:
            return self._word_value(field, value.text, value.position, value.end)
        if value.kind is Kind.QUOTED:
            return self._quoted_value(field, value)
        if value.kind in (Kind.LBRACKET, Kind.LBRACE):
            return self._range(field, value)
        if value.kind is Kind.LPAREN:
            return self._group(value, field)
        raise self._fail(f"a value after '{name_raw}:'", value)

    @staticmethod
    def _is_field(name: str) -> bool:
        return name in KEYWORD_FIELDS or name in ("message", "timestamp") or bool(field_key(name))

    def _field(self, name_raw: str, position: int, value_raw: str | None = None) -> str:
        """The field `name_raw` names; `value_raw` is the rest of the word after its colon (None after
        `_exists_:`), used to suggest a fix for an unknown name."""
        name = unescape(name_raw)
        if not self._is_field(name):
            raise self._unknown_field(name, name_raw, position, value_raw)
        key = field_key(name)
        if key is not None and len(key) > self._limits.max_key_length:
            raise QuerySyntaxError(f"field key longer than {self._limits.max_key_length} characters", position)
        return name

    def _unknown_field(self, name: str, name_raw: str, position: int, value_raw: str | None) -> QuerySyntaxError:
        reason = f"unknown field {name!r}: expected {_FIELD_LIST}"
        if not self._hints:
            return QuerySyntaxError(reason, position)
        if value_raw is None:
            replacement, whole_word = similar_field(name), False
        else:
            replacement, whole_word = unknown_field_fix(name, value_raw)
            if whole_word and not value_raw:
                replacement = None  # the value is another token: quoting the name alone would mean nothing
        if replacement is None:
            return QuerySyntaxError(reason, position)
        end = position + len(name_raw) + (1 + len(value_raw or "") if whole_word else 0)
        suggestion = self._parses(replace_span(self._query, position, end, replacement))
        if suggestion is None:
            return QuerySyntaxError(reason, position)
        if whole_word:
            hint = f"to search the text, quote the word: {replacement}"
        elif replacement.startswith(FIELDS_PREFIX):
            hint = f"did you mean {replacement}? (to search the text, quote the word)"
        else:
            hint = f"did you mean {replacement!r}?"
        return QuerySyntaxError(f"{reason}; {hint}", position, suggestion=suggestion)

    def _exists(self, value_raw: str, position: int) -> Node:
        if not value_raw:
            token = self._next()
            if token.kind is not Kind.WORD:
                raise self._fail("a field name after '_exists_:'", token)
            value_raw, position = token.text, token.position
        self._leaf(position)
        field = self._field(value_raw, position)
        if field == "message":
            raise QuerySyntaxError("every event has a message; use * to match every event", position)
        return MatchAll() if field in ALWAYS_PRESENT_FIELDS else Exists(field)

    def _word_value(self, field: str, raw: str, position: int, end: int, *, lenient: bool = False) -> Node:
        """The clause of the raw word `raw` (from `position` to `end` in the query) on `field`; `lenient`
        takes a `level` value as it is, unchecked."""
        self._leaf(position)
        if field == "message":
            wildcard = unescaped_wildcard(raw)
            if raw == "*":
                return MatchAll()
            if wildcard is not None:
                raise QuerySyntaxError(
                    "wildcards work on keyword fields and fields.* only, not on full text (escape or quote it)",
                    position + wildcard,
                )
            return self._text(unescape(raw), position)
        if raw == "*":
            return self._exists_value(field)
        operator = next((op for op in _COMPARISONS if raw.startswith(op)), None)
        if operator is not None:
            return self._comparison(field, operator, raw[len(operator) :], position)
        if field == "timestamp":
            wildcard = unescaped_wildcard(raw)
            if wildcard is not None:
                raise QuerySyntaxError("wildcards do not apply to timestamp; use a range", position + wildcard)
            bound = self._time_bound(unescape(raw), position)
            return TimeRange(lower=bound, upper=bound)
        if unescaped_wildcard(raw) is not None:
            return self._wildcard(field, raw, position)
        value = unescape(raw)
        if field == "level":
            return Term(field, value.lower()) if lenient else self._level(value, position, end)
        number = self._equality_number(value) if field.startswith(FIELDS_PREFIX) else None
        return Term(field, value, number)

    def _quoted_value(self, field: str, token: Token) -> Node:
        self._leaf(token.position)
        if field == "message":
            if not token.text.strip():
                raise QuerySyntaxError("an empty phrase matches nothing", token.position)
            return self._text(token.text, token.position)
        if field == "timestamp":
            bound = self._time_bound(token.text, token.position)
            return TimeRange(lower=bound, upper=bound)
        if field == "level":
            return self._level(token.text, token.position, token.end)
        return Term(field, token.text)

    def _level(self, value: str, position: int, end: int) -> Node:
        """`level` equal to `value`, one of the six levels in any case; another value is an error, as it
        could never match (docs/query-language.md, "Hints")."""
        level = value.lower()
        if level in LEVELS:
            return Term("level", level)
        meant = level_meant(value) if self._hints else None
        suggestion = None if meant is None else self._parses(replace_span(self._query, position, end, meant))
        reason = unknown_level_reason(value, meant if suggestion is not None else None)
        raise QuerySyntaxError(reason, position, suggestion=suggestion)

    def _exists_value(self, field: str) -> Node:
        return MatchAll() if field in ALWAYS_PRESENT_FIELDS else Exists(field)

    def _text(self, text: str, position: int) -> Node:
        words, too_long = analyze(text)
        if not words:
            raise QuerySyntaxError(f"{text!r} has no letter or digit to search for", position)
        return MatchNone() if too_long else Text(tuple(words))

    def _wildcard(self, field: str, raw: str, position: int) -> Node:
        pattern = to_glob(raw)
        limits = self._limits
        if len(pattern) > limits.max_pattern_length:
            raise QuerySyntaxError(f"wildcard pattern longer than {limits.max_pattern_length} characters", position)
        wildcards = count_wildcards(pattern)
        if wildcards > limits.max_wildcards:
            raise QuerySyntaxError(f"wildcard pattern with more than {limits.max_wildcards} wildcards", position)
        if field in _HIGH_CARDINALITY_FIELDS and pattern[0] in "*?":
            raise QuerySyntaxError(f"a pattern on {field} must not start with a wildcard", position)
        if pattern == "*":
            return self._exists_value(field)
        if field == "level":
            pattern = pattern.lower()
            matches = glob_to_python(pattern)
            if not any(matches.fullmatch(level) for level in LEVELS):
                raise QuerySyntaxError(f"the pattern {raw!r} matches no level (levels are {_LEVEL_LIST})", position)
        return Wildcard(field, pattern)

    # --- ranges and comparisons ---------------------------------------------------------------------

    def _range(self, field: str, opening: Token) -> Node:
        self._leaf(opening.position)
        self._check_rangeable(field, opening.position)
        lower = self._bound_token()
        to = self._next()
        if to.kind is not Kind.WORD or to.text != "TO":
            raise self._fail("TO between the bounds of a range", to)
        upper = self._bound_token()
        closing = self._next()
        if closing.kind not in (Kind.RBRACKET, Kind.RBRACE):
            raise self._fail("']' or '}' to close the range", closing)
        include_lower = opening.kind is Kind.LBRACKET
        include_upper = closing.kind is Kind.RBRACKET
        if field == "timestamp":
            return TimeRange(
                lower=self._open_or(lower, self._time_bound),
                upper=self._open_or(upper, self._time_bound),
                include_lower=include_lower,
                include_upper=include_upper,
            )
        return self._number_range(
            field,
            self._open_or(lower, self._range_number),
            self._open_or(upper, self._range_number),
            include_lower,
            include_upper,
            opening.position,
        )

    def _bound_token(self) -> Token:
        token = self._next()
        if token.kind is Kind.WORD:
            return Token(Kind.WORD, "" if token.text == "*" else unescape(token.text), token.position, token.end)
        if token.kind is Kind.QUOTED:
            return token
        raise self._fail("a range bound (a value, or * for none)", token)

    def _open_or(self, token: Token, convert: Callable[[str, int], _T]) -> _T | None:
        if token.kind is Kind.WORD and not token.text:
            return None
        return convert(token.text, token.position)

    def _comparison(self, field: str, operator: str, bound_raw: str, position: int) -> Node:
        self._check_rangeable(field, position)
        bound_position = position + len(operator)
        if not bound_raw:
            token = self._next()
            if token.kind not in (Kind.WORD, Kind.QUOTED):
                raise self._fail(f"a value after '{operator}'", token)
            bound_text, bound_position = (
                token.text if token.kind is Kind.QUOTED else unescape(token.text),
                token.position,
            )
        else:
            bound_text = unescape(bound_raw)
        inclusive = operator.endswith("=")
        if field == "timestamp":
            bound = self._time_bound(bound_text, bound_position)
            if operator.startswith(">"):
                return TimeRange(lower=bound, include_lower=inclusive)
            return TimeRange(upper=bound, include_upper=inclusive)
        number = self._range_number(bound_text, bound_position)
        if operator.startswith(">"):
            return self._number_range(field, number, None, inclusive, True, position)
        return self._number_range(field, None, number, True, inclusive, position)

    def _check_rangeable(self, field: str, position: int) -> None:
        if field != "timestamp" and not field.startswith(FIELDS_PREFIX):
            raise QuerySyntaxError(
                f"ranges and comparisons apply to timestamp and fields.* only, not {field}", position
            )

    def _number_range(
        self,
        field: str,
        lower: Decimal | None,
        upper: Decimal | None,
        include_lower: bool,
        include_upper: bool,
        position: int,
    ) -> Node:
        pattern = decimal_range_pattern(lower, upper, include_lower=include_lower, include_upper=include_upper)
        if pattern is None:
            return MatchNone()
        if len(pattern) > self._limits.max_range_pattern:
            raise QuerySyntaxError("the range is too complex: use bounds with fewer digits", position)
        return NumberRange(field, lower, upper, include_lower, include_upper)

    def _range_number(self, text: str, position: int) -> Decimal:
        if _JSON_NUMBER.fullmatch(text) is None:
            raise QuerySyntaxError(f"expected a number (or *) as range bound, found {text!r}", position)
        number = Decimal(text)
        if not self._fits(number):
            raise QuerySyntaxError(
                f"a range bound may have at most {self._limits.max_number_digits} digits before and after the point",
                position,
            )
        return number

    def _equality_number(self, text: str) -> Decimal | None:
        if _JSON_NUMBER.fullmatch(text) is None:
            return None
        number = Decimal(text)
        return number if self._fits(number) else None

    def _fits(self, number: Decimal) -> bool:
        """Whether `number` written out in plain notation has few enough digits on both sides of the point."""
        _sign, digits, exponent = number.as_tuple()
        assert isinstance(exponent, int)  # finite: the number syntax has no NaN or Infinity
        significant = len(digits)
        while significant > 1 and digits[significant - 1] == 0:
            significant -= 1
            exponent += 1
        limit = self._limits.max_number_digits
        return significant + exponent <= limit and -exponent <= limit

    def _time_bound(self, text: str, position: int) -> TimeBound:
        bound = TimeBound(text, position)
        resolve_time(bound, _REFERENCE_NOW)
        return bound


def _negate(node: Node) -> Node:
    if isinstance(node, MatchAll):
        return MatchNone()
    if isinstance(node, MatchNone):
        return MatchAll()
    if isinstance(node, Not):
        return node.clause
    return Not(node)


def _describe(token: Token) -> str:
    if token.kind is Kind.WORD:
        return f"'{token.text}'"
    if token.kind is Kind.END:
        return "the end of the query"
    if token.kind is Kind.QUOTED:
        return "a quoted phrase"
    return token.kind.value
