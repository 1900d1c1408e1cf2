"""A notification as the JSON an incoming webhook of Slack, Mattermost or Microsoft Teams accepts. Pure code.

Formats (`chat_format`):
- `slack`: `{"text", "blocks"}` (header, fields, the summary as a code block, link buttons); `text` is the
  notification's fallback. Mattermost accepts it too.
- `mattermost`: `{"text", "attachments": [{"fallback", "color", "title", "text", "fields"}]}`.
- `teams`: a message with one Adaptive Card (version 1.4) attachment, as Teams incoming webhooks and
  Workflows ("When a Teams webhook request is received") accept.

Escaping: Slack's `&`, `<`, `>` in mrkdwn; a summary is shown in a code block whose fences it cannot close;
links become buttons only for http(s) URLs.
"""

from __future__ import annotations

from typing import Any

import msgspec

from mintlog.domain.channels import ChatFormat
from mintlog.domain.notification_email import subject_of
from mintlog.domain.notification_text import NotificationText

__all__ = ["chat_format_for_url", "chat_payload"]

_encoder = msgspec.json.Encoder()
_COLORS = {"critical": "#d00000", "error": "#e85d04", "warning": "#ffba08", "info": "#3a86ff"}
_RESOLVED_COLOR = "#2a9d8f"
_SLACK_HEADER_CHARS = 150
_SLACK_TEXT_CHARS = 2900


def _color(text: NotificationText) -> str:
    if text.status == "resolved":
        return _RESOLVED_COLOR
    return _COLORS.get(text.severity.lower(), "#6c757d")


def _slack_escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _fenced(value: str) -> str:
    return "```\n" + value.replace("```", "`\u200b``") + "\n```"


def _links(text: NotificationText) -> list[tuple[str, str]]:
    links = [("Acknowledge", text.acknowledge_url), ("Resolve", text.resolve_url), ("Open", text.incident_url)]
    return [(label, url) for label, url in links if url and url.startswith(("https://", "http://"))]


def _facts(text: NotificationText) -> list[tuple[str, str]]:
    facts = [("Severity", text.severity), ("Status", text.status), ("Source", text.source)]
    if text.incident_id:
        facts.append(("Incident", text.incident_id))
    facts += text.times
    return facts


def _slack(text: NotificationText) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": subject_of(text)[:_SLACK_HEADER_CHARS]}},
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": f"*{name}*\n{_slack_escape(value)}"} for name, value in _facts(text)],
        },
    ]
    if text.summary:
        summary = _fenced(_slack_escape(text.summary))[:_SLACK_TEXT_CHARS]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": summary}})
    links = _links(text)
    if links:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": label}, "url": url}
                    for label, url in links
                ],
            }
        )
    return {"text": _slack_escape(subject_of(text)), "blocks": blocks}


def _mattermost(text: NotificationText) -> dict[str, Any]:
    body = _fenced(text.summary) if text.summary else ""
    links = " | ".join(f"[{label}]({url})" for label, url in _links(text))
    return {
        "text": subject_of(text),
        "attachments": [
            {
                "fallback": subject_of(text),
                "color": _color(text),
                "title": f"{text.headline}: {text.title}",
                "text": "\n\n".join(part for part in (body, links) if part),
                "fields": [{"short": True, "title": name, "value": value} for name, value in _facts(text)],
            }
        ],
    }


def _teams(text: NotificationText) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": subject_of(text), "weight": "Bolder", "size": "Medium", "wrap": True},
        {"type": "FactSet", "facts": [{"title": name, "value": value} for name, value in _facts(text)]},
    ]
    if text.summary:
        body.append({"type": "TextBlock", "text": text.summary, "wrap": True, "fontType": "Monospace"})
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    links = _links(text)
    if links:
        card["actions"] = [{"type": "Action.OpenUrl", "title": label, "url": url} for label, url in links]
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def chat_payload(chat_format: ChatFormat, text: NotificationText) -> bytes:
    """The JSON body of a chat webhook in `chat_format`."""
    if chat_format == "teams":
        return _encoder.encode(_teams(text))
    if chat_format == "mattermost":
        return _encoder.encode(_mattermost(text))
    return _encoder.encode(_slack(text))


def chat_format_for_url(url: str) -> ChatFormat:
    """The format for a person's chat-webhook contact method, which names no format: `teams` for Microsoft
    hosts (`*.webhook.office.com`, Power Automate / Logic Apps), else `slack` (Mattermost accepts it)."""
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    microsoft = ("office.com", "office365.com", "logic.azure.com", "powerplatform.com", "powerautomate.com")
    if any(host == suffix or host.endswith("." + suffix) for suffix in microsoft):
        return "teams"
    return "slack"
