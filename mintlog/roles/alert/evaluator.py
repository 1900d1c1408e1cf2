"""One evaluation of one alert rule: count, judge every group, persist the transitions, then publish them.

The window of an evaluation at `now` is `[now - lag - window_seconds, now - lag)`, where `lag` is
`MINTLOG_ALERT__EVALUATION_LAG_SECONDS`: events younger than the lag may still be on their way into the
store, and are counted by the next evaluation instead.

Publishing is safe against crashes and bus outages: a transition and its encoded `AlertEvent` are committed
first (`alert_states.unpublished_event`), then published with the event id as the bus message id, then
marked published. An evaluation starts by publishing whatever an earlier one left unpublished, and evaluates
nothing while that fails, so events go out in order and none is lost; a re-publish of an event that did go
out has the same id and is dropped by the bus's duplicate window.

State writes are conditional on each group's `transition_seq` (see `AlertRuleStore.save_states`): when two
instances evaluate one rule at once (possible only when an evaluation overruns its interval), one of them
records nothing and publishes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from mintlog.domain.alert_rules import AlertRule, AlertRuleSpec, breaches, group_hash, render_message, rule_filter_node
from mintlog.domain.alerting import AlertEvent
from mintlog.domain.streams import alerts_subject, decode_alert_event, encode_event
from mintlog.errors import DependencyUnavailable, MintlogError
from mintlog.metrics import Metrics
from mintlog.ports.aggregation import AggregateQuery, TermsGroup
from mintlog.ports.alerting import AlertRuleStore, AlertStateRecord, GroupState, StateWrite
from mintlog.ports.bus import EventBus
from mintlog.ports.logstore import LogStore, SearchQuery
from mintlog.query import Node, all_of
from mintlog.query.filters import equals
from mintlog.roles.alert.state_machine import Verdict, step
from mintlog.settings import AlertSettings

__all__ = ["Evaluation", "RuleEvaluator", "event_id"]

logger = logging.getLogger(__name__)

EvaluationResult = Literal["ok", "error", "conflict", "publish_failed"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def event_id(rule_id: str, hashed_group: str, transition_seq: int) -> str:
    """The id of a transition's `AlertEvent` (and its bus message id): the same for the same transition."""
    return f"alert:{rule_id}:{hashed_group}:{transition_seq}"


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What one evaluation did: its result and the events it published (in order)."""

    result: EvaluationResult
    published: list[AlertEvent]


@dataclass(frozen=True, slots=True)
class _Count:
    group: dict[str, str]
    value: float | None
    error: str | None = None
    stale: bool = False


class RuleEvaluator:
    """Evaluates one rule at a time against the log store and records the outcome."""

    def __init__(
        self,
        *,
        store: LogStore,
        rules: AlertRuleStore,
        bus: EventBus,
        settings: AlertSettings,
        metrics: Metrics,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._store = store
        self._rules = rules
        self._bus = bus
        self._settings = settings
        self._metrics = metrics
        self._clock = clock

    async def evaluate(self, rule: AlertRule) -> Evaluation:
        """Evaluate `rule` once. Raises `DatabaseUnavailable` when states cannot be read or written."""
        started = time.perf_counter()
        try:
            evaluation = await self._evaluate(rule)
        except BaseException:
            self._metrics.alert_evaluations.labels("error").inc()
            raise
        finally:
            self._metrics.alert_evaluation_seconds.observe(time.perf_counter() - started)
        self._metrics.alert_evaluations.labels(evaluation.result).inc()
        return evaluation

    async def _evaluate(self, rule: AlertRule) -> Evaluation:
        states = await self._rules.list_states(rule.tenant_id, rule.id)
        published = await self._publish_leftovers(rule, states)
        if published is None:
            return Evaluation("publish_failed", [])
        now = self._clock()
        spec = rule.spec
        end = now - timedelta(seconds=self._settings.evaluation_lag_seconds)
        start = end - timedelta(seconds=spec.window_seconds)
        counts, truncated, failure = await self._count(rule, now, start, end)
        by_hash = {state.group_hash: state for state in states}
        writes: list[StateWrite] = []
        events: list[AlertEvent] = []
        for hashed, count in self._groups(spec, counts, states, failure, truncated=truncated).items():
            previous = by_hash.get(hashed)
            write, event = await self._judge(rule, hashed, count, previous, now, start, end)
            writes.append(write)
            if event is not None:
                events.append(event)
        if writes and not await self._rules.save_states(rule.id, writes):
            logger.info(
                "alert rule %s was evaluated by another instance meanwhile; this evaluation is dropped", rule.id
            )
            return Evaluation("conflict", published)
        for event in events:
            self._metrics.alert_transitions.labels(event.state).inc()
            logger.info(
                "alert %s %s → %s (value %s)",
                event.dedup_key,
                event.previous_state,
                event.state,
                event.value,
                extra={"tenant_id": rule.tenant_id, "rule_id": rule.id, "alert_event_id": event.id},
            )
        if not await self._publish(rule, events):
            return Evaluation("publish_failed", published + events)
        return Evaluation("error" if failure is not None else "ok", published + events)

    async def _count(
        self, rule: AlertRule, now: datetime, start: datetime, end: datetime
    ) -> tuple[dict[str, _Count], bool, str | None]:
        """Counts by group hash; whether more groups had events than were counted; or the error."""
        spec = rule.spec
        try:
            node = rule_filter_node(spec.query)
            groups = () if spec.group_by is None else (TermsGroup(spec.group_by, size=self._settings.max_groups),)
            query = AggregateQuery(tenant_id=rule.tenant_id, node=node, now=now, start=start, end=end, groups=groups)
            result = await asyncio.wait_for(
                self._store.aggregate(query), timeout=self._settings.evaluation_timeout_seconds
            )
        except Exception as exc:  # any failure to count is the `error` state, never a silent skip or a resolve
            logger.warning("alert rule %s could not be evaluated: %s", rule.id, exc, extra={"rule_id": rule.id})
            return {}, False, f"{type(exc).__name__}: {exc}"[:500]
        if spec.group_by is None:
            return {group_hash({}): _Count({}, float(result.total))}, False, None
        counts: dict[str, _Count] = {}
        for bucket in result.buckets:
            # A group value comes from logs; NUL (which PostgreSQL text cannot hold, e.g. in the incident's
            # title) is shown as U+FFFD, so the transition can always be stored and published.
            group = {spec.group_by: str(bucket.key).replace("\x00", "\ufffd")}
            counts[group_hash(group)] = _Count(group, float(bucket.count))
        return counts, result.other_count > 0, None

    def _groups(
        self,
        spec: AlertRuleSpec,
        counts: dict[str, _Count],
        states: Sequence[AlertStateRecord],
        failure: str | None,
        *,
        truncated: bool,
    ) -> dict[str, _Count]:
        """Every group to judge: the counted ones, and the known ones that were not counted (0, or the error).

        When more groups had events than `max_groups`, a known group missing from the counted ones may still
        have events: it is left as it is rather than judged 0.
        """
        expected_keys: set[str] = set() if spec.group_by is None else {spec.group_by}
        groups: dict[str, _Count] = {}
        if failure is not None:
            if spec.group_by is None:
                groups[group_hash({})] = _Count({}, None, failure)
            for state in states:
                if set(state.group) == expected_keys:
                    groups[state.group_hash] = _Count(state.group, None, failure)
            return groups
        groups.update(counts)
        for state in states:
            if state.group_hash in groups:
                continue
            if set(state.group) == expected_keys:
                if not truncated:
                    # A group that disappeared from the window counts 0.
                    groups[state.group_hash] = _Count(state.group, 0.0)
            elif state.machine.state not in ("ok", "resolved"):
                # The rule's group_by changed: an alert of the old grouping ends here.
                groups[state.group_hash] = _Count(state.group, None, stale=True)
        return groups

    def _verdict(self, spec: AlertRuleSpec, count: _Count) -> Verdict:
        if count.stale:
            return "clear"
        if count.error is not None:
            return "error"
        value = count.value or 0.0
        if value == 0 and spec.comparator in ("lt", "lte"):
            if spec.no_data == "nodata":
                return "nodata"
            if spec.no_data == "keep_state":
                return "keep"
            if spec.no_data == "ok":
                return "clear"
        return "breaching" if breaches(value, spec.comparator, spec.threshold) else "clear"

    async def _judge(
        self,
        rule: AlertRule,
        hashed: str,
        count: _Count,
        previous: AlertStateRecord | None,
        now: datetime,
        start: datetime,
        end: datetime,
    ) -> tuple[StateWrite, AlertEvent | None]:
        spec = rule.spec
        machine = previous.machine if previous is not None else GroupState(since=now)
        verdict_step = step(
            machine,
            self._verdict(spec, count),
            now,
            for_seconds=spec.for_seconds,
            # A group that no longer exists under the rule (its group_by changed) ends at once.
            keep_firing_for_seconds=0 if count.stale else spec.keep_firing_for_seconds,
        )
        value = count.value
        error = count.error
        base = previous or AlertStateRecord(
            rule_id=rule.id, tenant_id=rule.tenant_id, group_hash=hashed, group=count.group, machine=machine
        )
        record = replace(
            base,
            machine=verdict_step.machine,
            last_value=value,
            last_evaluated_at=now,
            last_error=error,
            unpublished_event=None,  # any earlier one went out before this evaluation started
        )
        event: AlertEvent | None = None
        if verdict_step.transition is not None:
            previous_state, new_state = verdict_step.transition
            event = AlertEvent(
                id=event_id(rule.id, hashed, verdict_step.machine.transition_seq),
                tenant_id=rule.tenant_id,
                rule_id=rule.id,
                rule_name=spec.name,
                dedup_key=f"{rule.id}:{hashed}",
                group=dict(count.group),
                previous_state=previous_state,
                state=new_state,
                value=None if new_state in ("nodata", "error") else value,
                threshold=spec.threshold,
                comparator=spec.comparator,
                window_start=start,
                window_end=end,
                evaluated_at=now,
                severity=spec.severity,
                labels=dict(spec.labels),
                message=render_message(spec, rule_id=rule.id, value=value, state=new_state, group=count.group),
                channel_ids=list(spec.channel_ids),
                auto_resolve_incident=spec.auto_resolve_incident,
                sample_event_ids=await self._samples(rule, count, now, start, end),
                error=error,
            )
            record = replace(record, last_event_id=event.id, unpublished_event=encode_event(event))
        expected = None if previous is None else previous.machine.transition_seq
        return StateWrite(record, expected), event

    async def _samples(
        self, rule: AlertRule, count: _Count, now: datetime, start: datetime, end: datetime
    ) -> list[str]:
        """A few ids of matching events of the group, newest first; none when there are none or on failure."""
        if self._settings.sample_events == 0 or not count.value:
            return []
        try:
            node: Node = rule_filter_node(rule.spec.query)
            for field, value in count.group.items():
                node = all_of([node, equals(field, value)])
            page = await asyncio.wait_for(
                self._store.search(
                    SearchQuery(
                        tenant_id=rule.tenant_id,
                        node=node,
                        now=now,
                        start=start,
                        end=end,
                        size=self._settings.sample_events,
                        total_cap=self._settings.sample_events,
                    )
                ),
                timeout=self._settings.evaluation_timeout_seconds,
            )
        except (MintlogError, TimeoutError, OSError, ValueError):
            logger.warning("could not fetch sample events of alert rule %s", rule.id, exc_info=True)
            return []
        return [event.id for event in page.events]

    async def _publish_leftovers(self, rule: AlertRule, states: Sequence[AlertStateRecord]) -> list[AlertEvent] | None:
        """Publish the events earlier evaluations committed but did not publish; None when the bus failed."""
        leftovers = [decode_alert_event(state.unpublished_event) for state in states if state.unpublished_event]
        if not leftovers:
            return []
        logger.info("publishing %d alert event(s) of rule %s left unpublished", len(leftovers), rule.id)
        if not await self._publish(rule, leftovers):
            return None
        return leftovers

    async def _publish(self, rule: AlertRule, events: Sequence[AlertEvent]) -> bool:
        for event in events:
            try:
                await self._bus.publish(alerts_subject(event.tenant_id), encode_event(event), msg_id=event.id)
            except (DependencyUnavailable, MintlogError) as exc:
                logger.warning(
                    "alert event %s not published yet (%s); the next evaluation of rule %s retries it",
                    event.id,
                    exc,
                    rule.id,
                )
                return False
            await self._rules.mark_published(rule.id, event.dedup_key.rsplit(":", 1)[1], event.id)
        return True
