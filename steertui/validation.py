"""Numbers where they enter (a CLI option, a config key, a file's metadata): the one check per
kind, each a `SteertuiError` line `<what>: expected <what is allowed>, got <value>`.

The bounds that more than one layer shares live here too: the knob scale (DESIGN.md: -100 ...
+100), the largest seed (a signed 64-bit integer, what torch's generators take), the longest
answer a command may ask for. Headless: nothing heavy imported.
"""

from __future__ import annotations

import math
from typing import Final

from steertui.errors import ConfigError, SteertuiError

KNOB_MIN: Final = -100.0
KNOB_MAX: Final = 100.0
SEED_MAX: Final = 2**63 - 1
MAX_NEW_TOKENS: Final = 32_768
MAX_BATCH: Final = 4096
ROW_ID_MAX: Final = 2**63 - 1
"""The largest id SQLite stores (a run's, a session's)."""


def _got(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _range(kind: str, lo: float | None, hi: float | None, lo_open: bool = False) -> str:
    def fmt(x: float) -> str:
        return f"{x:g}" if isinstance(x, float) else str(x)

    if lo is not None and hi is not None:
        return f"{kind} in {'(' if lo_open else '['}{fmt(lo)}, {fmt(hi)}]"
    if lo is not None:
        return f"{kind} {'>' if lo_open else '>='} {fmt(lo)}"
    if hi is not None:
        return f"{kind} <= {fmt(hi)}"
    return kind


def number(
    value: object,
    what: str,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    error: type[SteertuiError] = ConfigError,
) -> float:
    """`value` as a finite float within `[lo, hi]` (`(lo, hi]` when `lo_open`); text is parsed.
    Booleans, NaN and infinities are refused."""
    expected = _range("a finite number", lo, hi, lo_open)
    if isinstance(value, str):
        try:
            parsed = float(value.strip())
        except ValueError:
            raise error(f"{what}: expected {expected}, got {_got(value)}") from None
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise error(f"{what}: expected {expected}, got {_got(value)}")
    else:
        try:
            parsed = float(value)
        except OverflowError:
            raise error(f"{what}: expected {expected}, got {_got(value)}") from None
    if (
        not math.isfinite(parsed)
        or (lo is not None and (parsed <= lo if lo_open else parsed < lo))
        or (hi is not None and parsed > hi)
    ):
        raise error(f"{what}: expected {expected}, got {_got(value)}")
    return parsed


def integer(
    value: object,
    what: str,
    lo: int | None = None,
    hi: int | None = None,
    error: type[SteertuiError] = ConfigError,
) -> int:
    """`value` as an int within `[lo, hi]`; text is parsed, booleans and floats are refused."""
    expected = _range("an integer", lo, hi)
    if isinstance(value, str):
        try:
            parsed = int(value.strip())
        except ValueError:
            raise error(f"{what}: expected {expected}, got {_got(value)}") from None
    elif isinstance(value, bool) or not isinstance(value, int):
        raise error(f"{what}: expected {expected}, got {_got(value)}")
    else:
        parsed = int(value)
    if (lo is not None and parsed < lo) or (hi is not None and parsed > hi):
        raise error(f"{what}: expected {expected}, got {_got(value)}")
    return parsed


def knob(
    value: object, what: str = "knob value", error: type[SteertuiError] = ConfigError
) -> float:
    """A knob value as a user types it: a finite number on the knob scale, -100 ... +100."""
    return number(value, what, KNOB_MIN, KNOB_MAX, error=error)


def seed(value: object, what: str = "seed", error: type[SteertuiError] = ConfigError) -> int:
    """A seed: an integer in 0 ... 2**63 - 1."""
    return integer(value, what, 0, SEED_MAX, error=error)
