"""Small modal dialogs: an error, a one-line text prompt, a yes/no question, a dimension picker."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, SelectionList, Static
from textual.widgets.selection_list import Selection

from steertui.tui.services import DimensionLike


class ErrorModal(ModalScreen[None]):
    """An engine error the user should read; the app keeps running behind it."""

    BINDINGS = [Binding("escape,enter", "dismiss", "Close", id="errormodal.dismiss")]

    def __init__(self, title: str, message: str) -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog error-dialog"):
            yield Label(Content(self.title_text), classes="dialog-title")
            yield Static(Content(self.message), classes="dialog-body")
            yield Button("Close", id="close", variant="error")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None)

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)


class TextPrompt(ModalScreen[str | None]):
    """Ask for one line of text (a title, a model name, a config path)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="textprompt.cancel")]

    def __init__(self, title: str, value: str = "", placeholder: str = "") -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.value = value
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Content(self.title_text), classes="dialog-title")
            yield Input(self.value, placeholder=self.placeholder, id="prompt-input")
            yield Static("Enter accepts, Esc cancels.", classes="dialog-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmModal(ModalScreen[bool]):
    """A yes/no question; `y` or Enter confirms, `n` or Esc declines."""

    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes", id="confirmmodal.answer_true"),
        Binding("n,escape", "answer(False)", "No", id="confirmmodal.answer_false"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__(classes="dialog-screen")
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Content(self.question), classes="dialog-body")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Yes (y)", id="yes", variant="error")
                yield Button("No (n)", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class DimensionPicker(ModalScreen[list[str] | None]):
    """Choose the active dimensions (the knobs) from the vector library."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="dimensionpicker.cancel"),
        Binding("ctrl+s,f8", "accept", "Apply", id="dimensionpicker.accept"),
    ]

    def __init__(self, dimensions: Sequence[DimensionLike], active: Sequence[str]) -> None:
        super().__init__(classes="dialog-screen")
        self.dimensions = list(dimensions)
        self.active = list(active)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Knobs: pick the active dimensions", classes="dialog-title")
            yield SelectionList[str](
                *[
                    Selection(
                        Content(f"{d.name}  ({d.negative} ↔ {d.positive})"),
                        d.name,
                        d.name in self.active,
                    )
                    for d in self.dimensions
                ],
                id="dimensions",
            )
            yield Static("Space toggles, Ctrl+S or F8 applies, Esc cancels.", classes="dialog-hint")

    def action_accept(self) -> None:
        chosen = self.query_one(SelectionList).selected
        order = [d.name for d in self.dimensions]
        self.dismiss(sorted(chosen, key=order.index))

    def action_cancel(self) -> None:
        self.dismiss(None)
