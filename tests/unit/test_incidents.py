"""The incident status machine and what each alert event does to an incident (pure domain code)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mintlog.domain.alerting import AlertEvent, AlertState, IncidentStatus
from mintlog.domain.incidents import (
    Incident,
    alert_entry_id,
    check_transition,
    entry_event,
    plan_alert_change,
)
from mintlog.errors import Conflict

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def alert(state: AlertState = "firing", *, auto_resolve: bool = True, event_id: str = "alert:r1:g:1") -> AlertEvent:
    return AlertEvent(
        id=event_id,
        tenant_id="acme",
        rule_id="r1",
        rule_name="high-errors",
        dedup_key="r1:g",
        group={"service": "checkout"},
        previous_state="pending",
        state=state,
        value=6.0,
        threshold=5.0,
        comparator="gt",
        window_start=NOW - timedelta(minutes=5),
        window_end=NOW,
        evaluated_at=NOW,
        severity="critical",
        labels={"team": "payments"},
        message="6 errors in 5 minutes",
        channel_ids=["ch_1", "ch_2"],
        auto_resolve_incident=auto_resolve,
    )


def open_incident(status: IncidentStatus = "triggered") -> Incident:
    return Incident(
        id="inc_1",
        tenant_id="acme",
        title="high-errors (service=checkout)",
        severity="critical",
        status=status,
        dedup_key="r1:g",
        rule_id="r1",
        channel_ids=("ch_1",),
        created_by="system",
        created_at=NOW - timedelta(minutes=10),
        updated_at=NOW - timedelta(minutes=10),
    )


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("triggered", "acknowledged"),
        ("triggered", "resolved"),
        ("acknowledged", "resolved"),
        ("acknowledged", "triggered"),  # an escalation's acknowledgement timeout; the API refuses it
    ],
)
def test_allowed_transitions(current: IncidentStatus, target: IncidentStatus) -> None:
    check_transition("inc_1", current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("triggered", "triggered"),
        ("acknowledged", "acknowledged"),
        ("resolved", "acknowledged"),
        ("resolved", "triggered"),
        ("resolved", "resolved"),
    ],
)
def test_other_transitions_are_conflicts_naming_both_statuses(current: IncidentStatus, target: IncidentStatus) -> None:
    with pytest.raises(Conflict) as refused:
        check_transition("inc_1", current, target)
    assert refused.value.code == "invalid_transition"
    assert f"from {current} to {target}" in refused.value.detail


def test_a_firing_alert_without_an_open_incident_opens_one_and_notifies_the_rules_channels() -> None:
    plan = plan_alert_change(alert(), None, silenced_by=None, now=NOW, new_id=lambda: "inc_new")
    assert plan is not None
    assert plan.open is not None
    assert plan.open.id == "inc_new"
    assert plan.open.title == "high-errors (service=checkout)"
    assert plan.open.channel_ids == ("ch_1", "ch_2")
    assert plan.open.labels == {"team": "payments", "service": "checkout"}
    event = entry_event(plan.entry.entry(plan.open))
    assert event is not None
    assert (event.type, event.notify, event.actor, event.status) == ("incident.triggered", True, "system", "triggered")
    assert event.channel_ids == ["ch_1", "ch_2"]
    assert event.alert == alert()
    assert event.id == alert_entry_id("acme", "alert:r1:g:1")


def test_a_refire_appends_without_notifying() -> None:
    plan = plan_alert_change(alert(), open_incident(), silenced_by=None, now=NOW)
    assert plan is not None
    assert (plan.append_to, plan.entry.event_type, plan.entry.notify, plan.resolve) == (
        "inc_1",
        "alert_refired",
        False,
        False,
    )


def test_a_resolution_resolves_only_when_the_rule_says_so() -> None:
    resolving = plan_alert_change(alert("resolved"), open_incident("acknowledged"), silenced_by=None, now=NOW)
    assert resolving is not None
    assert (resolving.entry.event_type, resolving.resolve, resolving.entry.notify) == ("resolved", True, True)
    keeping = plan_alert_change(alert("resolved", auto_resolve=False), open_incident(), silenced_by=None, now=NOW)
    assert keeping is not None
    assert (keeping.entry.event_type, keeping.resolve, keeping.entry.notify) == ("alert_resolved", False, True)
    assert plan_alert_change(alert("resolved"), None, silenced_by=None, now=NOW) is None


@pytest.mark.parametrize("state", ["nodata", "error"])
def test_nodata_and_error_add_a_note_to_an_open_incident_only(state: AlertState) -> None:
    plan = plan_alert_change(alert(state), open_incident(), silenced_by=None, now=NOW)
    assert plan is not None
    assert (plan.entry.event_type, plan.entry.notify) == (f"alert_{state}", False)
    assert plan_alert_change(alert(state), None, silenced_by=None, now=NOW) is None


@pytest.mark.parametrize("state", ["ok", "pending"])
def test_other_transitions_change_nothing(state: AlertState) -> None:
    assert plan_alert_change(alert(state), None, silenced_by=None, now=NOW) is None
    assert plan_alert_change(alert(state), open_incident(), silenced_by=None, now=NOW) is None


def test_a_silenced_alert_still_opens_the_incident_but_notifies_nobody() -> None:
    plan = plan_alert_change(alert(), None, silenced_by="sil_1", now=NOW)
    assert plan is not None
    assert plan.open is not None
    entry = plan.entry.entry(plan.open)
    assert entry.content is not None
    assert "silenced by sil_1" in entry.content
    assert entry.data["silenced_by"] == "sil_1"
    event = entry_event(entry)
    assert event is not None
    assert (event.type, event.notify, event.silenced_by) == ("incident.triggered", False, "sil_1")


def test_the_entry_id_of_an_alert_event_is_stable_and_tenant_scoped() -> None:
    assert alert_entry_id("acme", "alert:1") == alert_entry_id("acme", "alert:1")
    assert alert_entry_id("acme", "alert:1") != alert_entry_id("acme", "alert:2")
    assert alert_entry_id("acme", "alert:1") != alert_entry_id("globex", "alert:1")


def test_timings_are_seconds_from_opening() -> None:
    incident = open_incident()
    assert incident.time_to_acknowledge_seconds is None
    done = Incident(
        **{
            **{field: getattr(incident, field) for field in incident.__struct_fields__},
            "acknowledged_at": incident.created_at + timedelta(seconds=30),
            "resolved_at": incident.created_at + timedelta(minutes=5),
        }
    )
    assert (done.time_to_acknowledge_seconds, done.time_to_resolve_seconds) == (30.0, 300.0)
