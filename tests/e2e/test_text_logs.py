"""Plain text logs end to end: levels and timestamps detected in the line, numbers from logfmt usable by
metrics and reported as numbers, the tenant's time zone and extraction rules (docs/ingest.md)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.e2e.harness import MintlogProcess

TTL = "0"  # the pipeline reads the tenant's parsing settings on every batch: changes apply at once


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MintlogProcess, str]]:
    process = MintlogProcess(
        data_dir=tmp_path_factory.mktemp("mintlog") / "data",
        extra_env={"MINTLOG_PARSING__TENANT_CONFIG_TTL_SECONDS": TTL, "MINTLOG_PARSING__MAX_RULES_PER_TENANT": "2"},
    )
    try:
        process.start()
        yield process, process.bootstrap("demo")
    finally:
        process.cleanup()


def berlin_noon_utc(day: date) -> str:
    """Noon of `day` in Berlin as the API writes the UTC instant."""
    return datetime.combine(day, time(12), ZoneInfo("Europe/Berlin")).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def api(mintlog: MintlogProcess, key: str, method: str, path: str, body: Any = None, **params: str) -> httpx.Response:
    return httpx.request(
        method, f"{mintlog.api_url}{path}", json=body, params=params, headers={"X-API-Key": key}, timeout=30
    )


def test_levels_and_timestamps_come_from_plain_text_lines(running: tuple[MintlogProcess, str]) -> None:
    mintlog, key = running
    lines = [
        "2026/03/05 10:12:01 [crit] 4242#4242: *5 upstream timed out, client: 10.0.0.1",
        "081109 203615 148 WARN dfs.DataNode$PacketResponder: slow block receiver",
        "Dec 10 06:55:46 LabSZ sshd[24200]: error: Received disconnect from 203.0.113.7",
        "no error found in 12 files",
    ]
    events = [{"service": "text-e2e", "message": line} for line in lines]
    assert mintlog.ingest(key, {"events": events}).status_code == 202

    found = mintlog.wait_for_total(key, {"query": "service:text-e2e", "from": "2000-01-01T00:00:00Z"}, 4)
    by_message = {event["message"]: event for event in found["events"]}
    nginx, hdfs, sshd, prose = (by_message[line] for line in lines)
    assert (nginx["level"], nginx["timestamp"]) == ("fatal", "2026-03-05T10:12:01Z")
    assert nginx["fields"] == {"detected.level_source": "bracket", "detected.time_format": "yyyy/MM/dd HH:mm:ss"}
    assert (hdfs["level"], hdfs["timestamp"]) == ("warn", "2008-11-09T20:36:15Z")
    assert sshd["level"] == "error"
    assert sshd["timestamp"].endswith("-12-10T06:55:46Z")
    assert prose["level"] == "info"
    assert prose["timestamp"] == prose["received_at"]
    errors = mintlog.search(key, {"query": "service:text-e2e AND level:error", "from": "2000-01-01T00:00:00Z"})
    assert [event["message"] for event in errors.json()["events"]] == [lines[2]]


def test_logfmt_numbers_are_numbers_for_metrics_and_field_discovery(running: tuple[MintlogProcess, str]) -> None:
    mintlog, key = running
    durations = [12, 30, 7.5, 40]
    events = [{"service": "logfmt-e2e", "message": f"msg=served duration_ms={value} code=007"} for value in durations]
    assert mintlog.ingest(key, {"events": events}).status_code == 202
    mintlog.wait_for_total(key, {"query": "service:logfmt-e2e"}, len(durations))

    aggregate = api(
        mintlog,
        key,
        "POST",
        "/v1/logs/aggregate",
        {
            "query": "service:logfmt-e2e",
            "metrics": [
                {"op": "avg", "field": "fields.duration_ms", "name": "mean"},
                {"op": "percentiles", "field": "fields.duration_ms", "percents": [50], "name": "p"},
            ],
        },
    )
    fields = api(mintlog, key, "GET", "/v1/logs/fields", query="service:logfmt-e2e")

    assert aggregate.status_code == 200, aggregate.text
    assert aggregate.json()["metrics"]["mean"] == sum(durations) / len(durations)
    assert aggregate.json()["metrics"]["p"] is not None
    types = {field["name"]: field["type"] for field in fields.json()["fields"]}
    assert types["fields.duration_ms"] == "number"
    assert types["fields.code"] == "string"


def test_the_tenants_time_zone_applies_to_zone_less_times(running: tuple[MintlogProcess, str]) -> None:
    mintlog, key = running
    patched = api(mintlog, key, "PATCH", "/v1/logs/parsing", {"time_zone": "Europe/Berlin"})
    refused = api(mintlog, key, "PATCH", "/v1/logs/parsing", {"time_zone": "Mars/Olympus"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["time_zone"] == "Europe/Berlin"
    assert refused.status_code == 422
    assert refused.json()["field"] == "time_zone"
    assert api(mintlog, key, "GET", "/v1/logs/parsing").json()["time_zone"] == "Europe/Berlin"
    assert api(mintlog, key, "GET", "/v1/admin/tenants/demo").json()["time_zone"] == "Europe/Berlin"
    audit = api(mintlog, key, "GET", "/v1/audit", limit="50").json()["items"]
    assert {("parsing.update", "ok"), ("parsing.update", "error")} <= {(e["action"], e["result"]) for e in audit}

    # Recent days (inside the tenant's 30-day retention by event time), one time read from the line and one
    # from the field; the expected instants come from zoneinfo, so this holds in summer and winter time alike.
    line_day, field_day = ((datetime.now(UTC) - timedelta(days=days)).date() for days in (2, 3))
    line, offset_line = f"{line_day} 12:00:00,000 INFO local", f"{line_day}T12:00:00Z INFO with an offset"
    events = [
        {"service": "zone-e2e", "message": line},
        {"service": "zone-e2e", "message": "m", "timestamp": f"{field_day} 12:00:00"},
        {"service": "zone-e2e", "message": offset_line},
    ]
    assert mintlog.ingest(key, {"events": events}).status_code == 202
    found = mintlog.wait_for_total(key, {"query": "service:zone-e2e", "from": "now-7d"}, 3)
    times = {event["message"]: event["timestamp"] for event in found["events"]}
    assert times == {
        line: berlin_noon_utc(line_day),
        "m": berlin_noon_utc(field_day),
        offset_line: f"{line_day}T12:00:00Z",
    }
    assert api(mintlog, key, "PATCH", "/v1/logs/parsing", {"time_zone": "UTC"}).status_code == 200


def test_extraction_rules_are_validated_applied_limited_and_audited(running: tuple[MintlogProcess, str]) -> None:
    mintlog, key = running
    base = "/v1/logs/extraction-rules"
    bad_regex = api(mintlog, key, "POST", base, {"name": "bad", "pattern": "(?P<x>[a-"})
    backtracking = api(mintlog, key, "POST", base, {"name": "slow", "pattern": "(?P<x>(a|aa)+)$"})
    bad_format = api(
        mintlog, key, "POST", base, {"name": "fmt", "pattern": r"(?P<timestamp>\d+)", "timestamp_format": "yyyy"}
    )
    created = api(
        mintlog,
        key,
        "POST",
        base,
        {
            "name": "hpc",
            "pattern": r"^\d+ (?P<node>\S+) \S+ (?P<state>\S+) (?P<timestamp>\d{10}) \d+ (?P<level>[A-Z]+):",
            "service": "hpc-e2e",
        },
    )
    assert [bad_regex.status_code, backtracking.status_code, bad_format.status_code] == [422, 422, 422]
    assert [bad_regex.json()["field"], backtracking.json()["field"], bad_format.json()["field"]] == [
        "pattern",
        "pattern",
        "timestamp_format",
    ]
    assert created.status_code == 201, created.text
    rule = created.json()
    assert rule["kind"] == "regex"
    assert rule["enabled"] is True

    line = "134681 node-246 unix.hw state_change.unavailable 1077804742 1 ERROR: component state change"
    assert mintlog.ingest(key, {"events": [{"service": "hpc-e2e", "message": line}]}).status_code == 202
    event = mintlog.wait_for_total(key, {"query": "service:hpc-e2e", "from": "2004-01-01T00:00:00Z"}, 1)["events"][0]
    assert (event["level"], event["timestamp"]) == ("error", "2004-02-26T14:12:22Z")
    assert event["fields"] == {
        "node": "node-246",
        "state": "state_change.unavailable",
        "detected.level_source": "rule:hpc",
        "detected.time_format": "rule:hpc",
    }

    patched = api(mintlog, key, "PATCH", f"{base}/{rule['id']}", {"enabled": False, "pattern": "(?P<a>"})
    assert patched.status_code == 422
    assert patched.json()["field"] == "pattern"
    patched = api(mintlog, key, "PATCH", f"{base}/{rule['id']}", {"enabled": False})
    assert patched.status_code == 200
    assert patched.json()["enabled"] is False
    second = api(mintlog, key, "POST", base, {"name": "two", "pattern": r"(?P<x>\d+)"})
    third = api(mintlog, key, "POST", base, {"name": "three", "pattern": r"(?P<x>\d+)"})
    assert second.status_code == 201
    assert third.status_code == 409
    assert third.json()["code"] == "too_many_rules"
    listed = api(mintlog, key, "GET", base).json()["items"]
    assert [item["name"] for item in listed] == ["hpc", "two"]
    assert api(mintlog, key, "DELETE", f"{base}/{rule['id']}").status_code == 204
    assert api(mintlog, key, "GET", f"{base}/{rule['id']}").status_code == 404

    audit = api(mintlog, key, "GET", "/v1/audit", limit="50").json()["items"]
    actions = {(entry["action"], entry["result"]) for entry in audit}
    assert {
        ("extraction_rule.create", "ok"),
        ("extraction_rule.create", "error"),
        ("extraction_rule.update", "ok"),
        ("extraction_rule.delete", "ok"),
    } <= actions


def test_the_admin_sets_a_tenants_time_zone(running: tuple[MintlogProcess, str]) -> None:
    mintlog, key = running
    created = api(mintlog, key, "POST", "/v1/admin/tenants", {"name": "Zoned", "time_zone": "Asia/Tokyo"})
    refused = api(mintlog, key, "PATCH", "/v1/admin/tenants/zoned", {"time_zone": "Nowhere/Land"})

    assert created.status_code == 201, created.text
    assert created.json()["time_zone"] == "Asia/Tokyo"
    assert refused.status_code == 422
    assert refused.json()["field"] == "time_zone"
    assert api(mintlog, key, "GET", "/v1/admin/tenants/zoned").json()["time_zone"] == "Asia/Tokyo"
