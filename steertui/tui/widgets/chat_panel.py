"""The chat panel: the chat view, the notice line and the prompt (with the text typed while a
knob has the focus), the answer being streamed, its worker and its token and finish handling.

It is handed the headless parts it works on (the model slot, the chat session, the steering
state, the preferences) and answers the screen with bubbling messages (`Sent`, `AnswerDone`,
`StatusChanged`, `LoadModel`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Input, Static

from steertui.errors import SteertuiError
from steertui.files import write_atomic
from steertui.search.metrics import collapse_reason
from steertui.tui.chat_session import ChatSession, Finished, OpenedSession, answer_footer
from steertui.tui.learning import LearnFlow
from steertui.tui.messages import (
    AnswerDone,
    AnswerFinished,
    GenerationFailed,
    LoadModel,
    Sent,
    StatusChanged,
    TokenChunk,
)
from steertui.tui.model import ModelSlot
from steertui.tui.preferences import ChatPrefs
from steertui.tui.services import sampling_dict
from steertui.tui.steering import LiveAnswer, SteeringState
from steertui.tui.streaming import StreamRequest, stream_rows
from steertui.tui.widgets.chat_view import AnswerMessage, ChatView, KeyClock
from steertui.tui.worker_errors import ReportsWorkerErrors

CHAT_PLACEHOLDER = "Ask something (Enter sends, Esc stops)"
MODEL_PLACEHOLDER = "Model to load: a hub id, a local path, or toy (Enter loads)"
TYPED_FOCUS_DELAY_S = 0.25  # text typed on a knob: the prompt takes the focus once it pauses


@dataclass
class Generation:
    """The answer being streamed: its request, its messages, its steering and its widget."""

    request_id: int
    cancel: threading.Event
    messages: list[dict[str, str]]
    live: LiveAnswer
    widget: AnswerMessage

    @property
    def tokens(self) -> int:
        """Tokens streamed so far."""
        return self.live.tokens


class ChatPanel(ReportsWorkerErrors, Vertical):
    def __init__(
        self,
        *,
        model: ModelSlot,
        session: ChatSession,
        steering: SteeringState,
        prefs: ChatPrefs,
        learn: LearnFlow,
        keys: KeyClock | None = None,
        clock: Callable[[], float] = time.perf_counter,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.model = model
        self.session = session
        self.steering = steering
        self.prefs = prefs
        self.learn = learn
        self.keys = keys
        self.clock = clock
        self.generation: Generation | None = None
        self._request_id = 0
        self._typing_timer: Timer | None = None
        self._answered = False  # with --compile, the first answer compiles the decode step

    def compose(self) -> ComposeResult:
        yield ChatView(id="chat", keys=self.keys)
        yield Static("", id="notice", markup=False)
        yield Input(placeholder=CHAT_PLACEHOLDER, id="prompt", select_on_focus=False)

    @property
    def chat(self) -> ChatView:
        return self.query_one(ChatView)

    @property
    def prompt(self) -> Input:
        return self.query_one("#prompt", Input)

    def set_notice(self, text: str, error: bool = False) -> None:
        notice = self.query_one("#notice", Static)
        notice.update(Content(text))
        notice.display = bool(text)
        notice.set_class(error, "error")

    def set_model_mode(self, on: bool) -> None:
        """When loading failed the prompt asks for another model instead of a message."""
        self.prompt.placeholder = MODEL_PLACEHOLDER if on else CHAT_PLACEHOLDER
        self.prompt.set_class(on, "model-mode")

    def model_ready(self) -> None:
        self._answered = False
        self.set_model_mode(False)
        self.set_notice("")

    # -- typing through ---------------------------------------------------------------
    async def type_through(self, event: events.Key, focused: Widget | None) -> None:
        """Text typed while a knob or the chat log has the focus goes to the prompt, and Enter
        then sends it. The focus follows once the typing pauses: moved at the first key, the
        keys already queued behind it (a paste, tmux send-keys, a busy loop) would reach the
        prompt by two routes and could arrive out of order."""
        if isinstance(focused, Input):
            return
        if event.key == "enter" and self.prompt.value.strip():
            if focused is None or "enter" not in _bound_keys(focused):
                event.stop()
                self._stop_typing_timer()
                self.prompt.focus()
                await self.prompt.action_submit()
            return
        if not (event.is_printable and event.character):
            return
        typing = self._typing_timer is not None
        if focused is not None and event.key in _bound_keys(focused) and not typing:
            return  # the knob's own keys ("0" resets it), unless text is being typed through
        event.stop()
        self.prompt.insert_text_at_cursor(event.character)
        self._stop_typing_timer()
        self._typing_timer = self.set_timer(TYPED_FOCUS_DELAY_S, self._focus_prompt)

    def _stop_typing_timer(self) -> None:
        if self._typing_timer is not None:
            self._typing_timer.stop()
            self._typing_timer = None

    def _focus_prompt(self) -> None:
        self._typing_timer = None
        self.prompt.focus()

    # -- a turn -----------------------------------------------------------------------
    @on(Input.Submitted, "#prompt")
    async def on_prompt_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text:
            return
        if self.model.state == "failed":
            event.input.value = ""
            self.post_message(LoadModel(text))
            return
        if not self.model.ready:
            self.notify("The model is still loading.", severity="warning")
            return
        if self.generation is not None:
            self.notify("An answer is streaming: Esc stops it first.", severity="warning")
            return
        if self.learn.busy:
            self.notify("Still reading your last reaction; send again in a moment.")
            return
        event.input.value = ""
        await self.send(text)

    async def send(self, text: str) -> None:
        engine = self.model.engine
        assert engine is not None
        reacting = self.session.last is not None and self.session.conversation.ends_with_answer
        self.session.add_user(text, str(engine.model_id), self.steering.knob_values)
        await self.chat.add_user(text)
        self.post_message(Sent(text, reacting))

    async def start_answer(self) -> None:
        engine = self.model.engine
        assert engine is not None
        live = self.steering.begin_answer(lambda plan: engine.compile([plan], 1))
        footer = "streaming... (Esc stops)"
        if engine.fast and not self._answered:
            footer = (
                "compiling the decode step first (--compile: about a minute on a GPU)... " + footer
            )
        self._answered = True
        widget = await self.chat.add_answer(footer=footer)
        widget.start_stream()
        self._request_id += 1
        messages = self.session.conversation.messages()
        if self.prefs.settings.system_prompt:
            messages.insert(0, {"role": "system", "content": self.prefs.settings.system_prompt})
        cancel = threading.Event()
        self.generation = Generation(self._request_id, cancel, messages, live, widget)
        self.post_message(StatusChanged("generating"))
        self._stream_answer(self.generation)

    @work(thread=True, exclusive=True, exit_on_error=False, group="chat")
    def _stream_answer(self, gen: Generation) -> None:
        engine = self.model.engine
        assert engine is not None
        request = StreamRequest(gen.request_id, gen.cancel, self.model.sampling, self.clock)
        stream_rows(engine, [gen.messages], gen.live.handle, request, self.post_message)

    async def on_token_chunk(self, message: TokenChunk) -> None:
        gen = self.generation
        if gen is None or message.request_id != gen.request_id:
            return
        gen.live.tokens += message.tokens
        await gen.widget.write(message.text)

    async def on_answer_finished(self, message: AnswerFinished) -> None:
        gen = self.generation
        if gen is None or message.request_id != gen.request_id:
            return
        self.generation = None
        self.steering.end_answer()
        finished = Finished(
            message.text,
            message.token_ids,
            message.finish_reason,
            message.tokens_per_second,
            message.n_tokens,
        )
        record = self.session.add_answer(
            finished,
            gen.live,
            gen.messages,
            final_knobs=self.steering.applied_knobs(gen.live),
            sampling=sampling_dict(self.model.sampling),
            guard=self._guard_record(message),
        )
        if not gen.widget.is_attached:
            return  # the app is closing: the answer is saved, the screen is gone
        gen.widget.text = message.text
        footer = answer_footer(
            message.n_tokens, finished.tokens_per_second, finished.stopped, record
        )
        steered = gen.live.run_id is not None or any(gen.live.knobs.values())
        reason = collapse_reason(message.text, message.n_tokens, message.finish_reason == "eos")
        if steered and reason is not None:
            footer += f" · collapsed: {reason}: lower the knob, or F9 finds its range"
        await gen.widget.finish(footer)
        engine = self.model.engine
        for notice in engine.take_notices() if engine is not None else []:
            self.notify(notice, title="Model")  # e.g. "single-turn model"
        state = "stopped" if finished.stopped else "ready"
        self.post_message(StatusChanged(state, finished.tokens_per_second))
        self.post_message(AnswerDone())

    async def on_generation_failed(self, message: GenerationFailed) -> None:
        from steertui.tui.screens.dialogs import ErrorModal

        gen = self.generation
        if gen is None or message.request_id != gen.request_id:
            return
        self.generation = None
        self.steering.end_answer()
        if gen.widget.is_attached:
            await gen.widget.finish(f"failed: {message.reason}")
        self.post_message(StatusChanged("error"))
        self.app.push_screen(ErrorModal("Generation failed", message.reason))

    def stop(self) -> bool:
        """Stop the answer streaming at its next token; False when none streams."""
        if self.generation is None:
            return False
        self.generation.cancel.set()
        if self.is_attached:
            self.post_message(StatusChanged("stopping"))
        return True

    def idle_with_answer(self) -> bool:
        if self.generation is not None:
            self.notify("An answer is streaming: Esc stops it first.", severity="warning")
            return False
        if not self.session.conversation.ends_with_answer:
            self.notify("There is no answer yet.", severity="warning")
            return False
        return True

    async def drop_last(self, count: int) -> None:
        """Remove the last `count` messages from the screen, the conversation and the store."""
        self.session.drop_last(count)
        for widget in list(self.chat.children)[-count:]:
            await widget.remove()

    async def edit_last(self) -> None:
        if not self.idle_with_answer():
            return
        text = self.session.conversation.turns[-2].content
        await self.drop_last(2)
        self.prompt.value = text
        self.prompt.cursor_position = len(text)
        self.prompt.focus()

    def copy_answer(self) -> None:
        """OSC 52 first (works over SSH), plus a file in the home in case the terminal ignores it."""
        last = self.session.last
        if last is None:
            self.notify("There is no answer to copy yet.", severity="warning")
            return
        self.app.copy_to_clipboard(last.text)
        path = self.prefs.home.root / "last_answer.md"
        try:
            write_atomic(path, last.text, "the copied answer")
        except SteertuiError as exc:
            self.notify(f"Copied to the clipboard (OSC 52); {exc}", title="Copy")
            return
        self.notify(f"Copied to the clipboard (OSC 52) and saved to {path}", title="Copy")

    async def show(self, opened: OpenedSession | None) -> None:
        """Show a reopened session's messages (None: a new, empty conversation)."""
        self.stop()
        chat = self.chat
        await chat.remove_children()
        for shown in opened.messages if opened is not None else []:
            if shown.role == "user":
                await chat.add_user(shown.content)
            else:
                await chat.add_answer(shown.content, shown.footer)
        chat.scroll_end(animate=False)

    def compare(self) -> None:
        from steertui.tui.screens.compare import CompareScreen

        if not self.model.ready or self.model.engine is None:
            self.notify("The model is not loaded.", severity="warning")
            return
        knobs = ", ".join(f"{k} {v:+.0f}" for k, v in self.steering.knob_values.items() if v)
        screen = CompareScreen(
            self.model.engine,
            self.steering.current_plan(),
            self.model.sampling,
            self.session.conversation.last_user(),
            steered_title=f"Steered: {knobs or 'all knobs at 0'}",
            clock=self.clock,
        )
        self.app.push_screen(screen)

    def _guard_record(self, message: AnswerFinished) -> dict[str, Any] | None:
        """What the coherence guard did, in knob values (each dimension's range)."""
        if message.guard is None or not message.guard.acted:
            return None
        ranges = {d: v.c_max for d, v in self.steering.loaded().items()}
        return message.guard.to_dict(ranges)

    def edit_settings(self) -> None:
        from steertui.tui.chat_settings import ChatSettings
        from steertui.tui.model import resolved_sampling
        from steertui.tui.screens.settings import SettingsScreen

        def chosen(settings: ChatSettings | None) -> None:
            if settings is None:
                return
            problem = self.prefs.save(settings)
            if problem:
                self.notify(problem, severity="warning")
            now = self.model.use_settings(settings)
            self.notify(
                f"Temperature {now.temperature:g}, up to {now.max_new_tokens} tokens, "
                f"seed {now.seed if now.seed is not None else 'random'}"
                + (", with a system prompt." if settings.system_prompt else "."),
                title="Settings",
            )

        now = resolved_sampling(self.prefs.settings, self.model.sampling, self.model.engine)
        screen = SettingsScreen(
            self.prefs.settings,
            now.params.temperature,
            now.params.max_new_tokens,
            sources=now.describe(),
        )
        self.app.push_screen(screen, chosen)


def _bound_keys(widget: Widget) -> set[str]:
    keys: set[str] = set()
    for binding in widget.BINDINGS:
        if isinstance(binding, Binding):
            keys.update(k.strip() for k in binding.key.split(","))
    return keys
