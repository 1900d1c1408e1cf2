"""How notifications read: the email's subject and escaped HTML, the Slack, Teams and Mattermost payloads, and
the chat format picked for a person's chat-webhook URL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from mintlog.domain.notification_chat import chat_format_for_url, chat_payload
from mintlog.domain.notification_email import email_message, subject_of
from mintlog.domain.notification_text import PERSON_EVENT_TYPE, NotificationText, local_time, text_of
from mintlog.domain.oncall_people import ContactMethod, Person
from mintlog.ports.person_notify import PersonMessage
from mintlog.roles.notify.person_notifier import person_payload

TEXT = NotificationText(
    headline="Incident triggered",
    title="db\r\ndown <b>now</b>",
    severity="critical",
    status="triggered",
    source="high-errors",
    summary="```\n<@channel> & friends",
    incident_id="inc_1",
    acknowledge_url="https://m.example/ack?a=1&b=2",
    resolve_url="javascript:alert(1)",
)


def test_the_subject_is_one_line_with_the_severity_and_title() -> None:
    assert subject_of(TEXT) == "[CRITICAL] Incident triggered: db down <b>now</b>"


def test_the_html_part_escapes_everything_and_links_only_http_urls() -> None:
    message = email_message(
        TEXT, from_address="m@example.com", recipients=["a@example.com"], message_key="msg_1", now=datetime.now(UTC)
    )
    html_part = message.get_body(preferencelist=("html",))
    assert html_part is not None
    html = str(html_part.get_content())  # pyright: ignore[reportUnknownMemberType]
    assert "<b>now</b>" not in html
    assert "&lt;b&gt;now&lt;/b&gt;" in html
    assert "&lt;@channel&gt; &amp; friends" in html
    assert 'href="https://m.example/ack?a=1&amp;b=2"' in html
    assert "javascript:" not in html


def test_slack_escapes_mentions_and_cannot_close_the_summary_fence() -> None:
    slack = json.loads(chat_payload("slack", TEXT))
    summary = slack["blocks"][2]["text"]["text"]
    assert "&lt;@channel&gt; &amp; friends" in summary
    assert summary.count("```") == 2
    [button] = slack["blocks"][3]["elements"]
    assert (button["text"]["text"], button["url"]) == ("Acknowledge", "https://m.example/ack?a=1&b=2")


def test_teams_is_an_adaptive_card_message_with_open_url_actions() -> None:
    teams = json.loads(chat_payload("teams", TEXT))
    [attachment] = teams["attachments"]
    card = attachment["content"]
    assert (teams["type"], attachment["contentType"]) == ("message", "application/vnd.microsoft.card.adaptive")
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert {"title": "Severity", "value": "critical"} in card["body"][1]["facts"]
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Acknowledge", "url": "https://m.example/ack?a=1&b=2"}
    ]


def test_mattermost_has_an_attachment_colored_by_severity() -> None:
    mattermost = json.loads(chat_payload("mattermost", TEXT))
    [attachment] = mattermost["attachments"]
    assert attachment["color"] == "#d00000"
    assert {"short": True, "title": "Source", "value": "high-errors"} in attachment["fields"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://acme.webhook.office.com/webhookb2/x", "teams"),
        ("https://prod-01.westus.logic.azure.com/workflows/x", "teams"),
        ("https://hooks.slack.com/services/x", "slack"),
        ("https://chat.example.com/hooks/x", "slack"),
        ("https://evil-office.com.example/x", "slack"),
    ],
)
def test_a_persons_chat_url_picks_its_format(url: str, expected: str) -> None:
    assert chat_format_for_url(url) == expected


def person_in(time_zone: str) -> Person:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return Person(
        id="per_1",
        tenant_id="acme",
        name="Ada",
        email="ada@example.com",
        time_zone=time_zone,
        contact_methods=[ContactMethod(id="cm_email", type="email", address="ada@example.com")],
        notification_rules=[],
        created_at=at,
        updated_at=at,
    )


def person_text(time_zone: str, *, triggered_at: datetime, sent_at: datetime) -> tuple[bytes, NotificationText]:
    message = PersonMessage(
        incident_id="inc_1", title="db down", severity="critical", source="high-errors", triggered_at=triggered_at
    )
    payload = person_payload(person_in(time_zone), message, sent_at)
    return payload, text_of(PERSON_EVENT_TYPE, payload)


def test_a_persons_message_shows_its_times_in_the_persons_zone_and_keeps_utc_in_the_payload() -> None:
    triggered = datetime(2026, 12, 6, 8, 3, tzinfo=UTC)
    payload, text = person_text("Europe/Berlin", triggered_at=triggered, sent_at=triggered + timedelta(minutes=5))
    assert text.times == (
        ("Triggered", "2026-12-06 09:03 CET (Europe/Berlin)"),
        ("Sent", "2026-12-06 09:08 CET (Europe/Berlin)"),
    )
    body = json.loads(payload)  # the machine payload (a person's plain webhook): UTC ISO 8601, and the zone
    assert body["timestamp"].startswith("2026-12-06T08:08:00")
    assert body["data"]["triggered_at"].startswith("2026-12-06T08:03:00")
    assert body["time_zone"] == "Europe/Berlin"
    email = email_message(
        text, from_address="m@example.com", recipients=["ada@example.com"], message_key="k", now=triggered
    )
    plain = email.get_body(preferencelist=("plain",))
    html_part = email.get_body(preferencelist=("html",))
    assert plain is not None
    assert html_part is not None
    assert "Triggered: 2026-12-06 09:03 CET (Europe/Berlin)" in str(plain.get_content())  # pyright: ignore[reportUnknownMemberType]
    assert "2026-12-06 09:08 CET (Europe/Berlin)" in str(html_part.get_content())  # pyright: ignore[reportUnknownMemberType]
    slack = json.loads(chat_payload("slack", text))
    assert "2026-12-06 09:03 CET (Europe/Berlin)" in json.dumps(slack["blocks"])
    teams = json.loads(chat_payload("teams", text))
    assert {"title": "Triggered", "value": "2026-12-06 09:03 CET (Europe/Berlin)"} in teams["attachments"][0][
        "content"
    ]["body"][1]["facts"]


def test_summer_time_and_other_zones_read_as_their_people_read_them() -> None:
    summer = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert local_time(summer, "Europe/Berlin") == "2026-07-01 14:00 CEST (Europe/Berlin)"
    assert local_time(summer, "America/New_York") == "2026-07-01 08:00 EDT (America/New_York)"
    assert local_time(summer, "Asia/Kolkata") == "2026-07-01 17:30 IST (Asia/Kolkata)"
    assert local_time(summer, "UTC") == "2026-07-01 12:00 UTC"


def test_a_zone_this_host_does_not_know_falls_back_to_utc() -> None:
    at = datetime(2026, 12, 6, 8, 3, tzinfo=UTC)
    _, text = person_text("Mars/Olympus_Mons", triggered_at=at, sent_at=at)
    assert text.times == (("Triggered", "2026-12-06 08:03 UTC"), ("Sent", "2026-12-06 08:03 UTC"))
