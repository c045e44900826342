"""Compare: the same prompt answered unsteered and steered, side by side, as one batch of two rows."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Input, Label

from steertui.safe_text import visible
from steertui.tui.messages import AnswerFinished, GenerationFailed, TokenChunk
from steertui.tui.services import PlanLike
from steertui.tui.streaming import StreamRequest, stream_rows
from steertui.tui.widgets.chat_view import AnswerMessage
from steertui.tui.worker_errors import ReportsWorkerErrors

if TYPE_CHECKING:
    from steertui.engine.protocol import ChatEngine
    from steertui.engine.sampling import SamplingParams


class CompareScreen(ReportsWorkerErrors, Screen[None]):
    """Handed the engine, the chat's current plan and sampling; streams both rows itself."""

    BINDINGS = [
        Binding("escape", "stop_or_close", "Stop / back", id="compare.stop_or_close"),
        Binding("ctrl+r,f5", "run", "Run again", id="compare.run"),
    ]

    def __init__(
        self,
        engine: ChatEngine,
        plan: PlanLike | None,
        sampling: SamplingParams | None,
        prompt: str = "",
        steered_title: str = "Steered",
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__()
        self.engine = engine
        self.plan = plan
        self.sampling = sampling
        self.initial = prompt
        self.steered_title = steered_title
        self.clock = clock
        self.request_id = 0
        self.running = False
        self.finished: set[int] = set()
        self.cancel = threading.Event()

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
        self.query_one("#steered-title", Label).update(Content(visible(self.steered_title)))
        if not self.initial:
            self.pane(0).set_footer(
                "Type a prompt above and press Enter: both answers stream here."
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
            await pane.clear()
            pane.set_footer("streaming...")
            pane.start_stream()
        self.running = True
        self.finished = set()
        self.request_id += 1
        self.cancel = threading.Event()
        messages = [{"role": "user", "content": prompt}]
        plans = self.engine.compile([None, self.plan], 2)
        self._stream(self.request_id, [messages, messages], plans, self.cancel)

    @work(thread=True, exclusive=True, exit_on_error=False, group="compare")
    def _stream(
        self,
        request_id: int,
        conversations: list[list[dict[str, str]]],
        plans: object,
        cancel: threading.Event,
    ) -> None:
        request = StreamRequest(request_id, cancel, self.sampling, self.clock)
        stream_rows(self.engine, conversations, plans, request, self.post_message)

    async def on_token_chunk(self, message: TokenChunk) -> None:
        message.stop()
        if message.request_id == self.request_id:
            await self.pane(message.row).write(message.text)

    async def on_answer_finished(self, message: AnswerFinished) -> None:
        message.stop()
        if message.request_id != self.request_id:
            return
        footer = f"{message.n_tokens} tokens"
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

    def on_unmount(self) -> None:
        self.cancel.set()  # closing the screen (or the app) ends its stream at the next token

    def action_stop_or_close(self) -> None:
        if self.running:
            self.cancel.set()
        else:
            self.dismiss()
