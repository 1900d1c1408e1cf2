"""The SLA report: time-weighted uptime, maintenance, outages, MTTR and response percentiles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest

from mintlog.domain.uptime_sla import ResponseTimes, ResultPoint, StateChange, sla_report

START = datetime(2026, 3, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
END = START + 10 * HOUR


def at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


def point(minutes: float, ok: bool = True, latency: float | None = 100.0, maintenance: bool = False) -> ResultPoint:
    return ResultPoint(at=at(minutes), ok=ok, latency_ms=latency, in_maintenance=maintenance)


def test_all_up_is_100_percent_with_no_outage() -> None:
    report = sla_report([point(0), point(300)], start=START, end=END)
    assert report.uptime_percent == 100.0
    assert report.downtime_seconds == 0
    assert report.outages == 0
    assert report.mttr_seconds is None
    assert report.checks == 2
    assert report.failed_checks == 0


def test_uptime_is_weighted_by_time_not_by_number_of_checks() -> None:
    # Up for 9 hours, then one failed check whose status holds for the last hour.
    points = [point(minute) for minute in range(0, 540, 10)] + [point(540, ok=False)]
    report = sla_report(points, start=START, end=END)
    assert report.uptime_percent == pytest.approx(90.0)
    assert report.downtime_seconds == 3600
    assert report.outages == 1
    assert report.failed_checks == 1
    assert report.checks == 55


def test_the_point_before_the_window_gives_the_state_at_its_start() -> None:
    points = [point(-30, ok=False), point(60)]
    report = sla_report(points, start=START, end=END)
    assert report.downtime_seconds == 3600
    assert report.uptime_percent == pytest.approx(90.0)
    # The point before the window is not a check of the window.
    assert report.checks == 1
    assert report.failed_checks == 0


def test_time_before_the_first_point_is_not_counted_without_an_earlier_point() -> None:
    report = sla_report([point(300, ok=False), point(360)], start=START, end=END)
    assert report.downtime_seconds == 3600
    assert report.uptime_percent == pytest.approx(100 * 4 / 5)


def test_maintenance_counts_neither_up_nor_down() -> None:
    points = [point(0), point(60, ok=False, maintenance=True), point(180)]
    report = sla_report(points, start=START, end=END)
    assert report.maintenance_seconds == 2 * 3600
    assert report.downtime_seconds == 0
    assert report.uptime_percent == 100.0
    assert report.checks == 2
    assert report.failed_checks == 0


def test_no_counted_time_gives_no_uptime_percent() -> None:
    empty = sla_report([], start=START, end=END)
    assert empty.uptime_percent is None
    assert empty.checks == 0
    assert empty.response_ms is None
    all_maintenance = sla_report([point(0, maintenance=True)], start=START, end=END)
    assert all_maintenance.uptime_percent is None
    assert all_maintenance.maintenance_seconds == 10 * 3600


def test_consecutive_failures_are_one_outage_and_mttr_is_the_mean_of_ended_outages() -> None:
    points = [
        point(0),
        point(60, ok=False),
        point(70, ok=False),
        point(80, ok=False),
        point(90),  # a 30-minute outage
        point(300, ok=False),
        point(310),  # a 10-minute outage
        point(500, ok=False),  # still down at the end: counted, not in MTTR
    ]
    report = sla_report(points, start=START, end=END)
    assert report.outages == 3
    assert report.mttr_seconds == pytest.approx((30 * 60 + 10 * 60) / 2)
    assert report.downtime_seconds == (30 + 10 + 100) * 60


def test_confirmed_state_changes_decide_outages_instead_of_single_failures() -> None:
    # Three single failed checks, but confirmation never turned the monitor down.
    points = [point(minute, ok=minute not in (60, 120, 180)) for minute in range(0, 600, 10)]
    raw = sla_report(points, start=START, end=END)
    assert raw.outages == 3
    confirmed = sla_report(points, start=START, end=END, state_changes=[StateChange(at=at(0), state="up")])
    assert confirmed.outages == 0
    assert confirmed.uptime_percent == 100.0
    # The checks still show what failed.
    assert confirmed.failed_checks == 3


def test_state_changes_give_downtime_maintenance_and_skip_paused_time() -> None:
    changes = [
        StateChange(at=at(-60), state="down"),
        StateChange(at=at(30), state="up"),
        StateChange(at=at(120), state="maintenance"),
        StateChange(at=at(180), state="up"),
        StateChange(at=at(300), state="paused"),
        StateChange(at=at(420), state="up"),
    ]
    report = sla_report([], start=START, end=END, state_changes=list(reversed(changes)))
    assert report.downtime_seconds == 30 * 60
    assert report.maintenance_seconds == 3600
    assert report.outages == 1
    assert report.mttr_seconds == 30 * 60
    counted_up = (90 + 120 + 180) * 60
    assert report.uptime_percent == pytest.approx(100 * counted_up / (counted_up + 30 * 60))


def test_percentiles_are_nearest_rank_and_skip_maintenance_and_missing_latencies() -> None:
    points = [point(minute, latency=float(minute + 1)) for minute in range(100)]
    points += [point(200, latency=None, ok=False), point(210, latency=99_999.0, maintenance=True)]
    report = sla_report(points, start=START, end=END)
    assert report.response_ms == ResponseTimes(p50=50.0, p95=95.0, p99=99.0)
    single = sla_report([point(0, latency=42.0)], start=START, end=END)
    assert single.response_ms == ResponseTimes(p50=42.0, p95=42.0, p99=42.0)


def test_points_outside_the_window_are_not_checks() -> None:
    report = sla_report([point(-10), point(600), point(700, ok=False)], start=START, end=END)
    assert report.checks == 0
    assert report.downtime_seconds == 0
    assert report.uptime_percent == 100.0


def test_unsorted_points_and_other_offsets_give_the_same_report() -> None:
    berlin = timezone(timedelta(hours=1))
    points = [point(120), point(60, ok=False), point(0)]
    shifted = [ResultPoint(at=p.at.astimezone(berlin), ok=p.ok, latency_ms=p.latency_ms) for p in points]
    assert sla_report(points, start=START, end=END) == sla_report(shifted, start=START, end=END)
    assert sla_report(points, start=START, end=END).downtime_seconds == 3600


def test_the_report_json_says_from_and_to() -> None:
    report = sla_report([point(0, latency=10.0)], start=START, end=END)
    body = msgspec.json.decode(msgspec.json.encode(report))
    assert body["from"] == "2026-03-01T00:00:00Z"
    assert body["to"] == "2026-03-01T10:00:00Z"
    assert "from_" not in body
    assert body["response_ms"] == {"p50": 10.0, "p95": 10.0, "p99": 10.0}


@pytest.mark.parametrize(
    ("start", "end", "points"),
    [
        (START.replace(tzinfo=None), END, []),
        (START, END.replace(tzinfo=None), []),
        (START, START, []),
        (END, START, []),
        (START, END, [ResultPoint(at=datetime(2026, 3, 1, 1), ok=True, latency_ms=None)]),
    ],
    ids=["naive-start", "naive-end", "empty-window", "end-before-start", "naive-point"],
)
def test_bad_windows_are_refused(start: datetime, end: datetime, points: list[ResultPoint]) -> None:
    with pytest.raises(ValueError):
        sla_report(points, start=start, end=end)
