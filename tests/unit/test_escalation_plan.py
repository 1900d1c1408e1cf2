"""Escalation planning, one-click link signing and incident stats: pure code."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from mintlog.domain.action_links import make_token, read_token, token_digest
from mintlog.domain.escalation import (
    EscalationRun,
    PolicySpec,
    StepSpec,
    StepTarget,
    ack_timeout_task,
    dedup_key,
    first_step_task,
    next_step,
    next_step_task,
    person_rule_task,
    step_targets,
)
from mintlog.domain.incident_stats import incident_stats, percentile
from mintlog.domain.incidents import Incident, TimelineEntry, TimelineEventType

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
SECRET = b"k" * 32


def target(name: str) -> StepTarget:
    return StepTarget(type="person", id=name)


def policy(*delays: float, repeat: int = 0, round_robin: bool = False) -> PolicySpec:
    steps = [
        StepSpec(delay_minutes=delay, targets=[target(f"p{index}a"), target(f"p{index}b")], round_robin=round_robin)
        for index, delay in enumerate(delays)
    ]
    return PolicySpec(name="p", steps=steps, repeat=repeat, ack_timeout_minutes=30)


def run_of(spec: PolicySpec, cycle: int = 0) -> EscalationRun:
    return EscalationRun(
        id="esr_1",
        tenant_id="t1",
        incident_id="inc_1",
        policy_id="esp_1",
        policy=spec,
        status="active",
        cycle=cycle,
        started_at=NOW,
        updated_at=NOW,
    )


def test_steps_follow_in_order_then_repeat_then_stop() -> None:
    spec = policy(0, 5, 10, repeat=1)
    order: list[tuple[int, int]] = [(0, 0)]
    while (following := next_step(spec, *order[-1])) is not None:
        order.append(following)
    assert order == [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)]


def test_each_step_is_due_its_delay_after_the_previous_one_was_due_not_after_it_ran() -> None:
    run = run_of(policy(1, 5, 10))
    first = first_step_task(run, now=NOW)
    assert first.due_at == NOW + timedelta(minutes=1)
    ran_late = first.due_at + timedelta(minutes=2)
    second = next_step_task(run, first, now=ran_late)
    assert second is not None
    assert (second.step_index, second.due_at) == (1, NOW + timedelta(minutes=6))
    # A step that fell further behind than the next delay is due at once, never in the past.
    very_late = first.due_at + timedelta(hours=1)
    assert next_step_task(run, first, now=very_late) == msgspec.structs.replace(second, due_at=very_late)


def test_the_last_step_of_the_last_repetition_has_no_successor() -> None:
    run = run_of(policy(0, 1))
    last = next_step_task(run, first_step_task(run, now=NOW), now=NOW)
    assert last is not None
    assert next_step_task(run, last, now=NOW) is None


def test_task_ids_are_the_same_for_the_same_step_so_a_rerun_inserts_nothing_new() -> None:
    run = run_of(policy(0, 1))
    first = first_step_task(run, now=NOW)
    assert first_step_task(run, now=NOW + timedelta(seconds=30)).id == first.id
    assert next_step_task(run, first, now=NOW) == next_step_task(run, first, now=NOW)
    retriggered = first_step_task(msgspec.structs.replace(run, cycle=1), now=NOW)
    assert retriggered.id != first.id


def test_round_robin_notifies_one_target_in_turn_across_repetitions_and_retriggers() -> None:
    step = StepSpec(targets=[target("a"), target("b"), target("c")], round_robin=True)
    picked = [
        step_targets(step, cycle=cycle, repeat=repeat, repeats=1)[0].id for cycle in range(2) for repeat in range(2)
    ]
    assert picked == ["a", "b", "c", "a"]
    assert step_targets(StepSpec(targets=[target("a"), target("b")]), cycle=0, repeat=0, repeats=0) == [
        target("a"),
        target("b"),
    ]


def test_dedup_keys_name_incident_run_step_repeat_person_and_contact() -> None:
    run = run_of(policy(0, 1, repeat=2), cycle=1)
    task = first_step_task(run, now=NOW)
    assert dedup_key(task, "per_1", "cm_email") == "inc_1:esr_1.1:0:0:per_1:cm_email"
    later = person_rule_task(task, person_id="per_1", contact_method_id="cm_chat", after_minutes=5, now=NOW)
    assert later.due_at == task.due_at + timedelta(minutes=5)
    assert dedup_key(later, "per_1", "cm_chat") == "inc_1:esr_1.1:0:0:per_1:cm_chat"
    assert (
        later.id != person_rule_task(task, person_id="per_2", contact_method_id="cm_chat", after_minutes=5, now=NOW).id
    )


def test_an_ack_timeout_is_due_after_the_acknowledgement_and_names_it() -> None:
    run = run_of(policy(0))
    acked = NOW + timedelta(minutes=3)
    timeout = ack_timeout_task(run, acknowledged_at=acked, minutes=30)
    assert (timeout.kind, timeout.due_at) == ("ack_timeout", acked + timedelta(minutes=30))
    assert timeout.data == {"acknowledged_at": acked.isoformat()}


def test_policies_need_steps_and_steps_need_targets() -> None:
    decoder = msgspec.json.Decoder(PolicySpec)
    with pytest.raises(msgspec.ValidationError, match=r"\$\.steps"):
        decoder.decode(b'{"name": "p", "steps": []}')
    with pytest.raises(msgspec.ValidationError, match=r"\$\.steps\[0\]\.targets"):
        decoder.decode(b'{"name": "p", "steps": [{"targets": []}]}')
    with pytest.raises(msgspec.ValidationError, match=r"\$\.steps\[0\]\.delay_minutes"):
        decoder.decode(b'{"name": "p", "steps": [{"delay_minutes": 1441, "targets": [{"type": "person", "id": "x"}]}]}')


def token(**changes: object) -> str:
    fields: dict[str, object] = {
        "tenant_id": "t1",
        "incident_id": "inc_1",
        "subject": "person:per_1",
        "action": "acknowledge",
        "now": NOW,
        "ttl": timedelta(hours=24),
    } | changes
    return make_token(SECRET, **fields)  # type: ignore[arg-type]


def test_a_link_reads_back_its_claims_and_expires_after_its_ttl() -> None:
    claims = read_token(SECRET, token())
    assert claims is not None
    assert (claims.tenant_id, claims.incident_id, claims.subject, claims.action) == (
        "t1",
        "inc_1",
        "person:per_1",
        "acknowledge",
    )
    assert not claims.expired(NOW + timedelta(hours=23, minutes=59))
    assert claims.expired(NOW + timedelta(hours=24))


def test_tampered_foreign_or_malformed_links_read_as_nothing() -> None:
    good = token()
    body, signature = good.split(".")
    claims = msgspec.json.decode(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["tenant_id"] = "t2"  # another tenant's incident, with the original signature
    forged_body = base64.urlsafe_b64encode(msgspec.json.encode(claims)).rstrip(b"=").decode()
    assert read_token(SECRET, f"{forged_body}.{signature}") is None
    assert read_token(b"another deployment's key", good) is None
    for malformed in ("", "abc", "abc.", ".abc", "a.b.c", "!!!.###"):
        assert read_token(SECRET, malformed) is None


def test_two_links_for_the_same_action_differ_and_only_their_digest_is_kept() -> None:
    first, second = token(), token()
    assert first != second
    assert token_digest(first) != token_digest(second)
    assert len(token_digest(first)) == 64


def entry(incident: Incident, event_type: TimelineEventType, minutes: float, actor: str = "system") -> TimelineEntry:
    return TimelineEntry(
        id=f"tle_{incident.id}_{event_type}",
        tenant_id="t1",
        incident_id=incident.id,
        occurred_at=NOW + timedelta(minutes=minutes),
        event_type=event_type,
        actor=actor,
        source_id=f"{incident.id}{event_type}",
        data={"policy_id": "esp_1"} if event_type == "escalation_started" else {},
    )


def incident(number: int, service: str) -> Incident:
    return Incident(
        id=f"inc_{number}",
        tenant_id="t1",
        title="t",
        severity="high",
        status="resolved",
        labels={"service": service},
        created_by="system",
        created_at=NOW,
        updated_at=NOW,
    )


def test_percentiles_are_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([30.0, 10.0, 20.0], 0.5) == 20.0
    assert percentile([float(value) for value in range(1, 11)], 0.9) == 9.0


def test_stats_count_and_time_each_group_from_its_timelines() -> None:
    pairs: list[tuple[Incident, list[TimelineEntry]]] = []
    for number, (ack, resolve) in enumerate([(1, 10), (3, 20), (5, None)]):
        web = incident(number, "web")
        timeline = [entry(web, "triggered", 0), entry(web, "escalation_started", 0)]
        timeline.append(entry(web, "acknowledged", ack, actor="person:per_1"))
        if resolve is not None:
            timeline.append(entry(web, "resolved", resolve))
        pairs.append((web, timeline))
    api = incident(9, "api")
    pairs.append((api, [entry(api, "triggered", 0)]))

    by_service = {group.key: group for group in incident_stats(pairs, "service")}
    web_stats = by_service["web"]
    assert (web_stats.count, web_stats.acknowledged, web_stats.resolved) == (3, 3, 2)
    assert (web_stats.mtta_p50_seconds, web_stats.mtta_p90_seconds) == (180.0, 300.0)
    assert (web_stats.mttr_p50_seconds, web_stats.mttr_p90_seconds) == (600.0, 1200.0)
    assert by_service["api"].mtta_p50_seconds is None
    assert [group.key for group in incident_stats(pairs, "person")] == ["person:per_1", ""]
    assert [group.key for group in incident_stats(pairs, "policy")] == ["esp_1", ""]
