"""The due-work scheduler over the SQL compare-and-set claims, on SQLite and a real PostgreSQL.

Two scheduler instances, each with its own connection pool on one database, race for the same alert rules and
webhook deliveries: each item runs exactly once per due time, and a rule that fell behind restarts from now.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import cast

import pytest

from mintlog.adapters.db.alerting_sql import SqlAlertRuleStore
from mintlog.adapters.db.notifications_sql import SqlNotificationStore
from mintlog.adapters.db.sql import SqlMetadataStore
from mintlog.domain.alert_rules import AlertRule, AlertRuleSpec, RuleQuery
from mintlog.domain.channels import Delivery, DeliveryFilter, DeliveryOutcome
from mintlog.domain.tenants import Tenant
from mintlog.metrics import Metrics
from mintlog.roles.alert.evaluator import RuleEvaluator
from mintlog.roles.alert.scheduler import DueRules
from mintlog.roles.kit.scheduler import DueWorkScheduler
from mintlog.roles.notify.delivery_worker import DueDeliveries, deliveries_for
from tests.integration.test_alert_evaluator import START, Clock
from tests.integration.test_delivery_store import channel, incident_event

pytestmark = pytest.mark.integration

T0 = START
INTERVAL_SECONDS = 10


@pytest.fixture
async def databases(database_url: str) -> AsyncIterator[tuple[SqlMetadataStore, SqlMetadataStore]]:
    """Two metadata stores (two connection pools, as in two processes) on one database with tenant `acme`."""
    first, second = SqlMetadataStore(database_url), SqlMetadataStore(database_url)
    await first.start()
    await second.start()
    try:
        await first.create_tenant(Tenant(id="acme", name="Acme", created_at=T0))
        yield first, second
    finally:
        await first.close()
        await second.close()


class RecordingEvaluator:
    """Records which rule was evaluated for which due time."""

    def __init__(self, evaluated: list[tuple[str, datetime]]) -> None:
        self.evaluated = evaluated

    async def evaluate(self, rule: AlertRule) -> None:
        await asyncio.sleep(0.001)
        self.evaluated.append((rule.id, rule.next_evaluation_at))


async def test_two_instances_evaluate_each_rule_once_per_due_time(
    databases: tuple[SqlMetadataStore, SqlMetadataStore],
) -> None:
    clock = Clock()
    first_rules, second_rules = (SqlAlertRuleStore(metadata) for metadata in databases)
    spec = AlertRuleSpec(
        name="errors", query=RuleQuery(), threshold=1, window_seconds=60, interval_seconds=INTERVAL_SECONDS
    )
    rules = [
        await first_rules.create_rule(AlertRule(f"rule_{n:02}", "acme", spec, T0, T0, T0), max_rules_per_tenant=500)
        for n in range(20)
    ]
    evaluated: list[tuple[str, datetime]] = []
    instances = [
        DueWorkScheduler(
            DueRules(store, cast("RuleEvaluator", RecordingEvaluator(evaluated))),
            work="alert-rules",
            max_running=4,
            max_claimed=500,
            poll_seconds=60,
            metrics=Metrics(),
            clock=clock,
        )
        for store in (first_rules, second_rules)
    ]
    for _ in range(3):  # three due times, each claimed by both instances three times at once
        await asyncio.gather(*(instance.claim() for instance in instances for _ in range(3)))
        await asyncio.gather(*(instance.drain() for instance in instances))
        clock.advance(INTERVAL_SECONDS)
    due_times = [T0 + timedelta(seconds=INTERVAL_SECONDS * n) for n in range(3)]
    assert sorted(evaluated) == sorted((rule.id, due) for rule in rules for due in due_times)

    clock.advance(95)  # fell behind by ten intervals: one evaluation, and the next is one interval from now
    evaluated.clear()
    await asyncio.gather(*(instance.claim() for instance in instances))
    await asyncio.gather(*(instance.drain() for instance in instances))
    assert sorted(evaluated) == sorted((rule.id, due_times[-1] + timedelta(seconds=INTERVAL_SECONDS)) for rule in rules)
    for rule in rules:
        stored = await first_rules.get_rule("acme", rule.id)
        assert stored is not None
        assert stored.next_evaluation_at == clock() + timedelta(seconds=INTERVAL_SECONDS)


async def test_two_running_senders_attempt_each_due_delivery_once(
    databases: tuple[SqlMetadataStore, SqlMetadataStore],
) -> None:
    first_notifications, second_notifications = (SqlNotificationStore(metadata) for metadata in databases)
    await first_notifications.create_channel(channel("chn_a"))
    events = [incident_event(f"evt_{n:02}", ["chn_a"]) for n in range(30)]
    for event in events:
        await first_notifications.enqueue_deliveries(deliveries_for(event, ["chn_a"], now=T0))
    attempted: list[tuple[str, str]] = []

    def sender(store: SqlNotificationStore, holder: str) -> DueWorkScheduler[Delivery]:
        async def attempt(delivery: Delivery) -> None:
            attempted.append((holder, delivery.id))
            await asyncio.sleep(0.005)
            delivered = DeliveryOutcome("delivered", T0 + timedelta(seconds=1), 5, 200, None)
            assert await store.record_outcome(delivery.id, holder, delivered)

        return DueWorkScheduler(
            DueDeliveries(store, holder, 60, attempt),
            work="notify-deliveries",
            max_running=3,
            poll_seconds=0.01,
            metrics=Metrics(),
            clock=lambda: T0 + timedelta(seconds=1),
        )

    senders = [sender(first_notifications, "one"), sender(second_notifications, "two")]
    for instance in senders:
        await instance.start()
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while (
            len(await first_notifications.list_deliveries("acme", DeliveryFilter(status="delivered", limit=100))) < 30
        ):
            assert asyncio.get_running_loop().time() < deadline, "not every delivery was attempted"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)  # nothing is due any more: nothing else is attempted
    finally:
        for instance in senders:
            await instance.stop()
    assert len(attempted) == 30
    assert len({delivery_id for _, delivery_id in attempted}) == 30
    stored = await first_notifications.list_deliveries("acme", DeliveryFilter(limit=100))
    assert {delivery.attempts for delivery in stored} == {1}
