"""Badge SVGs: well-formed, the name escaped as text, and the message and color of each state and uptime."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pytest

from mintlog.domain.uptime_badge import (
    MAX_LABEL_CHARACTERS,
    badge_token_hash,
    new_badge_token,
    render_badge,
    status_message,
    uptime_message,
)

SVG = "{http://www.w3.org/2000/svg}"


def texts(svg: str) -> list[str]:
    root = ElementTree.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return [element.text or "" for element in root.iter(f"{SVG}text")]


def test_a_badge_is_an_svg_with_the_label_and_the_message() -> None:
    svg = render_badge("shop", *status_message("up"))
    assert texts(svg) == ["shop", "up"]
    assert 'fill="#4c1"' in svg


def test_markup_in_a_monitor_name_is_drawn_as_text() -> None:
    name = '<script>alert("x")</script> & "quotes"'
    svg = render_badge(name, "down", "#e05d44")
    assert "<script>" not in svg
    assert texts(svg) == [name, "down"]
    assert ElementTree.fromstring(svg).get("aria-label") == f"{name}: down"


def test_a_long_name_is_cut() -> None:
    (label, _) = texts(render_badge("x" * 500, "up", "#4c1"))
    assert len(label) == MAX_LABEL_CHARACTERS
    assert label.endswith("…")


@pytest.mark.parametrize(
    ("state", "color"),
    [("up", "#4c1"), ("down", "#e05d44"), ("maintenance", "#007ec6"), ("paused", "#9f9f9f"), ("pending", "#9f9f9f")],
)
def test_each_state_has_its_color(state: str, color: str) -> None:
    assert status_message(state) == (state, color)  # type: ignore[arg-type]


def test_uptime_is_shown_with_two_decimals_never_rounded_up_to_a_hundred() -> None:
    assert uptime_message(99.999) == ("99.99%", "#4c1")
    assert uptime_message(100.0) == ("100.00%", "#4c1")
    assert uptime_message(99.5)[1] == "#dfb317"
    assert uptime_message(80.0) == ("80.00%", "#e05d44")
    assert uptime_message(None) == ("n/a", "#9f9f9f")


def test_tokens_are_unique_and_stored_only_as_hashes() -> None:
    first, second = new_badge_token(), new_badge_token()
    assert first != second
    assert first.startswith("mlb_")
    assert badge_token_hash(first) != first
    assert len(badge_token_hash(first)) == 64
