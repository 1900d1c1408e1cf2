"""Status badges of uptime monitors (Gatus/Kuma-style SVG): what a badge says and how it is drawn. Pure code.

Guarantees:
- `render_badge` returns a standalone SVG document whose only text is the label and the message given, both
  XML-escaped (a monitor named `<script>` is drawn as text, never as markup) and the label cut to
  `MAX_LABEL_CHARACTERS`;
- `status_message` and `uptime_message` map a monitor's state or uptime percentage to the message and color
  of the badge, and nothing else of the monitor reaches the badge.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Literal
from xml.sax.saxutils import escape

from mintlog.domain.monitors import MonitorState

__all__ = [
    "BADGE_KINDS",
    "BADGE_WINDOWS",
    "MAX_LABEL_CHARACTERS",
    "BadgeKind",
    "badge_token_hash",
    "new_badge_token",
    "render_badge",
    "status_message",
    "uptime_message",
]

BadgeKind = Literal["status", "uptime"]
BADGE_KINDS: tuple[BadgeKind, ...] = ("status", "uptime")
BADGE_WINDOWS: dict[str, int] = {"24h": 86_400, "7d": 7 * 86_400, "30d": 30 * 86_400}
"""The `window` a badge of kind `uptime` may ask for, in seconds."""
MAX_LABEL_CHARACTERS = 60

_GREEN, _RED, _BLUE, _GREY, _YELLOW, _ORANGE = "#4c1", "#e05d44", "#007ec6", "#9f9f9f", "#dfb317", "#fe7d37"
_STATE_COLORS: dict[MonitorState, str] = {
    "up": _GREEN,
    "down": _RED,
    "maintenance": _BLUE,
    "paused": _GREY,
    "pending": _GREY,
}
_CHARACTER_WIDTH = 7
_PADDING = 10


def new_badge_token() -> str:
    """A new badge token (`mlb_` and 32 hex digits): the credential of one badge URL."""
    return f"mlb_{secrets.token_hex(16)}"


def badge_token_hash(token: str) -> str:
    """What is stored of a badge token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def status_message(state: MonitorState) -> tuple[str, str]:
    """The message and color of a status badge."""
    return state, _STATE_COLORS[state]


def uptime_message(percent: float | None) -> tuple[str, str]:
    """The message and color of an uptime badge: `99.95%` (two decimals, never rounded up to 100), or `n/a`
    when nothing was measured in the window."""
    if percent is None:
        return "n/a", _GREY
    shown = int(percent * 100) / 100
    color = _GREEN if shown >= 99.9 else _YELLOW if shown >= 99 else _ORANGE if shown >= 95 else _RED
    return f"{shown:.2f}%", color


def _width(text: str) -> int:
    return len(text) * _CHARACTER_WIDTH + 2 * _PADDING


def render_badge(label: str, message: str, color: str) -> str:
    """A flat two-part badge: `label` on grey, `message` on `color`."""
    if len(label) > MAX_LABEL_CHARACTERS:
        label = label[: MAX_LABEL_CHARACTERS - 1] + "…"
    left, right = _width(label), _width(message)
    total = left + right
    quoted = {'"': "&quot;"}
    label_text, message_text = escape(label, quoted), escape(message, quoted)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" '
        f'aria-label="{label_text}: {message_text}">'
        f"<title>{label_text}: {message_text}</title>"
        f'<rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{escape(color, quoted)}"/>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{left / 2:.1f}" y="14">{label_text}</text>'
        f'<text x="{left + right / 2:.1f}" y="14">{message_text}</text>'
        "</g></svg>"
    )
