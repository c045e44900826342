"""`visible`: model and stored text shown as text; `json_safe`: JSON that decodes exactly."""

from __future__ import annotations

import json

import pytest

from steertui.safe_text import json_safe, visible

DANGEROUS = {chr(c) for c in range(0x20) if c not in (0x09, 0x0A)} | {
    chr(c) for c in range(0x7F, 0xA0)
}


@pytest.mark.parametrize(
    "raw",
    [
        "\x1b]0;pwned\x07",  # OSC 0 (window title), BEL-terminated
        "\x1b]0;pwned\x1b\\",  # OSC 0, ST-terminated
        "\x1b]52;c;cm0gLXJmIH4=\x07",  # OSC 52 (clipboard)
        "\x1b]52;c;cm0gLXJmIH4=\x1b\\",
        "\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\",  # OSC 8 hyperlink
        "\x1b[2J\x1b[H",  # clear screen, cursor home
        "\x1b[31mred\x1b[0m",
        "\x1bc",  # full reset
        "\x9b2J",  # 8-bit CSI
        "\x9d0;pwned\x9c",  # 8-bit OSC and ST
        "a\x00b\x08c\x7fd\x85e",
    ],
)
def test_nothing_a_terminal_obeys_gets_through(raw: str) -> None:
    shown = visible(f"before {raw} after")
    assert not DANGEROUS & set(shown), repr(shown)
    assert shown.startswith("before ") and shown.endswith(" after")


def test_an_unterminated_sequence_is_harmless() -> None:
    assert not DANGEROUS & set(visible("before \x1b]0;unterminated after"))
    assert visible("before \x1b]0;unterminated").startswith("before")


def test_text_newlines_and_tabs_are_kept() -> None:
    text = "Plan:\n\t1. noodles — ¥800\n\t2. 寿司 🍣\n[bold]not markup[/bold]"
    assert visible(text) == text


def test_carriage_returns_cannot_overwrite_a_line() -> None:
    assert "\r" not in visible("safe\rEVIL\r\nnext")
    assert visible("a\r\nb") == "a\nb"


def test_stray_controls_are_made_visible_not_silently_dropped() -> None:
    assert visible("a\x00b") != "ab" and "\x00" not in visible("a\x00b")


def test_json_safe_decodes_to_the_exact_text() -> None:
    raw = "t\x1b]52;c;eA==\x07 \x9b2J \x7f é 寿司"
    encoded = json_safe(json.dumps({"text": raw}, ensure_ascii=False))
    assert not DANGEROUS & set(encoded)
    assert json.loads(encoded)["text"] == raw
    assert "é 寿司" in encoded  # readable text stays readable


def test_an_unterminated_osc_hides_no_more_than_its_line() -> None:
    from steertui.safe_text import visible

    assert visible("a\x1b]0;never ends\nthe rest of the answer") == "a\nthe rest of the answer"
