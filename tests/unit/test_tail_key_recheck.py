"""Open tails whose API key stops authenticating end with an `error` frame naming why, and free their slot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from mintlog.errors import ConfigError, TooManyRequests
from mintlog.metrics import Metrics
from mintlog.roles.api.logs.tail_session import KEEPALIVE, TailFrame
from mintlog.settings import load_settings
from tests.unit.test_tail_session import (
    KEY_HASH,
    NOW,
    CountingBus,
    FakeStore,
    Keys,
    bus_fixture,  # noqa: F401  (the `bus` fixture)
    event,
    hub_of,
    label,
    labels,
    next_frame,
    publish,
    sample,
    session_of,
    tail_tasks,
)

OTHER_KEY_HASH = "b" * 64


async def rest(frames: AsyncIterator[TailFrame]) -> list[str]:
    """The labels of every frame left, failing if the stream does not end."""

    async def read() -> list[str]:
        return [label(frame) async for frame in frames]

    return await asyncio.wait_for(read(), 5)


@pytest.mark.parametrize("refusal", ["key_revoked", "key_expired", "tenant_suspended", "tenant_deleted"])
async def test_a_refused_key_ends_its_tail_with_the_reason_and_frees_the_slot_at_once(
    bus: CountingBus, refusal: str
) -> None:
    metrics, keys = Metrics(), Keys()
    hub = hub_of(1, metrics, keys)
    session = session_of(bus, hub=hub, metrics=metrics)
    frames = session.frames()
    assert await next_frame(frames) == KEEPALIVE
    await publish(bus, event("before"))
    assert await labels(frames, 1) == ["before"]

    keys.refusals[KEY_HASH] = refusal  # type: ignore[assignment]
    assert await hub.recheck_keys() == 1

    # The slot is free before the client reads anything more, so a dead stream never blocks a new tail.
    assert hub.open_tails("t1") == 0
    assert sample(metrics, "mintlog_tails_open") == 0
    hub.acquire("t1", OTHER_KEY_HASH).release()
    assert await rest(frames) == [f"ended:{refusal}"]
    assert bus.open_subscriptions == 0
    assert tail_tasks() == []


async def test_events_queued_before_the_refusal_are_not_sent_after_it(bus: CountingBus) -> None:
    keys = Keys()
    hub = hub_of(1, Metrics(), keys)
    frames = session_of(bus, hub=hub).frames()
    await next_frame(frames)
    await publish(bus, event("queued-1"), event("queued-2"))
    for _ in range(100):  # let the subscriber queue them while the client does not read
        await asyncio.sleep(0)

    keys.refusals[KEY_HASH] = "key_revoked"
    await hub.recheck_keys()

    assert await rest(frames) == ["ended:key_revoked"]


async def test_a_refusal_during_the_replay_stops_it(bus: CountingBus) -> None:
    keys = Keys()
    hub = hub_of(1, Metrics(), keys)
    store = FakeStore([event(f"s{number}", minutes_ago=10 - number) for number in range(6)])

    async def revoke_after_the_first_page(search_number: int) -> None:
        if search_number == 2:
            keys.refusals[KEY_HASH] = "key_revoked"
            await hub.recheck_keys()

    store.before_search = revoke_after_the_first_page
    frames = session_of(bus, store, since=NOW - timedelta(hours=1), hub=hub, page_size=2).frames()
    assert await rest(frames) == ["keepalive", "s0", "s1", "ended:key_revoked"]


async def test_each_key_is_checked_once_per_pass_and_only_its_own_tails_end(bus: CountingBus) -> None:
    keys = Keys()
    hub = hub_of(10, Metrics(), keys)
    revoked = [session_of(bus, hub=hub).frames() for _ in range(3)]
    kept = [session_of(bus, hub=hub, key_hash=OTHER_KEY_HASH).frames() for _ in range(2)]
    for frames in revoked + kept:
        await next_frame(frames)

    keys.refusals[KEY_HASH] = "key_revoked"
    assert await hub.recheck_keys() == 3

    assert sorted(keys.checks) == [KEY_HASH, OTHER_KEY_HASH]  # five tails, two keys, two checks
    for frames in revoked:
        assert await rest(frames) == ["ended:key_revoked"]
    assert hub.open_tails("t1") == 2
    await publish(bus, event("still-live"))
    for frames in kept:
        assert await labels(frames, 1) == ["still-live"]
        await frames.aclose()


async def test_an_unanswerable_check_keeps_the_tails_open(bus: CountingBus, caplog: pytest.LogCaptureFixture) -> None:
    keys = Keys()
    hub = hub_of(1, Metrics(), keys)
    frames = session_of(bus, hub=hub).frames()
    await next_frame(frames)

    keys.down = True
    assert await hub.recheck_keys() == 0

    assert "could not re-check 1 API keys of open tails" in caplog.text
    assert hub.open_tails("t1") == 1
    await publish(bus, event("still-live"))
    assert await labels(frames, 1) == ["still-live"]
    await frames.aclose()


async def test_keys_are_rechecked_every_interval_while_tails_are_open_and_not_after(bus: CountingBus) -> None:
    keys = Keys()
    hub = hub_of(1, Metrics(), keys, recheck_seconds=0.02)
    frames = session_of(bus, hub=hub).frames()
    await next_frame(frames)
    await asyncio.sleep(0.2)
    assert len(keys.checks) >= 3

    keys.refusals[KEY_HASH] = "key_expired"
    assert await rest(frames) == ["ended:key_expired"]
    await asyncio.sleep(0.1)
    checks = len(keys.checks)
    await asyncio.sleep(0.1)
    assert len(keys.checks) == checks  # nothing open: nothing checked
    assert not [task for task in asyncio.all_tasks() if task.get_name() == "recheck-tails"]

    # A tail opened later is watched again.
    keys.refusals.clear()
    again = session_of(bus, hub=hub).frames()
    await next_frame(again)
    keys.refusals[KEY_HASH] = "key_revoked"
    assert await rest(again) == ["ended:key_revoked"]


async def test_a_tail_refused_while_its_client_is_not_reading_still_frees_its_slot(bus: CountingBus) -> None:
    keys = Keys()
    hub = hub_of(1, Metrics(), keys)
    session = session_of(bus, hub=hub)
    frames = session.frames()
    await next_frame(frames)  # then the client stops reading: the stream is never resumed

    keys.refusals[KEY_HASH] = "tenant_suspended"
    await hub.recheck_keys()

    assert hub.open_tails("t1") == 0
    replacement = hub.acquire("t1", OTHER_KEY_HASH)  # the cap is 1: the slot was really freed
    with pytest.raises(TooManyRequests):
        hub.acquire("t1", OTHER_KEY_HASH)
    replacement.release()
    for _ in range(100):
        if bus.open_subscriptions == 0:
            break
        await asyncio.sleep(0)
    assert bus.open_subscriptions == 0  # no more events are taken for it
    await session.close()
    await frames.aclose()


@pytest.mark.parametrize("value", ["0", "0.05", "61", "often"])
def test_a_bad_recheck_interval_names_the_variable_and_the_value(value: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({"MINTLOG_TAIL__KEY_RECHECK_SECONDS": value}, env_file=None)
    assert f"MINTLOG_TAIL__KEY_RECHECK_SECONDS={value!r}" in str(error.value)
