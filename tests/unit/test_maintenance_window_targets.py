"""Maintenance windows as tenant objects: a create body is refused naming the field, and a window covers the
monitors and alert rules it targets, only while one of its occurrences is active."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from mintlog.domain.alerting import AlertEvent
from mintlog.domain.maintenance_windows import (
    MaintenanceWindowCreate,
    StoredWindow,
    build_window,
    covers_alert,
    covers_monitor,
    window_for_alert,
    window_for_monitor,
)
from mintlog.domain.monitors import Monitor, MonitorSpec
from mintlog.domain.uptime_checks import HttpCheck
from mintlog.errors import UnprocessableEntity

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def body(**changes: Any) -> MaintenanceWindowCreate:
    fields: dict[str, Any] = {
        "name": "db upgrade",
        "starts_at": "2026-06-01T11:00:00Z",
        "ends_at": "2026-06-01T13:00:00Z",
        "targets": {"monitor_ids": ["mon_1"]},
    }
    fields.update(changes)
    return msgspec.convert({k: v for k, v in fields.items() if v is not None}, MaintenanceWindowCreate)


def window(**changes: Any) -> StoredWindow:
    return build_window(body(**changes), window_id="mw_1", tenant_id="acme", created_at=NOW, now=NOW)


def monitor(monitor_id: str = "mon_1", tenant_id: str = "acme", **labels: str) -> Monitor:
    spec = MonitorSpec(name="shop", check=HttpCheck(url="https://shop.example.com"), labels=labels)
    return Monitor(id=monitor_id, tenant_id=tenant_id, spec=spec, created_at=NOW, updated_at=NOW, next_check_at=NOW)


def alert(rule_id: str, tenant_id: str = "acme", **labels: str) -> AlertEvent:
    return AlertEvent(
        id=f"alert:{rule_id}:1",
        tenant_id=tenant_id,
        rule_id=rule_id,
        rule_name="errors",
        dedup_key=f"{rule_id}:",
        group={},
        previous_state="ok",
        state="firing",
        value=6.0,
        threshold=5.0,
        comparator="gt",
        window_start=NOW - timedelta(minutes=5),
        window_end=NOW,
        evaluated_at=NOW,
        severity="high",
        labels=labels,
        message="6 errors",
        channel_ids=[],
        auto_resolve_incident=True,
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"ends_at": "2026-06-01T11:00:00Z"}, "ends_at"),
        ({"ends_at": "2026-06-01T10:00:00Z"}, "ends_at"),
        ({"ends_at": None}, "ends_at"),
        ({"duration_seconds": 60}, "ends_at"),
        ({"ends_at": None, "duration_seconds": 0}, "duration_seconds"),
        ({"rrule": "FREQ=FORTNIGHTLY"}, "rrule"),
        ({"rrule": "FREQ=MINUTELY"}, "rrule"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"starts_at": "2026-06-01T11:00:00", "ends_at": "2026-06-01T13:00:00", "time_zone": "Nowhere/X"}, "time_zone"),
        ({"until": "2026-07-01T00:00:00Z"}, "until"),
        ({"targets": {}}, "targets"),
        ({"targets": {"monitor_ids": [], "labels": {}, "alert_rule_ids": []}}, "targets"),
    ],
)
def test_a_bad_window_is_a_422_naming_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(UnprocessableEntity) as caught:
        window(**changes)
    assert caught.value.code == "validation_failed"
    assert caught.value.extra["field"] == field


def test_ends_at_becomes_the_duration_of_each_occurrence_in_real_time() -> None:
    # 01:00 to 04:00 Berlin wall time on the spring-forward night is two real hours.
    spring = window(
        starts_at="2026-03-29T01:00:00", ends_at="2026-03-29T04:00:00", time_zone="Europe/Berlin", rrule="FREQ=DAILY"
    )
    assert spring.schedule.duration_seconds == 2 * 3600
    assert window(duration_seconds=600, ends_at=None).schedule.duration_seconds == 600


def test_a_window_covers_the_monitors_it_names_or_whose_labels_match() -> None:
    by_id = window()
    assert covers_monitor(by_id, monitor("mon_1"))
    assert not covers_monitor(by_id, monitor("mon_2"))
    assert not covers_monitor(by_id, monitor("mon_1", tenant_id="other"))
    by_label = window(targets={"labels": {"team": "db"}})
    assert covers_monitor(by_label, monitor("mon_9", team="db"))
    assert not covers_monitor(by_label, monitor("mon_9", team="web"))
    every_monitor = window(targets={"labels": {"source": "uptime"}})
    assert covers_monitor(every_monitor, monitor("mon_3"))


def test_a_window_covers_the_alert_rules_it_names_and_its_monitors_alerts() -> None:
    rules = window(targets={"alert_rule_ids": ["rule_1"]})
    assert covers_alert(rules, alert("rule_1"))
    assert not covers_alert(rules, alert("rule_2"))
    assert not covers_alert(rules, alert("rule_1", tenant_id="other"))
    assert covers_alert(window(), alert("mon_1", source="uptime"))
    # Label matchers select monitors, so they cover uptime alerts but never a log alert rule's.
    labels = window(targets={"labels": {"team": "db"}})
    assert covers_alert(labels, alert("mon_5", source="uptime", team="db"))
    assert not covers_alert(labels, alert("rule_3", team="db"))


def test_a_covering_window_applies_only_while_an_occurrence_is_active() -> None:
    nightly = window(
        starts_at="2026-01-01T02:00:00", ends_at="2026-01-01T03:00:00", rrule="FREQ=DAILY", time_zone="Europe/Berlin"
    )
    inside = datetime(2026, 6, 1, 0, 30, tzinfo=UTC)  # 02:30 CEST
    outside = datetime(2026, 6, 1, 1, 30, tzinfo=UTC)
    assert window_for_monitor([nightly], monitor(), inside) is nightly
    assert window_for_monitor([nightly], monitor(), outside) is None
    assert window_for_alert([nightly], alert("mon_1", source="uptime"), inside) is nightly
    assert window_for_alert([], alert("mon_1"), inside) is None
