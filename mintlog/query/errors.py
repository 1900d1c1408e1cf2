"""The error a query that cannot be parsed, or that breaks a limit, raises."""

from __future__ import annotations

from mintlog.errors import BadRequest

__all__ = ["QuerySyntaxError"]


class QuerySyntaxError(BadRequest):
    """The query is malformed, names an unknown field or exceeds a limit; answered as 400 `invalid_query`.

    `position` is the 0-based offset, in characters (code points) of the query string, where the problem
    was found; it is also in `extra`, so the problem+json body carries it. `reason` is the sentence
    without the position.
    """

    default_code = "invalid_query"

    def __init__(self, reason: str, position: int) -> None:
        super().__init__(f"invalid query at position {position}: {reason}", extra={"position": position})
        self.reason = reason
        self.position = position
