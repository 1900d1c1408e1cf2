"""On-call people and schedules through a real `mintlog run`: CRUD, 422s naming the field, 409 for a person in
use, shifts and who is on call (layers, restrictions, an override), the iCalendar feed parsed by `icalendar`
(and revoked), and 404 for another tenant's objects."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import icalendar
import pytest

from tests.e2e.harness import MintlogProcess

pytestmark = pytest.mark.e2e


class Api:
    def __init__(self, process: MintlogProcess, key: str) -> None:
        self.process = process
        self.key = key

    def __call__(self, method: str, path: str, body: Any = None, **params: str) -> httpx.Response:
        return httpx.request(
            method,
            f"{self.process.api_url}{path}",
            headers={"X-API-Key": self.key},
            json=body,
            params=params or None,
            timeout=30.0,
        )


@pytest.fixture(scope="module")
def apis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Api]]:
    process = MintlogProcess(data_dir=tmp_path_factory.mktemp("oncall") / "data")
    try:
        process.start()
        owner = Api(process, process.bootstrap("oncall-a"))
        other = Api(process, process.bootstrap("oncall-b"))
        made = owner("POST", "/v1/keys", {"name": "reader", "scopes": ["oncall:read"]})
        assert made.status_code == 201, made.text
        yield {"owner": owner, "other": other, "reader": Api(process, made.json()["key"])}
    finally:
        process.cleanup()


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code, body
    return body


def person(api: Api, name: str, **extra: Any) -> dict[str, Any]:
    response = api("POST", "/v1/oncall/people", {"name": name, "email": f"{name.lower()}@example.com"} | extra)
    assert response.status_code == 201, response.text
    return response.json()


def test_people_are_created_listed_updated_and_guarded(apis: dict[str, Api]) -> None:
    owner = apis["owner"]
    ann = person(
        owner,
        "Ann",
        time_zone="Europe/Berlin",
        contact_methods=[{"id": "chat", "type": "chat_webhook", "address": "https://93.184.216.34/hooks/ann"}],
        notification_rules=[
            {"after_minutes": 0, "contact_method_id": "email"},
            {"after_minutes": 5, "contact_method_id": "chat"},
        ],
    )
    assert [method["id"] for method in ann["contact_methods"]] == ["email", "chat"]
    assert ann["contact_methods"][0]["address"] == "ann@example.com"
    assert owner("GET", f"/v1/oncall/people/{ann['id']}").json() == ann

    patched = owner("PATCH", f"/v1/oncall/people/{ann['id']}", {"name": "Ann B."})
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "Ann B."
    assert patched.json()["notification_rules"] == ann["notification_rules"]

    listed = owner("GET", "/v1/oncall/people", limit="1")
    assert listed.status_code == 200
    assert len(listed.json()["items"]) == 1

    bad = {
        "time_zone": ({"name": "X", "email": "x@example.com", "time_zone": "Mars/Olympus"}, "time_zone"),
        "rule": (
            {
                "name": "X",
                "email": "x@example.com",
                "notification_rules": [{"after_minutes": 1, "contact_method_id": "sms"}],
            },
            "notification_rules[0].contact_method_id",
        ),
        "negative": (
            {
                "name": "X",
                "email": "x@example.com",
                "notification_rules": [{"after_minutes": -1, "contact_method_id": "email"}],
            },
            "notification_rules[0].after_minutes",
        ),
        "ssrf": (
            {
                "name": "X",
                "email": "x@example.com",
                "contact_methods": [{"type": "webhook", "address": "http://127.0.0.1:9/x"}],
            },
            "contact_methods[0].address",
        ),
    }
    for body, field in bad.values():
        assert problem(owner("POST", "/v1/oncall/people", body), 422, "validation_failed")["field"] == field

    problem(apis["other"]("GET", f"/v1/oncall/people/{ann['id']}"), 404, "person_not_found")
    problem(apis["other"]("DELETE", f"/v1/oncall/people/{ann['id']}"), 404, "person_not_found")
    problem(apis["reader"]("POST", "/v1/oncall/people", {"name": "Y", "email": "y@example.com"}), 403, "missing_scope")
    assert apis["reader"]("GET", f"/v1/oncall/people/{ann['id']}").status_code == 200

    audit = owner("GET", "/v1/audit", limit="200").json()["items"]
    actions = {(entry["action"], entry["result"]) for entry in audit}
    assert {("person.create", "ok"), ("person.update", "ok"), ("person.create", "error")} <= actions


def test_a_schedule_renders_shifts_answers_who_is_on_call_and_protects_its_people(apis: dict[str, Api]) -> None:
    owner = apis["owner"]
    ann, bob, cat, dan = (person(owner, name)["id"] for name in ("Ann", "Bob", "Cat", "Dan"))
    body = {
        "name": "Primary",
        "time_zone": "Europe/Berlin",
        "layers": [
            {"participants": [ann, bob], "turn": "daily", "rotation_start": "2026-03-27T09:00:00"},
            {
                "participants": [cat],
                "turn": "weekly",
                "rotation_start": "2026-03-23T00:00:00",
                "restrictions": [{"start": "12:00", "end": "13:00", "days": ["sat"]}],
            },
        ],
    }
    created = owner("POST", "/v1/oncall/schedules", body)
    assert created.status_code == 201, created.text
    schedule = created.json()
    path = f"/v1/oncall/schedules/{schedule['id']}"

    override = owner(
        "POST", f"{path}/overrides", {"person_id": dan, "start": "2026-03-30T06:00:00Z", "end": "2026-03-30T08:00:00Z"}
    )
    assert override.status_code == 201, override.text

    shifts = owner("GET", f"{path}/shifts", **{"from": "2026-03-27T08:00:00Z", "to": "2026-03-31T07:00:00Z"})
    assert shifts.status_code == 200, shifts.text
    table = [(item["person_name"], item["start"], item["end"]) for item in shifts.json()["shifts"]]
    assert table == [
        ("Ann", "2026-03-27T08:00:00Z", "2026-03-28T08:00:00Z"),
        ("Bob", "2026-03-28T08:00:00Z", "2026-03-28T11:00:00Z"),
        ("Cat", "2026-03-28T11:00:00Z", "2026-03-28T12:00:00Z"),  # Saturday 12:00-13:00 CET
        ("Bob", "2026-03-28T12:00:00Z", "2026-03-29T07:00:00Z"),  # 09:00 CEST after the change
        ("Ann", "2026-03-29T07:00:00Z", "2026-03-30T06:00:00Z"),
        ("Dan", "2026-03-30T06:00:00Z", "2026-03-30T08:00:00Z"),  # across the 07:00Z hand-off
        ("Bob", "2026-03-30T08:00:00Z", "2026-03-31T07:00:00Z"),
    ]
    on_call = owner("GET", f"{path}/on-call", at="2026-03-30T07:30:00Z")
    assert [item["id"] for item in on_call.json()["people"]] == [dan]
    assert owner("GET", f"{path}/on-call", at="2026-03-26T12:00:00Z").json()["people"] == []

    in_use = problem(owner("DELETE", f"/v1/oncall/people/{dan}"), 409, "person_in_use")
    assert in_use["schedules"] == [schedule["id"]]
    problem(owner("DELETE", f"/v1/oncall/people/{ann}"), 409, "person_in_use")

    problem(
        owner("GET", f"{path}/shifts", **{"from": "2026-01-01T00:00:00Z", "to": "2026-06-01T00:00:00Z"}),
        422,
        "validation_failed",
    )
    for other_path in (path, f"{path}/shifts", f"{path}/on-call", f"{path}/overrides"):
        problem(apis["other"]("GET", other_path), 404, "schedule_not_found")
    problem(apis["other"]("POST", f"{path}/ical-token"), 404, "schedule_not_found")

    assert owner("DELETE", path).status_code == 204
    assert owner("DELETE", f"/v1/oncall/people/{dan}").status_code == 204
    problem(owner("GET", path), 404, "schedule_not_found")


@pytest.mark.parametrize(
    ("layer", "field"),
    [
        ({"participants": []}, "layers[0].participants"),
        ({"participants": ["PERSON", "per_nobody"]}, "layers[0].participants[1]"),
        ({"turn": "custom", "turn_seconds": 0}, "layers[0].turn_seconds"),
        ({"turn": "fortnightly"}, "layers[0].turn"),
        ({"restrictions": [{"start": "10:00", "end": "10:00"}]}, "layers[0].restrictions[0].end"),
        ({"rotation_start": "not a time"}, "layers[0].rotation_start"),
    ],
)
def test_bad_schedules_are_422_naming_the_field(apis: dict[str, Api], layer: dict[str, Any], field: str) -> None:
    owner = apis["owner"]
    someone = person(owner, "Eve")["id"]
    layer = {"participants": [someone], "turn": "daily", "rotation_start": "2026-06-01T09:00:00"} | layer
    layer["participants"] = [someone if item == "PERSON" else item for item in layer["participants"]]
    body = {"name": "Bad", "time_zone": "Europe/Berlin", "layers": [layer]}
    assert problem(owner("POST", "/v1/oncall/schedules", body), 422, "validation_failed")["field"] == field
    body["time_zone"] = "Nowhere/City"
    body["layers"] = [{"participants": [someone], "turn": "daily", "rotation_start": "2026-06-01T09:00:00"}]
    assert problem(owner("POST", "/v1/oncall/schedules", body), 422, "validation_failed")["field"] == "time_zone"


def test_bad_overrides_are_422_naming_the_field(apis: dict[str, Api]) -> None:
    owner = apis["owner"]
    someone = person(owner, "Fay")["id"]
    schedule = owner(
        "POST",
        "/v1/oncall/schedules",
        {
            "name": "O",
            "time_zone": "UTC",
            "layers": [{"participants": [someone], "turn": "weekly", "rotation_start": "2026-06-01T00:00:00"}],
        },
    ).json()
    path = f"/v1/oncall/schedules/{schedule['id']}/overrides"
    cases = [
        ({"person_id": someone, "start": "2026-06-02T00:00:00Z", "end": "2026-06-01T00:00:00Z"}, "end"),
        ({"person_id": "per_nobody", "start": "2026-06-01T00:00:00Z", "end": "2026-06-02T00:00:00Z"}, "person_id"),
        ({"person_id": someone, "start": "2026-06-01T00:00:00", "end": "2026-06-02T00:00:00Z"}, "start"),
    ]
    for body, field in cases:
        assert problem(owner("POST", path, body), 422, "validation_failed")["field"] == field


def test_the_calendar_feed_serves_the_final_shifts_and_stops_when_revoked(apis: dict[str, Api]) -> None:
    owner = apis["owner"]
    gil, hal = person(owner, "Gil")["id"], person(owner, "Hal")["id"]
    today = datetime.now(ZoneInfo("America/New_York")).date()
    body = {
        "name": "Feed",
        "time_zone": "America/New_York",
        "layers": [
            {"participants": [gil, hal], "turn": "weekly", "rotation_start": f"{today - timedelta(days=70)}T09:00:00"}
        ],
    }
    schedule = owner("POST", "/v1/oncall/schedules", body).json()
    minted = owner("POST", f"/v1/oncall/schedules/{schedule['id']}/ical-token")
    assert minted.status_code == 201, minted.text
    feed_path = minted.json()["path"]
    assert owner("GET", f"/v1/oncall/schedules/{schedule['id']}").json()["ical_feed"] is True

    feed = httpx.get(f"{owner.process.api_url}{feed_path}", timeout=30.0)  # no API key
    assert feed.status_code == 200, feed.text
    assert feed.headers["content-type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(feed.content)
    assert [zone["TZID"] for zone in calendar.walk("VTIMEZONE")] == ["America/New_York"]
    events = calendar.walk("VEVENT")
    # 14 days back and 12 weeks ahead of weekly turns: 15 or 16 events, alternating people, weekly at 09:00 local.
    assert 14 <= len(events) <= 16
    assert len({str(event["UID"]) for event in events}) == len(events)
    summaries = [str(event["SUMMARY"]) for event in events]
    assert summaries[:4] in (["On call: Gil", "On call: Hal"] * 2, ["On call: Hal", "On call: Gil"] * 2)
    inner = events[1:-1]
    for event in inner:
        start, end = event.decoded("DTSTART"), event.decoded("DTEND")
        assert str(start.tzinfo) == "America/New_York"
        assert (start.hour, start.minute, end.hour, end.weekday()) == (9, 0, 9, start.weekday())
        assert end.replace(tzinfo=None) - start.replace(tzinfo=None) == timedelta(days=7)

    again = httpx.get(f"{owner.process.api_url}{feed_path}", timeout=30.0)
    uids = {str(event["UID"]) for event in icalendar.Calendar.from_ical(again.content).walk("VEVENT")}
    assert uids == {str(event["UID"]) for event in events}  # stable: a subscribed calendar updates, never duplicates

    assert owner("DELETE", f"/v1/oncall/schedules/{schedule['id']}/ical-token").status_code == 204
    problem(httpx.get(f"{owner.process.api_url}{feed_path}", timeout=30.0), 404, "feed_not_found")
    problem(httpx.get(f"{owner.process.api_url}/v1/oncall/ical/mlcal_guess.ics", timeout=30.0), 404, "feed_not_found")
