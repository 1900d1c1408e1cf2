"""Alert rules and their evaluation on SQLite and a real PostgreSQL, with a real Tantivy store and a memory bus.

A fake clock drives the evaluations; events are written to the store with timestamps relative to it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from mintlog.adapters.bus.memory import MemoryEventBus
from mintlog.adapters.db import migrations
from mintlog.adapters.db.alerting_sql import SqlAlertRuleStore
from mintlog.adapters.db.sql import SqlMetadataStore
from mintlog.adapters.logstore.tantivy import TantivyLogStore
from mintlog.domain.alert_rules import AlertRule, AlertRuleSpec, new_rule_id, validate_rule
from mintlog.domain.alerting import AlertEvent
from mintlog.domain.events import LogEvent
from mintlog.domain.streams import decode_alert_event
from mintlog.domain.tenants import Tenant, TenantChanges
from mintlog.errors import BusUnavailable, Conflict, StoreUnavailable
from mintlog.metrics import Metrics
from mintlog.ports.aggregation import AggregateQuery, AggregateResult
from mintlog.ports.bus import PublishAck
from mintlog.ports.logstore import SearchPage, SearchQuery
from mintlog.roles.alert.evaluator import RuleEvaluator
from mintlog.roles.alert.scheduler import AlertScheduler
from mintlog.settings import AlertSettings

pytestmark = pytest.mark.integration

START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
SETTINGS = AlertSettings(evaluation_lag_seconds=1.0)
_EVENT_NUMBERS = itertools.count()


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FlakyStore:
    """The Tantivy store, or a store that is down while `down` is set."""

    def __init__(self, inner: TantivyLogStore) -> None:
        self.inner = inner
        self.down = False
        self.barrier: asyncio.Barrier | None = None

    async def aggregate(self, query: AggregateQuery) -> AggregateResult:
        if self.barrier is not None:
            await self.barrier.wait()  # lets tests make evaluations overlap for sure
        if self.down:
            raise StoreUnavailable("store is down (test)")
        return await self.inner.aggregate(query)

    async def search(self, query: SearchQuery) -> SearchPage:
        if self.down:
            raise StoreUnavailable("store is down (test)")
        return await self.inner.search(query)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class FlakyBus(MemoryEventBus):
    """A memory bus whose publishes fail while `down` is set."""

    down = False

    async def publish(
        self, subject: str, payload: bytes, *, msg_id: str | None = None, headers: dict[str, str] | None = None
    ) -> PublishAck:
        if self.down:
            raise BusUnavailable("bus is down (test)")
        return await super().publish(subject, payload, msg_id=msg_id, headers=headers)


@dataclasses.dataclass
class World:
    metadata: SqlMetadataStore
    rules: SqlAlertRuleStore
    store: FlakyStore
    bus: FlakyBus
    clock: Clock
    url: str

    def evaluator(
        self, rules: SqlAlertRuleStore | None = None, bus: FlakyBus | None = None, settings: AlertSettings = SETTINGS
    ) -> RuleEvaluator:
        return RuleEvaluator(
            store=self.store,  # pyright: ignore[reportArgumentType]
            rules=rules or self.rules,
            bus=bus or self.bus,
            settings=settings,
            metrics=Metrics(),
            clock=self.clock,
        )

    async def add_rule(self, tenant_id: str = "acme", **body: Any) -> AlertRule:
        spec = validate_rule(
            msgspec.convert(
                {"name": "high-errors", "query": {"level": "error"}, "threshold": 5, "window_seconds": 300, **body},
                AlertRuleSpec,
            )
        )
        now = self.clock()
        rule = AlertRule(new_rule_id(), tenant_id, spec, now, now, now)
        return await self.rules.create_rule(rule, max_rules_per_tenant=500)

    async def log(self, count: int, *, level: str = "error", service: str = "checkout", ago: float = 5) -> None:
        at = self.clock() - timedelta(seconds=ago)
        events = [
            LogEvent(
                id=f"{at.timestamp():.0f}-{next(_EVENT_NUMBERS):06d}",
                tenant_id="acme",
                timestamp=at,
                received_at=at,
                service=service,
                level=level,  # pyright: ignore[reportArgumentType]
                message="payment failed",
                host="web-1",
            )
            for _ in range(count)
        ]
        await self.store.inner.write(events)

    async def published(self) -> list[AlertEvent]:
        """Every alert event on the bus so far, in order."""
        consumer = await self.bus.consumer(
            "ALERTS_EVENTS", f"test-{id(self)}", filter_subject="alerts.events.>", ack_wait_seconds=60
        )
        messages = await consumer.fetch(1000, 0.05)
        for message in messages:
            await message.ack()
        await consumer.close()
        return [decode_alert_event(message.data) for message in messages]


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    metadata = SqlMetadataStore(database_url)
    await metadata.start()
    store = TantivyLogStore(tmp_path / "index")
    await store.start()
    bus = FlakyBus()
    await bus.start()
    for tenant in ("acme", "other"):
        await metadata.create_tenant(Tenant(id=tenant, name=tenant, created_at=START))
    try:
        yield World(metadata, SqlAlertRuleStore(metadata), FlakyStore(store), bus, Clock(), database_url)
    finally:
        await bus.close()
        await store.close()
        await metadata.close()


def states(events: list[AlertEvent]) -> list[str]:
    return [f"{event.previous_state}>{event.state}" for event in events]


# The store


async def test_migration_0004_creates_and_drops_the_alert_tables(database_url: str) -> None:
    async def tables() -> set[str]:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
        finally:
            await engine.dispose()

    await migrations.upgrade(database_url)
    assert {"alert_rules", "alert_states"} <= await tables()
    await migrations.downgrade(database_url, "0003")
    assert not {"alert_rules", "alert_states"} & await tables()
    await migrations.upgrade(database_url)
    assert {"alert_rules", "alert_states"} <= await tables()


async def test_rules_are_stored_per_tenant_and_limited(world: World) -> None:
    rule = await world.add_rule(labels={"team": "payments"}, group_by="service")
    assert await world.rules.get_rule("acme", rule.id) == rule
    assert await world.rules.get_rule("other", rule.id) is None
    assert [found.id for found in await world.rules.list_rules("acme")] == [rule.id]
    assert await world.rules.list_rules("other") == []
    changed = msgspec.structs.replace(rule.spec, threshold=10.0)
    assert await world.rules.replace_rule("other", rule.id, changed, updated_at=START, next_evaluation_at=START) is None
    replaced = await world.rules.replace_rule("acme", rule.id, changed, updated_at=START, next_evaluation_at=START)
    assert replaced is not None
    assert replaced.spec.threshold == 10.0
    assert replaced.spec.labels == {"team": "payments"}
    assert not await world.rules.delete_rule("other", rule.id)
    assert await world.rules.delete_rule("acme", rule.id)
    assert await world.rules.get_rule("acme", rule.id) is None
    await world.add_rule()
    with pytest.raises(Conflict):
        await world.rules.create_rule(
            AlertRule(new_rule_id(), "acme", rule.spec, START, START, START), max_rules_per_tenant=1
        )


async def test_a_due_rule_is_claimed_by_exactly_one_of_many_racing_claims(world: World) -> None:
    rule = await world.add_rule()
    [due] = await world.rules.due_rules(world.clock(), limit=10)
    later = due.next_evaluation_at + timedelta(seconds=60)
    wins = await asyncio.gather(
        *(world.rules.claim_evaluation(rule.id, seen=due.next_evaluation_at, next_at=later) for _ in range(8))
    )
    assert sum(wins) == 1
    assert await world.rules.due_rules(world.clock(), limit=10) == []
    world.clock.advance(60)
    assert [found.id for found in await world.rules.due_rules(world.clock(), limit=10)] == [rule.id]


async def test_rules_of_a_suspended_or_deleted_tenant_are_not_due(world: World) -> None:
    acme = await world.add_rule("acme")
    other = await world.add_rule("other")
    now = world.clock()
    await world.metadata.update_tenant("acme", TenantChanges(suspended=True), updated_at=now)
    assert [rule.id for rule in await world.rules.due_rules(now, limit=10)] == [other.id]
    await world.metadata.update_tenant("acme", TenantChanges(suspended=False), updated_at=now)
    await world.metadata.update_tenant("other", TenantChanges(deleted_at=now), updated_at=now)
    assert [rule.id for rule in await world.rules.due_rules(now, limit=10)] == [acme.id]


# Evaluation


async def test_six_errors_fire_once_and_the_alert_resolves_when_the_window_passes(world: World) -> None:
    rule = await world.add_rule(channel_ids=["ch_1"], labels={"team": "payments"}, severity="critical")
    evaluator = world.evaluator()
    await world.log(5)
    assert (await evaluator.evaluate(rule)).published == []  # exactly five: not more than five
    await world.log(1)
    world.clock.advance(60)
    fired = (await evaluator.evaluate(rule)).published
    assert states(fired) == ["ok>firing"]
    event = fired[0]
    assert (event.value, event.threshold, event.comparator, event.severity) == (6.0, 5.0, "gt", "critical")
    assert event.id == f"alert:{rule.id}:{event.dedup_key.split(':')[1]}:1"
    assert (event.channel_ids, event.labels, event.group, event.auto_resolve_incident) == (
        ["ch_1"],
        {"team": "payments"},
        {},
        True,
    )
    assert len(event.sample_event_ids) == 3
    assert event.window_end == world.clock() - timedelta(seconds=1)
    assert event.window_end - event.window_start == timedelta(seconds=300)
    assert "high-errors: 6 matching events" in event.message
    world.clock.advance(60)
    assert (await evaluator.evaluate(rule)).published == []  # still firing: nothing new
    world.clock.advance(300)
    resolved = (await evaluator.evaluate(rule)).published
    assert states(resolved) == ["firing>resolved"]
    assert resolved[0].value == 0.0
    assert resolved[0].dedup_key == event.dedup_key
    assert states(await world.published()) == ["ok>firing", "firing>resolved"]
    [state] = await world.rules.list_states("acme", rule.id)
    assert (state.machine.state, state.last_value, state.unpublished_event) == ("resolved", 0.0, None)


async def test_two_evaluators_on_one_database_publish_one_event_per_transition(world: World) -> None:
    second_metadata = SqlMetadataStore(world.url)
    await second_metadata.start()
    try:
        second_rules = SqlAlertRuleStore(second_metadata)
        second_bus = FlakyBus(broker=world.bus.broker)
        await second_bus.start()
        schedulers = [
            AlertScheduler(rules=world.rules, evaluator=world.evaluator(), settings=SETTINGS, clock=world.clock),
            AlertScheduler(
                rules=second_rules,
                evaluator=world.evaluator(second_rules, second_bus),
                settings=SETTINGS,
                clock=world.clock,
            ),
        ]
        rules = [await world.add_rule(name=f"rule-{n}", interval_seconds=10) for n in range(5)]
        await world.log(6)
        claimed: list[str] = []
        for _ in range(3):  # three due times: fire, stay firing, stay firing
            for claims in await asyncio.gather(*(scheduler.tick() for scheduler in schedulers)):
                claimed.extend(claims)
            await asyncio.gather(*(scheduler.drain() for scheduler in schedulers))
            world.clock.advance(10)
        assert sorted(claimed) == sorted([rule.id for rule in rules] * 3)
        world.clock.advance(300)
        await asyncio.gather(*(scheduler.tick() for scheduler in schedulers))
        await asyncio.gather(*(scheduler.drain() for scheduler in schedulers))
        published = await world.published()
        for rule in rules:
            assert states([event for event in published if event.rule_id == rule.id]) == [
                "ok>firing",
                "firing>resolved",
            ]
        assert len({event.id for event in published}) == len(published)
    finally:
        await second_metadata.close()


async def test_two_evaluations_of_one_rule_at_once_record_one_transition(world: World) -> None:
    rule = await world.add_rule()
    await world.log(6)
    world.store.barrier = asyncio.Barrier(2)  # both have read the states before either counts
    results = await asyncio.gather(world.evaluator().evaluate(rule), world.evaluator().evaluate(rule))
    assert sorted(result.result for result in results) == ["conflict", "ok"]
    assert states(await world.published()) == ["ok>firing"]


async def test_a_store_outage_is_an_error_never_a_resolve(world: World) -> None:
    rule = await world.add_rule()
    evaluator = world.evaluator()
    await world.log(6)
    assert states((await evaluator.evaluate(rule)).published) == ["ok>firing"]
    world.store.down = True
    world.clock.advance(60)
    errored = await evaluator.evaluate(rule)
    assert errored.result == "error"
    assert states(errored.published) == ["firing>error"]
    assert errored.published[0].value is None
    assert "store is down" in (errored.published[0].error or "")
    world.clock.advance(60)
    assert (await evaluator.evaluate(rule)).published == []  # still error: nothing new
    world.store.down = False
    world.clock.advance(60)
    assert states((await evaluator.evaluate(rule)).published) == ["error>firing"]
    assert "resolved" not in [event.state for event in await world.published()]


async def test_an_unpublished_transition_is_published_by_the_next_evaluation_with_the_same_id(world: World) -> None:
    rule = await world.add_rule()
    evaluator = world.evaluator()
    await world.log(6)
    world.bus.down = True
    failed = await evaluator.evaluate(rule)
    assert failed.result == "publish_failed"
    [state] = await world.rules.list_states("acme", rule.id)
    assert state.machine.state == "firing"
    assert state.unpublished_event is not None
    world.clock.advance(60)
    # Still down: the transition stays stored, nothing else is evaluated.
    assert (await evaluator.evaluate(rule)).result == "publish_failed"
    world.bus.down = False
    world.clock.advance(60)
    retried = await evaluator.evaluate(rule)
    assert states(retried.published) == ["ok>firing"]
    assert retried.published[0].id == decode_alert_event(state.unpublished_event).id
    assert states(await world.published()) == ["ok>firing"]
    [state] = await world.rules.list_states("acme", rule.id)
    assert state.unpublished_event is None


async def test_a_lt_rule_fires_on_too_few_logs_and_its_no_data_policy_decides_zero(world: World) -> None:
    too_few = await world.add_rule(name="too-few", query={"service": "checkout"}, comparator="lt", threshold=3)
    no_data = await world.add_rule(
        name="silent", query={"service": "checkout"}, comparator="lt", threshold=3, no_data="nodata"
    )
    evaluator = world.evaluator()
    await world.log(1, level="info")
    assert states((await evaluator.evaluate(too_few)).published) == ["ok>firing"]
    assert states((await evaluator.evaluate(no_data)).published) == ["ok>firing"]
    world.clock.advance(400)  # the window holds nothing now
    assert (await evaluator.evaluate(too_few)).published == []  # alerting: zero is a value below 3
    assert states((await evaluator.evaluate(no_data)).published) == ["firing>nodata"]
    await world.log(5, level="info")
    world.clock.advance(10)
    assert states((await evaluator.evaluate(too_few)).published) == ["firing>resolved"]
    assert states((await evaluator.evaluate(no_data)).published) == ["nodata>resolved"]


async def test_group_by_alerts_per_value_and_a_vanished_group_resolves(world: World) -> None:
    rule = await world.add_rule(group_by="service", message="{group.service}: {value}")
    evaluator = world.evaluator()
    await world.log(6, service="checkout")
    await world.log(2, service="search")
    fired = (await evaluator.evaluate(rule)).published
    assert [(event.group, event.state, event.message) for event in fired] == [
        ({"service": "checkout"}, "firing", "checkout: 6")
    ]
    world.clock.advance(400)
    resolved = (await evaluator.evaluate(rule)).published
    assert [(event.group, event.state, event.value) for event in resolved] == [
        ({"service": "checkout"}, "resolved", 0.0)
    ]
    assert {
        state.group["service"]: state.machine.state for state in await world.rules.list_states("acme", rule.id)
    } == {
        "checkout": "resolved",
        "search": "ok",
    }


async def test_a_group_value_with_a_nul_character_is_stored_and_published(world: World) -> None:
    # Group values come from logs, which may hold characters PostgreSQL cannot store (NUL): the evaluation
    # must record and publish the transition, never fail on it forever.
    rule = await world.add_rule(group_by="service", message="{group.service}: {value}")
    await world.log(6, service="chec\x00kout")
    fired = (await world.evaluator().evaluate(rule)).published
    assert [(event.group, event.state, event.message) for event in fired] == [
        ({"service": "chec\ufffdkout"}, "firing", "chec\ufffdkout: 6")
    ]
    assert [state.group for state in await world.rules.list_states("acme", rule.id)] == [{"service": "chec\ufffdkout"}]


async def test_a_known_group_left_out_of_the_most_frequent_ones_is_not_resolved(world: World) -> None:
    rule = await world.add_rule(group_by="service", threshold=1)
    evaluator = world.evaluator(settings=AlertSettings(max_groups=1))
    await world.log(6, service="checkout")
    assert [event.group for event in (await evaluator.evaluate(rule)).published] == [{"service": "checkout"}]
    await world.log(10, service="search")  # now the most frequent: checkout is not counted, yet not gone
    world.clock.advance(60)
    assert [(event.group, event.state) for event in (await evaluator.evaluate(rule)).published] == [
        ({"service": "search"}, "firing")
    ]
    assert {
        state.group["service"]: state.machine.state for state in await world.rules.list_states("acme", rule.id)
    } == {
        "checkout": "firing",
        "search": "firing",
    }
