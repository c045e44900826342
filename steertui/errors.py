"""User-facing errors: one line that names the thing and what was expected.

The CLI prints these as `error: <message>` and exits with code 2; the app shows them as a
toast or modal. Anything that is not a `SteertuiError` is a bug and keeps its traceback.
`first_line` is the one formatter that turns any error (ours, SQLite's, transformers') into
one line.
"""

from __future__ import annotations

import re

LONG_NAME = 400
"""A name (a path, a title, a value: any run of characters without a space) longer than this is
cut in the middle when an error line quotes it: the line stays readable and names it still."""
LONG_LINE = 2000
"""No error line is longer than this (a long title with spaces in it is cut the same way)."""
_LONG = re.compile(rf"\S{{{LONG_NAME + 1},}}")


def _cut(text: str) -> str:
    return f"{text[:150]}...{text[-100:]} ({len(text)} characters)"


class SteertuiError(Exception):
    """A user mistake or an environment problem, explained in one line."""


class EngineError(SteertuiError):
    """Model loading, layer discovery, steering or generation failed."""


class VectorError(SteertuiError):
    """A dimension file or a vector file is malformed or does not fit the model."""


class StoreError(SteertuiError):
    """The session database cannot be opened, upgraded or written."""


class ConfigError(SteertuiError):
    """A configuration file (search TOML, ...) or an option has an unknown key or a bad value."""


class PathError(SteertuiError):
    """A path given to read or to write cannot be used as such (a folder, unwritable, missing)."""


def first_line(value: object, limit: int | None = 300) -> str:
    """The first informative line of an error or a message, at most `limit` characters.

    Blank lines and SQLite's `*** in ...` headers are skipped; an exception with no message
    reads as its type's name. The rest of a multi-line message (a library's hints, a nested
    traceback) is dropped: one line is what a user, a status bar or a run's error column shows.
    A name longer than `LONG_NAME`, a line longer than `LONG_LINE` is cut in the middle,
    whatever `limit` is.
    """
    lines = [line.strip() for line in str(value).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith("***")] or lines
    if not useful:
        return type(value).__name__ if isinstance(value, BaseException) else "unknown error"
    text = _LONG.sub(lambda m: _cut(m.group()), useful[0])
    if len(text) > LONG_LINE:
        text = f"{text[: LONG_LINE // 2]}... ({len(text)} characters) ...{text[-LONG_LINE // 4 :]}"
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."


def describe(exc: BaseException) -> str:
    """One line for a failure caught in a background worker: a `SteertuiError` as it is, an
    out-of-memory error said plainly, a bug with its type name (its traceback is not lost:
    the worker logs it)."""
    if isinstance(exc, SteertuiError):
        return first_line(exc)
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        return f"out of memory: {first_line(exc)}"
    return f"{type(exc).__name__}: {first_line(exc)}"
