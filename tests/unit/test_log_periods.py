"""Partition periods of both log stores: where an event goes, and when retention may drop its partition."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta

import pytest

from mintlog.adapters.logstore.periods import (
    LATE_DAYS,
    Period,
    expired,
    overlapping,
    parse_period,
    period_of,
    visit_groups,
)
from mintlog.domain.retention import retention_cutoff
from mintlog.domain.tenants import RETENTION_BASES, RetentionBasis

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def at(day: date, hour: int = 12) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def test_events_on_time_get_their_day_and_old_ones_their_month_and_arrival_month() -> None:
    received = at(date(2026, 11, 26), 1)

    assert period_of(at(date(2026, 11, 26)), received) == Period(date(2026, 11, 26))
    assert period_of(at(date(2026, 11, 24), 0), received) == Period(date(2026, 11, 24))
    assert period_of(at(date(2026, 11, 27)), received) == Period(date(2026, 11, 27))
    assert period_of(at(date(2026, 11, 23), 23), received) == Period(date(2026, 11, 1), date(2026, 11, 1))
    assert period_of(at(date(2019, 3, 9)), received) == Period(date(2019, 3, 1), date(2026, 11, 1))


def test_a_thousand_days_of_history_make_a_few_dozen_partitions_instead_of_a_thousand() -> None:
    received = at(date(2026, 11, 26))
    history = {period_of(received - timedelta(days=days_back), received) for days_back in range(3, 1003)}

    assert len(history) == 34
    assert all(period.monthly for period in history)


@pytest.mark.parametrize(
    "period", [Period(date(2024, 3, 9)), Period(date(2019, 3, 1), date(2026, 11, 1)), Period(date(1, 1, 1))]
)
def test_a_period_name_reads_back_as_the_same_period(period: Period) -> None:
    assert parse_period(period.name) == period


@pytest.mark.parametrize("name", ["2024-02-30", "2024-03", "2019-13@2026-11", "2019-03@2026-1", ".dropped-2024-03-09"])
def test_other_names_are_not_periods(name: str) -> None:
    assert parse_period(name) is None


def test_overlapping_periods_are_grouped_and_groups_come_in_time_order() -> None:
    march_days = [Period(date(2019, 3, 30)), Period(date(2019, 3, 4))]
    march = [Period(date(2019, 3, 1), date(2026, 11, 1)), Period(date(2019, 3, 1), date(2026, 12, 1))]
    april_day = Period(date(2019, 4, 1))
    every = [april_day, *march_days, *march]

    newest_first = visit_groups(every, descending=True)
    oldest_first = visit_groups(every, descending=False)

    assert [set(group) for group in newest_first] == [{april_day}, {*march_days, *march}]
    assert [set(group) for group in oldest_first] == [{*march_days, *march}, {april_day}]
    assert overlapping(every, date(2019, 3, 31), None) == [march[0], march[1], april_day]
    assert overlapping(every, None, date(2019, 3, 3)) == march


@pytest.mark.parametrize("basis", RETENTION_BASES)
def test_no_dropped_partition_holds_an_event_younger_than_retention_by_its_basis(basis: RetentionBasis) -> None:
    """Random events (on time, late, imported, slightly in the future) against random runs: whatever is
    dropped is past retention by the basis, and nothing stays longer than its partition's span allows."""
    rng = random.Random(7)
    for _ in range(20_000):
        received = NOW - timedelta(days=rng.uniform(0, 800))
        age = rng.choice([rng.uniform(-0.01, 2), rng.uniform(0, 40), rng.uniform(0, 3000)])
        timestamp = received - timedelta(days=age)
        period = period_of(timestamp, received)
        retention_days = rng.choice([1, 7, 30, 365, 3650])
        run_at = received + timedelta(days=rng.uniform(0, 800))
        oldest_kept = retention_cutoff(run_at, retention_days)
        basis_time = timestamp if basis == "event_time" else received
        age_at_run = run_at - basis_time
        if expired(period, oldest_kept, basis):
            assert age_at_run >= timedelta(days=retention_days), (period, timestamp, received, run_at)
        else:
            # Kept: the event is young, or its partition still holds a younger one (a day and the late days,
            # or a month).
            span = timedelta(days=32) if period.monthly else timedelta(days=2 + LATE_DAYS)
            assert age_at_run < timedelta(days=retention_days) + span, (period, timestamp, received, run_at)


def test_a_month_of_imported_history_goes_with_its_arrival_month_by_received_at_and_with_its_month_by_event_time() -> (
    None
):
    imported = Period(date(2019, 3, 1), date(2026, 11, 1))

    assert not expired(imported, date(2026, 11, 30), "received_at")
    assert expired(imported, date(2026, 12, 1), "received_at")
    assert not expired(imported, date(2019, 3, 31), "event_time")
    assert expired(imported, date(2019, 4, 1), "event_time")


def test_the_last_representable_day_is_a_period_too() -> None:
    last = period_of(datetime(9999, 12, 31, 23, tzinfo=UTC), datetime(9999, 12, 31, 23, tzinfo=UTC))

    assert last == Period(date(9999, 12, 31))
    assert not expired(last, date(9999, 12, 31), "received_at")
    assert overlapping([last], date(9999, 12, 31), None) == [last]
