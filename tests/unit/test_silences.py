"""Silence matching and states (pure domain code), and the create body's checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mintlog.domain.alerting import AlertEvent
from mintlog.domain.silences import Silence, matching_silence
from mintlog.errors import UnprocessableEntity
from mintlog.roles.api.incidents.silences import SilenceCreate, build_silence

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def alert(rule_id: str = "r1", labels: dict[str, str] | None = None, group: dict[str, str] | None = None) -> AlertEvent:
    return AlertEvent(
        id="alert:1",
        tenant_id="acme",
        rule_id=rule_id,
        rule_name="high-errors",
        dedup_key=f"{rule_id}:g",
        group=group if group is not None else {"service": "checkout"},
        previous_state="pending",
        state="firing",
        value=6.0,
        threshold=5.0,
        comparator="gt",
        window_start=NOW - timedelta(minutes=5),
        window_end=NOW,
        evaluated_at=NOW,
        severity="critical",
        labels=labels if labels is not None else {"team": "payments", "env": "prod"},
        message="",
        channel_ids=[],
        auto_resolve_incident=True,
    )


def silence(
    silence_id: str = "sil_1",
    *,
    rule_id: str | None = None,
    labels: dict[str, str] | None = None,
    starts: float = -10,
    ends: float = 60,
) -> Silence:
    return Silence(
        id=silence_id,
        tenant_id="acme",
        rule_id=rule_id,
        labels=labels or {},
        starts_at=NOW + timedelta(minutes=starts),
        ends_at=NOW + timedelta(minutes=ends),
        created_by="mlk_abcdefgh",
        created_at=NOW - timedelta(minutes=20),
    )


@pytest.mark.parametrize(
    ("made", "matches"),
    [
        (silence(rule_id="r1"), True),
        (silence(rule_id="r2"), False),
        (silence(labels={"service": "checkout"}), True),  # a group value
        (silence(labels={"team": "payments", "env": "prod"}), True),  # labels, all must hold
        (silence(labels={"team": "payments", "env": "staging"}), False),
        (silence(labels={"region": "eu"}), False),  # a label the event does not have
        (silence(rule_id="r1", labels={"service": "checkout"}), True),
        (silence(rule_id="r1", labels={"service": "search"}), False),
        (silence(), False),  # no matcher matches nothing
    ],
)
def test_a_silence_matches_when_every_matcher_holds(made: Silence, matches: bool) -> None:
    assert made.matches(alert()) is matches


def test_the_group_wins_over_a_label_of_the_same_name() -> None:
    event = alert(labels={"service": "from-label"}, group={"service": "checkout"})
    assert silence(labels={"service": "checkout"}).matches(event)
    assert not silence(labels={"service": "from-label"}).matches(event)


def test_states_follow_the_clock() -> None:
    made = silence(starts=10, ends=20)
    assert made.state(NOW) == "pending"
    assert made.state(NOW + timedelta(minutes=10)) == "active"
    assert made.state(NOW + timedelta(minutes=20)) == "expired"


def test_only_an_active_matching_silence_is_chosen_the_one_ending_last() -> None:
    chosen = matching_silence(
        [
            silence("sil_expired", rule_id="r1", starts=-60, ends=-1),
            silence("sil_pending", rule_id="r1", starts=5, ends=600),
            silence("sil_short", rule_id="r1", ends=30),
            silence("sil_long", labels={"team": "payments"}, ends=90),
            silence("sil_other", rule_id="r2", ends=900),
        ],
        alert(),
        NOW,
    )
    assert chosen is not None
    assert chosen.id == "sil_long"
    assert matching_silence([silence("sil_other", rule_id="r2")], alert(), NOW) is None


def test_a_create_body_becomes_a_silence_starting_now_by_default() -> None:
    made = build_silence(
        SilenceCreate(rule_id="r1", duration_seconds=600), tenant_id="acme", actor="mlk_abcdefgh", now=NOW
    )
    assert (made.starts_at, made.ends_at, made.created_by) == (NOW, NOW + timedelta(minutes=10), "mlk_abcdefgh")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (SilenceCreate(duration_seconds=60), "labels"),
        (SilenceCreate(rule_id="r1"), "ends_at"),
        (SilenceCreate(rule_id="r1", duration_seconds=60, ends_at=NOW + timedelta(hours=1)), "ends_at"),
        (SilenceCreate(rule_id="r1", ends_at=NOW - timedelta(seconds=1)), "ends_at"),
        (SilenceCreate(rule_id="r1", starts_at=NOW, ends_at=NOW + timedelta(days=31)), "ends_at"),
        (SilenceCreate(rule_id="r1", starts_at=NOW + timedelta(days=400), duration_seconds=60), "starts_at"),
    ],
)
def test_a_create_body_that_cannot_be_a_silence_is_refused_naming_the_member(body: SilenceCreate, field: str) -> None:
    with pytest.raises(UnprocessableEntity) as refused:
        build_silence(body, tenant_id="acme", actor="mlk_abcdefgh", now=NOW)
    assert refused.value.extra["field"] == field
