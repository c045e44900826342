"""Numbers where they enter (a CLI option, a config key, a file's metadata): the one check per
kind, each a `SteertuiError` line `<what>: expected <what is allowed>, got <value>`.

The bounds that more than one layer shares live here too: the knob scale (DESIGN.md: -100 ...
+100), the largest seed (a signed 64-bit integer, what torch's generators take), the longest
answer a command may ask for. Headless: nothing heavy imported.
"""

from __future__ import annotations

import math
import re
from typing import Final

from steertui.errors import ConfigError, SteertuiError

KNOB_MIN: Final = -100.0
KNOB_MAX: Final = 100.0
SEED_MAX: Final = 2**63 - 1
MAX_NEW_TOKENS: Final = 32_768
MAX_BATCH: Final = 4096
ROW_ID_MAX: Final = 2**63 - 1
"""The largest id SQLite stores (a run's, a session's)."""
NAME_RULE: Final = (
    "a name of ASCII letters, digits, '-' and '_' (starting with a letter or digit, "
    "at most 64 characters)"
)
"""What a name is: a dimension's, a vector's method; each becomes part of a file name."""
_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
DTYPE_NAMES: Final = ("float32", "fp32", "bfloat16", "bf16", "float16", "fp16")
"""The `--dtype` names besides `auto` (the engine maps each to a torch dtype)."""


_NUMBER_RE: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER_RE: Final = re.compile(r"[+-]?[0-9]+")


def _got(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _bounds(kind: str, lo: float | None, hi: float | None, lo_open: bool = False) -> str:
    if lo is not None and hi is not None and not lo_open:
        return (
            f"{kind} between {lo:g} and {hi:g}"
            if kind.endswith("number")
            else (f"{kind} between {lo} and {hi}")
        )
    parts = []
    if lo is not None:
        parts.append(
            f"{'>' if lo_open else '>='} {lo:g}" if kind.endswith("number") else f">= {lo}"
        )
    if hi is not None:
        parts.append(f"<= {hi:g}" if kind.endswith("number") else f"<= {hi}")
    return " ".join([kind, " and ".join(parts)]) if parts else kind


def number(
    value: object,
    what: str,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    error: type[SteertuiError] = ConfigError,
) -> float:
    """`value` (an int or a float, not a bool) as a finite float within `[lo, hi]` (`(lo, hi]`
    when `lo_open`); NaN and infinities are refused. Text is `parse_number`'s to read."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise error(f"{what}: expected a finite number, got {_got(value)}")
    try:
        x = float(value)
    except OverflowError:
        x = math.inf
    if not math.isfinite(x):
        raise error(
            f"{what}: expected {_bounds('a finite number', lo, hi, lo_open)}, got {_got(value)}"
        )
    if (lo is not None and (x <= lo if lo_open else x < lo)) or (hi is not None and x > hi):
        raise error(f"{what}: expected {_bounds('a number', lo, hi, lo_open)}, got {_got(value)}")
    return x


def integer(
    value: object,
    what: str,
    lo: int | None = None,
    hi: int | None = None,
    error: type[SteertuiError] = ConfigError,
) -> int:
    """`value` (an int, not a bool or a float) within `[lo, hi]`. Text is `parse_integer`'s."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"{what}: expected an integer, got {_got(value)}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise error(f"{what}: expected {_bounds('an integer', lo, hi)}, got {_got(value)}")
    return int(value)


def _typed(text: str, pattern: re.Pattern[str], zero: bool) -> str:
    """Why `text`, which Python reads as a number, is not one as a user types it; '' if it
    is. Python takes '1_0' (a digit separator), '٣' (any script's digits) and '-0'."""
    body = text.strip()
    if "_" in body:
        return " (no '_' between digits)"
    if not pattern.fullmatch(body):
        return " (ASCII digits only)" if any(c.isdigit() for c in body) else ""
    if zero and body[:1] in "+-":
        return " (zero takes no sign)"
    return ""


def parse_number(
    text: str,
    what: str,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    error: type[SteertuiError] = ConfigError,
) -> float:
    """A number a user typed ('60', '+60', '-35.5', '1e3'), then checked as `number`."""
    try:
        value = float(text.strip())
    except ValueError:
        value = math.nan
    why = _typed(text, _NUMBER_RE, value == 0) if math.isfinite(value) else ""
    if not math.isfinite(value) or why:
        raise error(
            f"{what}: expected {_bounds('a finite number', lo, hi, lo_open)}, got {_got(text)}{why}"
        )
    try:
        return number(value=value, what=what, lo=lo, hi=hi, lo_open=lo_open, error=error)
    except SteertuiError:
        raise error(
            f"{what}: expected {_bounds('a number', lo, hi, lo_open)}, got {_got(text)}"
        ) from None


def parse_integer(
    text: str,
    what: str,
    lo: int | None = None,
    hi: int | None = None,
    error: type[SteertuiError] = ConfigError,
) -> int:
    """An integer a user typed ('3', '-1'), then checked as `integer`."""
    expected = f"{what}: expected {_bounds('an integer', lo, hi)}, got {_got(text)}"
    try:
        value = int(text.strip())
    except ValueError:
        raise error(expected) from None
    why = _typed(text, _INTEGER_RE, value == 0)
    if why:
        raise error(expected + why)
    try:
        return integer(value, what, lo, hi, error)
    except SteertuiError:
        raise error(expected) from None


def knob(
    value: object, what: str = "knob value", error: type[SteertuiError] = ConfigError
) -> float:
    """A knob value as a user types it: a finite number on the knob scale, -100 ... +100."""
    if isinstance(value, str):
        return parse_number(value, what, KNOB_MIN, KNOB_MAX, error=error)
    return number(value, what, KNOB_MIN, KNOB_MAX, error=error)


def dtype_name(value: str, error: type[SteertuiError] = ConfigError) -> str:
    """A `--dtype` (or config `dtype`): `auto` or one of `DTYPE_NAMES`."""
    if value != "auto" and value not in DTYPE_NAMES:
        raise error(f"dtype {value!r} is not known: expected auto, float32, bfloat16 or float16")
    return value


def is_utf8(text: str) -> bool:
    """Whether `text` encodes as UTF-8 (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def utf8_text(value: str, what: str, error: type[SteertuiError] = ConfigError) -> str:
    """`value` if it encodes as UTF-8. A shell hands bytes that are not UTF-8 to Python as lone
    surrogates (PEP 383), which a tokenizer, SQLite or a file write would reject later with a
    traceback; here they are one line that shows the bytes as given."""
    if is_utf8(value):
        return value
    try:
        raw: object = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = value.encode("utf-8", "backslashreplace")
    raise error(f"{what}: expected UTF-8 text, got bytes that are not UTF-8: {_got(raw)}")


def is_name(value: object) -> bool:
    """Whether `value` is a name (`NAME_RULE`); `vectors.dimensions.check_name` says why not."""
    return isinstance(value, str) and _NAME_RE.fullmatch(value) is not None
