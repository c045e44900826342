"""User-facing errors: one line that names the thing and what was expected.

The CLI prints these as `error: <message>` and exits with code 2; the app shows them as a
toast or modal. Anything that is not a `SteertuiError` is a bug and keeps its traceback.
"""

from __future__ import annotations


class SteertuiError(Exception):
    """A user mistake or an environment problem, explained in one line."""


class EngineError(SteertuiError):
    """Model loading, layer discovery, steering or generation failed."""


class VectorError(SteertuiError):
    """A dimension file or a vector file is malformed or does not fit the model."""


class StoreError(SteertuiError):
    """The session database cannot be opened, upgraded or written."""


class ConfigError(SteertuiError):
    """A configuration file (search TOML, ...) has an unknown key or a bad value."""


def describe(exc: BaseException) -> str:
    """One line for a failure caught in a background worker: a `SteertuiError` as it is, an
    out-of-memory error said plainly, a bug with its type name (its traceback is not lost:
    the worker logs it)."""
    if isinstance(exc, SteertuiError):
        return str(exc)
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        return f"out of memory: {exc}"
    return f"{type(exc).__name__}: {exc}"
