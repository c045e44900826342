"""The knob scale and the three modes that may change a preference."""

from __future__ import annotations

import math
from typing import Final, Literal

from steertui.errors import ConfigError
from steertui.validation import KNOB_MAX, KNOB_MIN, knob

Mode = Literal["select", "calibrate", "learn"]
MODES: Final[tuple[str, ...]] = ("select", "calibrate", "learn")


def clamp_knob(value: float) -> float:
    """A knob value clipped to -100..100; NaN and infinities are refused."""
    value = float(value)
    if math.isnan(value):
        raise ConfigError("knob value is NaN; expected a number between -100 and 100")
    return max(KNOB_MIN, min(KNOB_MAX, value))


def check_mode(mode: str) -> str:
    """The mode itself, or a ConfigError naming the accepted ones."""
    if mode not in MODES:
        raise ConfigError(
            f"preference mode {mode!r} is unknown; expected one of {', '.join(MODES)}"
        )
    return mode


def parse_knob(text: str) -> float:
    """A knob value typed by a user ('60', '+60', '-35.5'): a finite number in -100..100, else
    a ConfigError (a typed 1e9 or inf is a mistake to report, not a value to clamp)."""
    return knob(text)
