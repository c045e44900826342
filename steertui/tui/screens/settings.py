"""The chat's settings: temperature, max new tokens, seed and a system prompt.

Handed the current `ChatSettings`; answers with `dismiss(new settings)` or `dismiss(None)`.
A bad value is said in one line inside the dialog, which stays open. It also says where each
sampling value in use comes from (the model's generation_config, a known default, steertui's,
the user's setting).
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from steertui.errors import ConfigError
from steertui.tui.chat_settings import ChatSettings

FIELDS = (
    ("temperature", "Temperature (0 = greedy)"),
    ("max_new_tokens", "Max new tokens"),
    ("seed", "Seed (empty = random)"),
    ("system_prompt", "System prompt (empty = none)"),
)


class SettingsScreen(ModalScreen[ChatSettings | None]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="settings.cancel"),
        Binding("ctrl+s", "save", "Save", id="settings.save"),
    ]

    def __init__(
        self,
        settings: ChatSettings,
        temperature: float,
        max_new_tokens: int,
        sources: Sequence[str] = (),
    ) -> None:
        """`temperature` and `max_new_tokens`: what the chat samples with now; `sources`: one
        line per sampling value, with where it came from."""
        super().__init__(classes="dialog-screen")
        self.settings = settings
        self.sources = list(sources)
        self.shown = {
            "temperature": f"{temperature:g}",
            "max_new_tokens": str(max_new_tokens),
            "seed": "" if settings.seed is None else str(settings.seed),
            "system_prompt": settings.system_prompt,
        }

    def compose(self) -> ComposeResult:
        values = self.shown
        with Vertical(classes="dialog"):
            yield Label("Chat settings", classes="dialog-title")
            for name, label in FIELDS:
                yield Label(label)
                yield Input(values[name], id=f"setting-{name}")
            if self.sources:
                yield Static(
                    "Sampling now: " + "; ".join(self.sources),
                    id="settings-sources",
                    classes="dialog-hint",
                    markup=False,
                )
            yield Static("", id="settings-error", classes="dialog-hint", markup=False)
            yield Static("Enter or Ctrl+S saves, Esc cancels.", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one(f"#setting-{FIELDS[0][0]}", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def action_save(self) -> None:
        typed = {name: self.query_one(f"#setting-{name}", Input).value for name, _ in FIELDS}
        try:
            settings = self.settings.with_text(**typed)
        except ConfigError as exc:
            self.query_one("#settings-error", Static).update(Content(str(exc)))
            return
        self.dismiss(settings)

    def action_cancel(self) -> None:
        self.dismiss(None)
