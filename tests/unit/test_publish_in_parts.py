"""`publish_in_parts` (the role kit's): a batch goes out as one message when it fits, else in halves that fit, with
msg ids that make a republish store nothing twice."""

from __future__ import annotations

import msgspec
import pytest

from mintlog.adapters.bus.memory import MemoryEventBus
from mintlog.domain.streams import raw_subject
from mintlog.errors import PayloadTooLarge
from mintlog.roles.kit.publish import PAYLOAD_HEADROOM_BYTES, publish_in_parts

LIMIT = 1000  # what one payload may carry under the bus's limit
ITEM = "x" * 90


def encode(first_index: int, chunk: list[str]) -> bytes:
    return msgspec.msgpack.encode([first_index, chunk])


async def started_bus() -> MemoryEventBus:
    bus = MemoryEventBus(max_payload_bytes=LIMIT + PAYLOAD_HEADROOM_BYTES)
    await bus.start()
    return bus


def stored(bus: MemoryEventBus) -> list[tuple[str | None, int, list[str]]]:
    """(msg id, first index, items) of every message in `LOGS_RAW`, in order."""
    out: list[tuple[str | None, int, list[str]]] = []
    for message in bus.broker.stream("LOGS_RAW").messages.values():
        first_index, chunk = msgspec.msgpack.decode(message.data, type=tuple[int, list[str]])
        out.append((message.headers.get("Nats-Msg-Id"), first_index, chunk))
    return out


async def test_a_batch_that_fits_is_one_message() -> None:
    bus = await started_bus()

    parts = await publish_in_parts(bus, raw_subject("acme"), [ITEM] * 5, encode=encode, msg_id_prefix="b1:")

    assert parts == 1
    assert stored(bus) == [("b1:0", 0, [ITEM] * 5)]


async def test_a_batch_too_big_for_one_message_goes_out_in_order_in_parts_that_fit() -> None:
    bus = await started_bus()
    items = [f"{index:02d}{ITEM}" for index in range(40)]  # about 3.7 KB encoded: four parts of ten

    parts = await publish_in_parts(bus, raw_subject("acme"), items, encode=encode, msg_id_prefix="b2:")

    messages = stored(bus)
    assert parts == len(messages) == 4
    assert [msg_id for msg_id, _, _ in messages] == ["b2:0", "b2:1", "b2:2", "b2:3"]
    assert [first_index for _, first_index, _ in messages] == [0, 10, 20, 30]
    assert [item for _, _, chunk in messages for item in chunk] == items
    assert all(len(encode(first_index, chunk)) <= LIMIT for _, first_index, chunk in messages)


async def test_publishing_the_same_items_again_stores_nothing_twice() -> None:
    bus = await started_bus()
    items = [f"{index:02d}{ITEM}" for index in range(40)]
    await publish_in_parts(bus, raw_subject("acme"), items, encode=encode, msg_id_prefix="b3:")

    await publish_in_parts(bus, raw_subject("acme"), items, encode=encode, msg_id_prefix="b3:")

    assert len(stored(bus)) == 4


async def test_one_item_over_the_limit_is_refused_by_the_bus() -> None:
    bus = await started_bus()

    with pytest.raises(PayloadTooLarge):
        await publish_in_parts(
            bus,
            raw_subject("acme"),
            ["small", "y" * (LIMIT + PAYLOAD_HEADROOM_BYTES)],
            encode=encode,
            msg_id_prefix="b4:",
        )

    assert stored(bus) == [("b4:0", 0, ["small"])]
