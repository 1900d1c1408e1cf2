"""The error a query that cannot be parsed, or that breaks a limit, raises."""

from __future__ import annotations

from mintlog.errors import BadRequest

__all__ = ["QuerySyntaxError"]


class QuerySyntaxError(BadRequest):
    """The query is malformed, names an unknown field or level, or exceeds a limit; answered as 400
    `invalid_query`.

    `position` is the 0-based offset, in characters (code points) of the query string, where the problem
    was found; it is also in `extra`, so the problem+json body carries it. `reason` is the sentence
    without the position. `suggestion`, when there is one, is the whole query as it was probably meant (it
    parses); it is in `extra` too.
    """

    default_code = "invalid_query"

    def __init__(self, reason: str, position: int, *, suggestion: str | None = None) -> None:
        extra: dict[str, object] = {"position": position}
        if suggestion is not None:
            extra["suggestion"] = suggestion
        super().__init__(f"invalid query at position {position}: {reason}", extra=extra)
        self.reason = reason
        self.position = position
        self.suggestion = suggestion
