"""Model and stored text shown as text: terminal control sequences made harmless.

A model's answer (or a session title, a model id read back from the database) can carry escape
sequences that set the window title (OSC 0), write the clipboard (OSC 52), clear the screen or
move the cursor. Everything that shows such text in a terminal passes it through `visible` first.
The stored text itself is never changed. Headless: no textual, no rich.
"""

from __future__ import annotations

import re

from steertui.errors import SteertuiError

# ESC-introduced sequences: CSI (ESC [ ... final byte), OSC / DCS / SOS / PM / APC strings
# (ESC ] ... terminated by BEL or ST; an unterminated one ends at the line's end, so the rest of
# an answer stays readable), and two-byte escapes.
_ESCAPE = re.compile(
    r"""
    \x1b\[[0-?]*[ -/]*[@-~]?                          # CSI
    | \x1b[\]PX^_][^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?  # OSC, DCS, SOS, PM, APC
    | \x9b[0-?]*[ -/]*[@-~]?                          # 8-bit CSI
    | [\x9d\x90\x98\x9e\x9f][^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?  # 8-bit strings
    | \x1b[ -/]*[0-~]?                                # other escapes (ESC c resets the terminal)
    """,
    re.VERBOSE,
)
# What is left that a terminal acts on: C0 controls but tab and newline, DEL, C1 controls.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _picture(match: re.Match[str]) -> str:
    """A control character as its visible Unicode picture (U+2400 block), DEL and C1 as `?`."""
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)
    return "\ufffd"


def visible(text: str) -> str:
    """`text` with every escape sequence removed and every other control character shown as a
    visible symbol (a carriage return becomes a line break). Tab and newline are kept."""
    text = text.replace("\r\n", "\n")
    text = _ESCAPE.sub("", text)
    text = text.replace("\r", "\n")
    return _CONTROL.sub(_picture, text)


_JSON_RAW = re.compile("[\x7f-\x9f]")


def json_safe(encoded: str) -> str:
    """JSON text from `json.dumps(..., ensure_ascii=False)` with DEL and the C1 controls written
    as `\\u00XX` escapes: the same decoded value, but nothing a terminal acts on.

    `json.dumps` escapes C0 controls (ESC among them) but leaves DEL and C1 raw; in JSON text
    these can only occur inside strings, where the escape means the same character.
    """
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", encoded)


def plain_line(text: str, what: str, limit: int, error: type[SteertuiError]) -> str:
    """`text` (stripped) as one line a user could have typed: not empty, at most `limit`
    characters, and no control character (an escape sequence, a newline, a C1 byte). Else one
    `error` line naming `what`: stored text is kept as entered, so it is checked at entry."""
    line = text.strip()
    if not line:
        raise error(f"{what} cannot be empty")
    if len(line) > limit:
        raise error(f"{what} is {len(line)} characters long: expected at most {limit}")
    if re.search("[\ud800-\udfff]", line):
        raise error(
            f"{what} is not valid UTF-8 text (it holds bytes the terminal could not decode)"
        )
    bad = re.search(r"[\x00-\x1f\x7f-\x9f]", line)
    if bad is not None:
        raise error(
            f"{what} holds the control character {bad.group()!r} at {bad.start() + 1}: "
            "expected plain text"
        )
    return line
