"""`publish_in_parts`: a batch that may be too big for one bus message is published in as few parts as fit."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from mintlog.ports.bus import EventBus

__all__ = ["PAYLOAD_HEADROOM_BYTES", "publish_in_parts"]

_Item = TypeVar("_Item")

PAYLOAD_HEADROOM_BYTES = 4096
"""Room left under the bus's payload limit for the headers and the protocol's framing of a message."""


async def publish_in_parts(
    bus: EventBus,
    subject: str,
    items: list[_Item],
    *,
    encode: Callable[[int, list[_Item]], bytes],
    msg_id_prefix: str,
) -> int:
    """Publish `items` on `subject` in order, one message when it fits, and return how many messages it took.

    `encode(first_index, chunk)` is the payload of the consecutive `chunk` of `items` that starts at
    `first_index`. A payload over the bus's limit (less `PAYLOAD_HEADROOM_BYTES`) is split in two halves,
    again and again, until every part fits; a single item that does not fit is published alone and refused
    by the bus (`PayloadTooLarge`). The `n`-th message published (from 0) gets the msg id
    `{msg_id_prefix}{n}`: the split depends only on `items` and the limit, so publishing the same items
    again produces the same messages with the same msg ids, which the bus deduplicates part by part.
    Returns after the bus acknowledged every part; raises what `EventBus.publish` raises, after the parts
    before the failing one were stored.
    """
    limit = bus.max_payload_bytes - PAYLOAD_HEADROOM_BYTES
    pending: list[tuple[int, list[_Item]]] = [(0, items)]
    part = 0
    while pending:
        first_index, chunk = pending.pop(0)
        payload = encode(first_index, chunk)
        if len(payload) > limit and len(chunk) > 1:
            middle = len(chunk) // 2
            pending[:0] = [(first_index, chunk[:middle]), (first_index + middle, chunk[middle:])]
            continue
        await bus.publish(subject, payload, msg_id=f"{msg_id_prefix}{part}")
        part += 1
    return part
