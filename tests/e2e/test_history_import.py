"""Importing 400 days of old logs through a running `mintlog run`: what the `202` answers per tenant policy,
what search finds, where the data goes on disk, and what retention keeps and drops afterwards."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from mintlog.domain.events import LogEvent
from tests.e2e.harness import MintlogProcess
from tests.e2e.test_retention import bootstrap, write_into_the_store

AGES = range(1, 401)


def history(today: date) -> list[dict[str, Any]]:
    """One event per day, 1 to 400 days ago at noon UTC, then two from producers with a clock far ahead."""
    events: list[dict[str, Any]] = [
        {
            "message": f"audit line {age} days old",
            "timestamp": f"{today - timedelta(days=age)}T12:00:00Z",
            "service": "import",
            "fields": {"age_days": age},
        }
        for age in AGES
    ]
    ahead = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    events.append({"message": "wrong clock", "timestamp": ahead, "fields": {"age_days": -30}})
    events.append({"message": "2099-01-01 00:00:00 ERROR wrong clock in the text"})
    return events


def search(mintlog: MintlogProcess, key: str, body: dict[str, Any]) -> dict[str, Any]:
    response = mintlog.search(key, body)
    assert response.status_code == 200, response.text
    return response.json()


def total(mintlog: MintlogProcess, key: str, query: str = "") -> int:
    return int(search(mintlog, key, {"query": query, "size": 1})["total"])


def ages(mintlog: MintlogProcess, key: str) -> set[int]:
    events = search(mintlog, key, {"query": "service:import", "size": 1000})["events"]
    return {int(event["fields"]["age_days"]) for event in events}


def wait_until(condition: Callable[[], bool], timeout_seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def test_a_history_import_is_answered_searched_and_retained_by_each_tenants_policy(
    mintlog_factory: Callable[..., MintlogProcess], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    audit_key = bootstrap(mintlog_factory(data_dir), "audit", 200)  # retention counted from event time
    archive_key = bootstrap(mintlog_factory(data_dir), "archive", 30)
    mintlog = mintlog_factory(data_dir, MINTLOG_RETENTION__ENABLED="false")
    mintlog.start()
    switched = httpx.patch(
        f"{mintlog.api_url}/v1/admin/tenants/archive",
        json={"retention_basis": "received_at"},
        headers={"X-API-Key": audit_key},
        timeout=10,
    )
    assert switched.status_code == 200, switched.text
    assert switched.json()["retention_basis"] == "received_at"
    today = datetime.now(UTC).date()
    events = history(today)

    # The 202 of the event-time tenant names every event already past its 200 days.
    audit_answer = mintlog.ingest(audit_key, {"events": events})
    archive_answer = mintlog.ingest(archive_key, {"events": events})

    assert audit_answer.status_code == 202, audit_answer.text
    answer = audit_answer.json()
    oldest_kept = re.search(r"the oldest time kept now is (\S+)\)", answer["errors"][0]["reason"])
    assert oldest_kept is not None
    cutoff = datetime.fromisoformat(oldest_kept.group(1).replace("Z", "+00:00"))
    assert cutoff.date() in (today - timedelta(days=200), today - timedelta(days=199))  # midnight may pass
    expected_refused = [index for index, age in enumerate(AGES) if today - timedelta(days=age) < cutoff.date()]
    assert [error["index"] for error in answer["errors"]] == expected_refused
    assert {error["reason"].split(" (")[0] for error in answer["errors"]} == {
        "`timestamp` is older than this tenant's retention of 200 days"
    }
    assert (answer["accepted"], answer["rejected"]) == (len(events) - len(expected_refused), len(expected_refused))
    # The received-at tenant keeps everything.
    assert archive_answer.status_code == 202, archive_answer.text
    assert (archive_answer.json()["accepted"], archive_answer.json()["errors"]) == (len(events), [])

    # Search finds exactly what was accepted, history in its time order, and no clock from the future on top.
    assert wait_until(lambda: total(mintlog, archive_key) == len(events) and total(mintlog, audit_key) > 0)
    assert wait_until(lambda: total(mintlog, audit_key) == answer["accepted"])
    refused_ages = {AGES[index] for index in expected_refused}
    assert ages(mintlog, audit_key) == set(AGES) - refused_ages
    assert ages(mintlog, archive_key) == set(AGES)
    window = search(
        mintlog,
        archive_key,
        {"from": f"{today - timedelta(days=300)}T00:00:00Z", "to": f"{today - timedelta(days=290)}T00:00:00Z"},
    )
    assert [event["fields"]["age_days"] for event in window["events"]] == list(range(291, 301))
    newest = search(mintlog, archive_key, {"size": 5})["events"]
    latest_allowed = datetime.now(UTC) + timedelta(minutes=10)
    assert all(datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")) <= latest_allowed for event in newest)
    clamped = {event["message"]: event for event in newest[:2]}
    assert clamped["wrong clock"]["timestamp"] == clamped["wrong clock"]["received_at"]
    assert clamped["wrong clock"]["fields"]["timestamp_original"] == events[-2]["timestamp"]
    in_text = clamped["2099-01-01 00:00:00 ERROR wrong clock in the text"]
    assert in_text["fields"]["timestamp_original"] == "2099-01-01T00:00:00+00:00"
    assert newest[2]["fields"]["age_days"] == 1

    # 400 days of history make a few month partitions, not 400 day partitions.
    partitions = sorted(entry.name for entry in (data_dir / "index" / "archive").iterdir())
    this_month = f"@{today:%Y-%m}"
    months = [name for name in partitions if "@" in name]
    assert 13 <= len(months) <= 15
    assert all(name.endswith(this_month) for name in months)
    assert len(partitions) - len(months) <= 3  # the days of the last two days and of today
    metrics = httpx.get(f"{mintlog.api_url}/metrics", timeout=10).text
    assert f'mintlog_ingest_events_rejected_total{{reason="too_old"}} {len(expected_refused)}.0' in metrics

    # Retention: the event-time tenant now keeps 100 days; the received-at tenant had an import 70 days ago.
    shortened = httpx.patch(
        f"{mintlog.api_url}/v1/admin/tenants/audit",
        json={"retention_days": 100},
        headers={"X-API-Key": audit_key},
        timeout=10,
    )
    assert shortened.status_code == 200, shortened.text
    assert mintlog.stop() == 0
    earlier_import_at = datetime.now(UTC) - timedelta(days=70)
    write_into_the_store(
        data_dir / "index",
        [
            LogEvent(
                id=f"earlier-{age}",
                tenant_id="archive",
                timestamp=earlier_import_at - timedelta(days=age),
                received_at=earlier_import_at,
                service="earlier-import",
                level="info",
                message="imported 70 days ago",
                host="h",
            )
            for age in range(10, 200, 7)
        ],
    )
    restarted = mintlog_factory(data_dir)  # retention on: the first run is at start
    restarted.start()
    assert wait_until(lambda: total(restarted, archive_key, "service:earlier-import") == 0)
    assert wait_until(lambda: max(ages(restarted, audit_key)) < 140)

    kept = ages(restarted, audit_key)
    assert {age for age in AGES if age < 100} <= kept  # nothing younger than its retention is deleted
    assert max(kept) < 100 + 32  # a month partition goes once its whole month is past retention
    assert ages(restarted, archive_key) == set(AGES)  # received today: kept for 30 days whatever their age
    assert total(restarted, archive_key) == len(events)
    assert "retention dropped partition archive/" in restarted.logs()
    assert restarted.stop() == 0
