"""How notifications read: the email's subject and escaped HTML, the Slack, Teams and Mattermost payloads, and
the chat format picked for a person's chat-webhook URL."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from mintlog.domain.notification_chat import chat_format_for_url, chat_payload
from mintlog.domain.notification_email import email_message, subject_of
from mintlog.domain.notification_text import NotificationText

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
