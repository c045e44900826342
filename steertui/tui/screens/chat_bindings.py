"""The chat screen's key bindings: each with an F-key or Ctrl fallback that terminals pass
through, and a `tooltip` that is its help line in the command palette (the palette and the help
screen are made from these, so a key is written once)."""

from __future__ import annotations

from typing import Any

from textual.binding import Binding, BindingType


def _key(keys: str, action: str, description: str, tip: str, **options: Any) -> Binding:
    """A binding whose `tooltip` is the palette's help line (the palette is made from these)."""
    return Binding(keys, action, description, tooltip=tip, **options)


CHAT_BINDINGS: list[BindingType] = [
    _key("escape", "stop", "Stop", "Stop the answer being generated", id="chat.stop"),
    Binding("ctrl+j", "send", "Send", show=False, id="chat.send"),
    _key(
        "ctrl+r,f5",
        "regenerate",
        "Regenerate",
        "Answer the last message again",
        id="chat.regenerate",
    ),  # fmt: skip
    _key(
        "ctrl+l,f4",
        "edit_last",
        "Edit last",
        "Put the last message back in the prompt",
        show=False,
        id="chat.edit_last",
    ),  # fmt: skip
    _key(
        "ctrl+y,f6",
        "copy_answer",
        "Copy",
        "Copy the last answer: OSC 52 and a file",
        show=False,
        id="chat.copy",
    ),  # fmt: skip
    _key(
        "ctrl+o,f2",
        "app.sessions",
        "Sessions",
        "List, open, rename, delete, search sessions",
        id="chat.sessions",
    ),  # fmt: skip
    _key(
        "ctrl+t,f3",
        "compare",
        "Compare",
        "Unsteered and steered answers side by side",
        show=False,
        id="chat.compare",
    ),  # fmt: skip
    _key(
        "ctrl+g,f7",
        "app.autosteer",
        "AutoSteer",
        "Search runs, live progress, apply the best",
        show=False,
        id="chat.autosteer",
    ),  # fmt: skip
    _key(
        "ctrl+b,f8",
        "pick_dimensions",
        "Knobs",
        "Add or remove dimensions (the knobs)",
        id="chat.knobs",
    ),  # fmt: skip
    _key(
        "ctrl+n",
        "new_session",
        "New session",
        "Start a new conversation",
        show=False,
        id="chat.new_session",
    ),  # fmt: skip
    _key(
        "f9",
        "calibrate",
        "Calibrate",
        "Find a dimension's value from A/B answers",
        show=False,
        id="chat.calibrate",
    ),  # fmt: skip
    _key(
        "ctrl+f",
        "profile",
        "Profile",
        "See and edit the learned preferences",
        show=False,
        id="chat.profile",
    ),  # fmt: skip
    _key(
        "ctrl+up,alt+up",
        "thumbs(1)",
        "Thumbs up",
        "The last answer was good",
        show=False,
        id="chat.thumbs_up",
    ),  # fmt: skip
    _key(
        "ctrl+down,alt+down",
        "thumbs(-1)",
        "Thumbs down",
        "The last answer was not what I wanted",
        show=False,
        id="chat.thumbs_down",
    ),  # fmt: skip
    _key(
        "f10,ctrl+backslash",
        "toggle_panel",
        "Side panel",
        "Fold or unfold the knobs and layers panel",
        show=False,
        id="chat.toggle_panel",
    ),  # fmt: skip
    _key(
        "ctrl+x",
        "refuse_learning",
        "Refuse learn",
        "Keep the knobs as they are when LEARN proposes a change",
        priority=True,
        id="chat.refuse_learning",
    ),  # fmt: skip
    _key(
        "ctrl+s,f11",
        "settings",
        "Settings",
        "Temperature, max tokens, seed, system prompt",
        show=False,
        id="chat.settings",
    ),  # fmt: skip
    _key("f1", "app.help", "Help", "Every key binding", id="chat.help"),
]
