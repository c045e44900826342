"""The chat's preferences, headless: the settings kept in the home, the profile's knob values a
session starts from, and SELECT (a knob moved by hand becomes the profile's value). The store
calls the knob panel and the chat screen need go through here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from steertui.errors import SteertuiError
from steertui.home import Home
from steertui.prefs.profile import starting_knobs
from steertui.prefs.select import select
from steertui.store import Store
from steertui.tui.chat_settings import ChatSettings, save_settings

MAX_DEFAULT_KNOBS = 5


@dataclass(frozen=True)
class StartingKnobs:
    """The knobs a new chat shows: which, at what values, and the `--dims` names unknown."""

    active: list[str]
    values: dict[str, float]
    unknown: list[str]


class ChatPrefs:
    def __init__(
        self,
        store: Store,
        home: Home,
        settings: ChatSettings,
        requested_dims: Sequence[str] | None = None,
    ) -> None:
        self.store = store
        self.home = home
        self.settings = settings
        self.requested_dims = list(requested_dims) if requested_dims else None

    def profile_knobs(self) -> dict[str, float]:
        """The profile's saved values (dimensions with no value are left out)."""
        try:
            return starting_knobs(self.store, sorted(set(self.store.profile())))
        except SteertuiError:
            return {}

    def starting_knobs(self, names: Sequence[str]) -> StartingKnobs:
        """Knobs of a new chat: `--dims`, else those picked last time, else the profile's, else
        the first few; at the profile's values."""
        profile = self.profile_knobs()
        picked = [d for d in self.settings.dimensions or () if d in names]
        unknown: list[str] = []
        if self.requested_dims:
            unknown = [d for d in self.requested_dims if d not in names]
            active = [d for d in self.requested_dims if d in names]
        elif picked:
            active = picked
        elif profile:
            active = [d for d in names if d in profile]
        else:
            active = list(names[:MAX_DEFAULT_KNOBS])
        return StartingKnobs(active, {d: profile.get(d, 0.0) for d in active}, unknown)

    def select(self, moved: Mapping[str, float]) -> str | None:
        """SELECT: knob moves become the profile's values; the first failure's line, or None."""
        for dim, value in moved.items():
            try:
                select(self.store, dim, value, "knob")
            except SteertuiError as exc:
                return f"could not save preference {dim}: {exc}"
        return None

    def save(self, settings: ChatSettings) -> str | None:
        """Keep new settings (in the home too); the failure's line, or None."""
        self.settings = settings
        try:
            save_settings(self.home.root, settings)
        except (OSError, SteertuiError) as exc:
            return f"could not save the chat settings: {exc}"
        return None
