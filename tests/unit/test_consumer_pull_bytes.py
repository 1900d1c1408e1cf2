"""A pull brings in about `pull_bytes`, not `fetch_batch` times the largest message: a backlog of large batches
must not make nats-server drop the connection as a slow consumer (64 MiB waiting for one client)."""

from __future__ import annotations

import asyncio

from mintlog.adapters.bus.memory import MemoryEventBus
from mintlog.ports.bus import BusMessage
from mintlog.roles.kit.consumer import PULL_MAX_BYTES, ConsumerLoop

KIB = 1024


async def pulled_sizes(sizes: list[int], *, pull_bytes: int, fetch_batch: int = 64) -> list[list[int]]:
    """The message sizes of each list a `ConsumerLoop` handed over, for a backlog of messages of `sizes`."""
    bus = MemoryEventBus(max_payload_bytes=1024 * KIB)
    await bus.start()
    for size in sizes:
        await bus.publish("logs.raw.t1", b"x" * size)
    pulls: list[list[int]] = []
    done = asyncio.Event()

    async def handle(messages: list[BusMessage]) -> None:
        pulls.append([len(message.data) for message in messages])
        for message in messages:
            await message.ack()
        if sum(len(pull) for pull in pulls) == len(sizes):
            done.set()

    loop = ConsumerLoop(
        name="test",
        bus=bus,
        stream="LOGS_RAW",
        durable="pipeline",
        filter_subject="logs.raw.>",
        ack_wait_seconds=30,
        fetch_batch=fetch_batch,
        handle=handle,
        pull_bytes=pull_bytes,
    )
    await loop.start()
    try:
        await asyncio.wait_for(done.wait(), 10)
    finally:
        await loop.stop(1)
        await bus.close()
    return pulls


async def test_a_backlog_of_large_messages_comes_in_a_few_at_a_time() -> None:
    pulls = await pulled_sizes([256 * KIB] * 40, pull_bytes=1024 * KIB)
    assert pulls[0] == [256 * KIB], "before any pull it assumes the largest message the bus carries"
    assert all(sum(pull) <= 1024 * KIB for pull in pulls)
    assert max(len(pull) for pull in pulls) == 4


async def test_small_messages_still_come_in_pulls_of_fetch_batch() -> None:
    pulls = await pulled_sizes([1 * KIB] * 300, pull_bytes=PULL_MAX_BYTES, fetch_batch=64)
    assert len(pulls[0]) == 16  # 16 MiB of messages up to 1 MiB
    assert max(len(pull) for pull in pulls[1:]) == 64


async def test_the_expected_size_follows_the_messages_when_they_grow() -> None:
    pulls = await pulled_sizes([1 * KIB] * 100 + [512 * KIB] * 20, pull_bytes=2048 * KIB, fetch_batch=64)
    large = [pull for pull in pulls if 512 * KIB in pull]
    # The first pull meeting the large ones may bring 64 of what it took for 1 KiB messages; the ones after it
    # are back to about the byte bound.
    assert all(sum(pull) <= 2048 * KIB + 512 * KIB for pull in large[2:])
