"""`NearCache`: served only while its invalidation subscription is live and recently confirmed; a value read
while an invalidation arrived is not kept; bounded in entries and in time."""

from __future__ import annotations

from mintlog.adapters.cache.near import NearCache
from tests.fakes import FakeClock as Clock


def live_near(clock: Clock, **options: float) -> NearCache:
    near = NearCache(clock=clock, max_silence_seconds=0.5, **options)  # type: ignore[arg-type]
    near.went_live(confirmed_at=clock.now)
    return near


def test_nothing_is_kept_or_served_before_the_subscription_is_live() -> None:
    clock = Clock()
    near = NearCache(clock=clock)
    near.put("k", b"v", 60, near.generation)
    assert near.get("k") is None
    assert not near.serving
    near.went_live(confirmed_at=clock.now)
    near.put("k", b"v", 60, near.generation)
    assert near.get("k") == b"v"
    assert near.hits == 1


def test_an_invalidation_drops_the_entry_and_a_read_racing_it_is_not_kept() -> None:
    clock = Clock()
    near = live_near(clock)
    near.put("apikey:a", b"principal", 60, near.generation)
    before_the_read = near.generation
    near.discard("apikey:a")  # the delete's message arrives while another read of the key is in flight
    near.put("apikey:a", b"principal", 60, before_the_read)  # that read's (stale) answer
    assert near.get("apikey:a") is None


def test_a_silent_subscription_stops_serving_until_redis_confirms_again() -> None:
    clock = Clock()
    near = live_near(clock)
    near.put("k", b"v", 60, near.generation)
    clock.now += 0.6  # no heartbeat answered for longer than max_silence: maybe a partition
    assert not near.serving
    assert near.get("k") is None
    near.confirmed(sent_at=clock.now - 0.05)
    assert near.get("k") == b"v"


def test_losing_or_regaining_the_subscription_clears_everything() -> None:
    clock = Clock()
    near = live_near(clock)
    near.put("k", b"v", 60, near.generation)
    near.went_down()
    assert len(near) == 0
    near.put("k", b"v", 60, near.generation)  # a read finishing while down is not kept
    assert len(near) == 0
    near.went_live(confirmed_at=clock.now)
    assert near.get("k") is None


def test_entries_live_at_most_max_ttl_and_never_past_their_redis_ttl() -> None:
    clock = Clock()
    near = live_near(clock, max_ttl_seconds=60)
    near.put("long", b"v", 300, near.generation)
    near.put("short", b"-", 0.2, near.generation)
    clock.now += 0.3
    near.confirmed(sent_at=clock.now)
    assert near.get("short") is None
    assert near.get("long") == b"v"
    clock.now += 60
    near.confirmed(sent_at=clock.now)
    assert near.get("long") is None


def test_the_least_recently_used_entry_is_evicted_past_max_entries() -> None:
    clock = Clock()
    near = live_near(clock, max_entries=2)
    near.put("a", b"1", 60, near.generation)
    near.put("b", b"2", 60, near.generation)
    assert near.get("a") == b"1"
    near.put("c", b"3", 60, near.generation)
    assert len(near) == 2
    assert near.get("b") is None
    assert near.get("a") == b"1"
    assert near.get("c") == b"3"


def test_a_flush_drops_everything() -> None:
    clock = Clock()
    near = live_near(clock)
    near.put("a", b"1", 60, near.generation)
    near.discard_all()
    assert near.get("a") is None
