"""A notification as a multipart email (plain text and HTML). Pure code.

Guarantees:
- the subject is `[SEVERITY] <headline>: <title>`, on one line (line breaks in a title become spaces);
- every value taken from the incident, the alert or the logs is HTML-escaped in the HTML part (links too:
  only `http(s)` links become anchors), so a log line cannot inject markup;
- the `Message-ID` is derived from the delivery id, the same on every attempt, so a mail system that saw an
  attempt already may drop the duplicate;
"""

from __future__ import annotations

import html
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

from mintlog.domain.notification_text import NotificationText

__all__ = ["email_message", "subject_of"]


def subject_of(text: NotificationText) -> str:
    """`[CRITICAL] Incident triggered: high-errors`, on one line."""
    subject = f"[{text.severity.upper()}] {text.headline}: {text.title}"
    return " ".join(subject.split())[:250]


def _links(text: NotificationText) -> list[tuple[str, str]]:
    links = [
        ("Acknowledge", text.acknowledge_url),
        ("Resolve", text.resolve_url),
        ("Open the incident", text.incident_url),
    ]
    return [(label, url) for label, url in links if url]


def _plain(text: NotificationText) -> str:
    lines = [
        f"{text.headline}: {text.title}",
        "",
        f"Severity: {text.severity}",
        f"Status: {text.status}",
        f"Source: {text.source}",
    ]
    if text.incident_id:
        lines.append(f"Incident: {text.incident_id}")
    lines += [f"{label}: {value}" for label, value in text.times]
    if text.summary:
        lines += ["", text.summary]
    links = _links(text)
    if links:
        lines.append("")
        lines += [f"{label}: {url}" for label, url in links]
    return "\n".join(lines) + "\n"


def _html(text: NotificationText) -> str:
    escape = html.escape
    rows = [("Severity", text.severity), ("Status", text.status), ("Source", text.source)]
    if text.incident_id:
        rows.append(("Incident", text.incident_id))
    rows += text.times
    table = "".join(f"<tr><th align='left'>{escape(name)}</th><td>{escape(value)}</td></tr>" for name, value in rows)
    summary = f"<pre>{escape(text.summary)}</pre>" if text.summary else ""
    anchors = " | ".join(
        f'<a href="{escape(url, quote=True)}">{escape(label)}</a>'
        for label, url in _links(text)
        if url.startswith(("https://", "http://"))
    )
    actions = f"<p>{anchors}</p>" if anchors else ""
    return (
        "<!DOCTYPE html><html><body>"
        f"<h2>{escape(text.headline)}: {escape(text.title)}</h2>"
        f"<table>{table}</table>{summary}{actions}"
        "</body></html>"
    )


def email_message(
    text: NotificationText, *, from_address: str, recipients: list[str], message_key: str, now: datetime
) -> EmailMessage:
    """The email of a notification: text and HTML alternatives, `Message-ID` `<message_key@mintlog>`."""
    message = EmailMessage()
    message["Subject"] = subject_of(text)
    message["From"] = from_address
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = f"<{message_key}@mintlog>"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(_plain(text))
    message.add_alternative(_html(text), subtype="html")
    return message
