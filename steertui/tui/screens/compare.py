"""Compare: the same prompt answered unsteered and steered, side by side, as one batch of two rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Input, Label

from steertui.safe_text import visible
from steertui.tui.messages import AnswerFinished, GenerationFailed, TokenChunk
from steertui.tui.widgets.chat_view import AnswerMessage

if TYPE_CHECKING:
    from steertui.tui.app import SteerApp


class CompareScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "stop_or_close", "Stop / back"),
        Binding("ctrl+r,f5", "run", "Run again"),
    ]

    app: SteerApp  # type: ignore[assignment]

    def __init__(self, prompt: str = "") -> None:
        super().__init__()
        self.initial = prompt
        self.request_id: int | None = None
        self.running = False

    def compose(self) -> ComposeResult:
        with Vertical(id="compare"):
            yield Input(
                self.initial, placeholder="Prompt to compare (Enter runs)", id="compare-prompt"
            )
            with Horizontal(id="compare-panes"):
                with Vertical(classes="compare-pane"):
                    yield Label("Unsteered", classes="panel-title", id="baseline-title")
                    yield AnswerMessage(id="row-0")
                with Vertical(classes="compare-pane"):
                    yield Label("Steered", classes="panel-title", id="steered-title")
                    yield AnswerMessage(id="row-1")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        knobs = ", ".join(f"{k} {v:+.0f}" for k, v in self.app.knob_values.items() if v)
        self.query_one("#steered-title", Label).update(
            Content(visible(f"Steered: {knobs or 'all knobs at 0'}"))
        )

    def pane(self, row: int) -> AnswerMessage:
        return self.query_one(f"#row-{row}", AnswerMessage)

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        await self.action_run()

    async def action_run(self) -> None:
        prompt = self.query_one(Input).value.strip()
        if not prompt:
            self.notify("Type a prompt to compare.", severity="warning")
            return
        if self.running:
            self.notify("A comparison is running: Esc stops it.", severity="warning")
            return
        for row in (0, 1):
            pane = self.pane(row)
            pane.text = ""
            await pane.body.update("")
            pane.set_footer("streaming...")
            pane.start_stream()
        self.running = True
        self.finished: set[int] = set()
        self.request_id = self.app.start_compare(self, prompt)

    async def on_token_chunk(self, message: TokenChunk) -> None:
        message.stop()
        if message.request_id == self.request_id:
            await self.pane(message.row).write(message.text)

    async def on_answer_finished(self, message: AnswerFinished) -> None:
        message.stop()
        if message.request_id != self.request_id:
            return
        footer = f"{len(message.token_ids)} tokens"
        if message.finish_reason == "stopped":
            footer += " · stopped"
        self.pane(message.row).text = message.text
        await self.pane(message.row).finish(footer)
        self.finished.add(message.row)
        if self.finished >= {0, 1}:
            self.running = False

    async def on_generation_failed(self, message: GenerationFailed) -> None:
        message.stop()
        if message.request_id != self.request_id:
            return
        self.running = False
        for row in (0, 1):
            await self.pane(row).finish(f"failed: {message.reason}")
        self.notify(visible(message.reason), title="Compare failed", severity="error", markup=False)

    def action_stop_or_close(self) -> None:
        if self.running:
            self.app.stop_compare()
        else:
            self.dismiss()
