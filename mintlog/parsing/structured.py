"""Messages that carry structure: a JSON object written as text (`{"level": "warn", "msg": "..."}`).

The normalizer lifts such a message's keys into the event (`mintlog.domain.normalize`, "Message"); logfmt
lines are the other structured form (`mintlog.parsing.logfmt`). A decoder may use both on a protocol's text.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["parse_json_object"]


def parse_json_object(text: str) -> dict[str, Any] | None:
    """The object `text` holds when it is exactly one JSON object, else None (invalid JSON, or another value).

    Numbers stay numbers (integers of any size); the caller checks the object against its limits.
    """
    try:
        decoded: Any = msgspec.json.decode(text)
    except msgspec.DecodeError:
        return None
    return decoded if decoded.__class__ is dict else None
