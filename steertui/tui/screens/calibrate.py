"""CALIBRATE: one question answered at d_A and d_B side by side; the user picks, rounds repeat.

    screen = CalibrateScreen(engine, vectors, dimension, question=None, store=None)
    app.push_screen(screen, callback)   # callback(value: float | None)

`dimension` is a Dimension (name, negative, positive, questions) or a name; `vectors` maps
dimension names to `SteeringVector`s (the calibrated one must be there; other dimensions in
`base_knobs` are held where they are in both answers). Each round's two answers are one batched
generate of two rows in a thread worker, which only posts messages. Keys 1-5 (or the buttons)
answer; when the two values are close the mean is shown, and `s` / Save stores it with mode
'calibrate' (when a store was given) and dismisses with the value. Escape dismisses with None.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Static

from steertui.prefs.calibrate import (
    Calibration,
    Choice,
    PlanOf,
    generate_pair,
    questions_for,
    save_calibration,
)
from steertui.tui.worker_errors import ReportsWorkerErrors

DEFAULT_QUESTION = "What would you recommend?"


def _sampling(max_new_tokens: int) -> Any:
    from steertui.engine import SamplingParams

    return SamplingParams(temperature=0.7, max_new_tokens=max_new_tokens)


class CalibrateScreen(ReportsWorkerErrors, Screen[float | None]):
    """Calibrate one dimension by A/B comparison (see the module docstring for the contract)."""

    DEFAULT_CSS = """
    CalibrateScreen { layout: vertical; }
    CalibrateScreen #cal-header { height: auto; padding: 0 1; }
    CalibrateScreen #cal-title { text-style: bold; width: 1fr; }
    CalibrateScreen #cal-question { margin: 0 1; }
    CalibrateScreen #cal-panes { height: 1fr; }
    CalibrateScreen .cal-pane {
        width: 1fr; border: round $primary; padding: 0 1; margin: 0 0 0 1;
    }
    CalibrateScreen .cal-pane:focus-within { border: round $accent; }
    CalibrateScreen #cal-pane-b { margin: 0 1 0 1; }
    CalibrateScreen #cal-choices, CalibrateScreen #cal-finish {
        height: auto; align-horizontal: center; padding: 0 1;
    }
    CalibrateScreen #cal-choices Button, CalibrateScreen #cal-finish Button {
        min-width: 10; margin: 0 1 0 0;
    }
    CalibrateScreen #cal-status { height: auto; padding: 0 1; color: $text-muted; }
    CalibrateScreen #cal-result { height: auto; padding: 0 1; text-style: bold; }
    CalibrateScreen .hidden { display: none; }
    """

    BINDINGS = [
        Binding("1", "choose(1)", "Strongly A", show=False, id="calibrate.choose_1"),
        Binding("2", "choose(2)", "Slightly A", show=False, id="calibrate.choose_2"),
        Binding("3", "choose(3)", "No pref.", show=False, id="calibrate.choose_3"),
        Binding("4", "choose(4)", "Slightly B", show=False, id="calibrate.choose_4"),
        Binding("5", "choose(5)", "Strongly B", show=False, id="calibrate.choose_5"),
        Binding("r", "regenerate", "New answers", id="calibrate.regenerate"),
        Binding("e", "edit_question", "Question", id="calibrate.edit_question"),
        Binding("n", "next_question", "Next question", id="calibrate.next_question"),
        Binding("s", "save", "Save", id="calibrate.save"),
        Binding("escape", "close", "Close", id="calibrate.close"),
    ]

    @dataclass
    class PairReady(Message):
        """The two answers of a round arrived (posted from the worker thread)."""

        round_id: int
        a_text: str
        b_text: str

    @dataclass
    class PairFailed(Message):
        """Generating a round failed; `error` is one line for the user."""

        round_id: int
        error: str

    def __init__(
        self,
        engine: Any,
        vectors: Mapping[str, Any],
        dimension: Any,
        question: str | None = None,
        store: Any = None,
        base_knobs: Mapping[str, float] | None = None,
        sampling: Any = None,
        max_new_tokens: int = 96,
        calibration: Calibration | None = None,
        plan_of: PlanOf | None = None,
    ) -> None:
        super().__init__()
        self.engine = engine
        self.vectors = vectors
        self.dimension = dimension
        self.name_ = str(getattr(dimension, "name", dimension))
        self.negative = str(getattr(dimension, "negative", "") or "A side")
        self.positive = str(getattr(dimension, "positive", "") or "B side")
        shipped = questions_for(dimension) if not isinstance(dimension, str) else []
        self.questions = shipped or [DEFAULT_QUESTION]
        self.question = (question or "").strip() or self.questions[0]
        self.store = store
        self.base_knobs = dict(base_knobs or {})
        self.sampling = sampling if sampling is not None else _sampling(max_new_tokens)
        self.calibration = calibration or Calibration(self.name_)
        self.plan_of = plan_of  # knobs -> a plan, for an engine that is not the vectors' own
        self.round_id = 0
        self.seed = 0
        self.busy = False
        self.cancel = threading.Event()
        self.answers: tuple[str, str] = ("", "")

    # ---- layout -------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Horizontal(id="cal-header"):
            yield Label(
                Content(f"Calibrate {self.name_}: {self.negative} <-> {self.positive}"),
                id="cal-title",
            )
            yield Label("", id="cal-round")
        yield Input(self.question, placeholder="Your question (Enter asks it)", id="cal-question")
        with Horizontal(id="cal-panes"):
            with VerticalScroll(classes="cal-pane", id="cal-pane-a"):
                yield Static("", id="cal-answer-a")
            with VerticalScroll(classes="cal-pane", id="cal-pane-b"):
                yield Static("", id="cal-answer-b")
        yield Static("", id="cal-status")
        with Horizontal(id="cal-choices"):
            for choice in Choice:
                yield Button(f"{choice.value} {choice.label}", id=f"choice-{choice.value}")
        yield Static("", id="cal-result", classes="hidden")
        with Horizontal(id="cal-finish", classes="hidden"):
            yield Button("Save (s)", id="cal-save", variant="success")
            yield Button("Start over", id="cal-restart")
            yield Button("Cancel (Esc)", id="cal-cancel")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#cal-pane-a").focus()
        self._start_round()

    def on_unmount(self) -> None:
        self.cancel.set()

    # ---- rounds -------------------------------------------------------------------------
    def _show_values(self) -> None:
        a, b = self.calibration.values()
        pane_a, pane_b = self.query_one("#cal-pane-a"), self.query_one("#cal-pane-b")
        pane_a.border_title = Content(f"A  {self.name_} {a:+.0f}")
        pane_b.border_title = Content(f"B  {self.name_} {b:+.0f}")
        rounds = len(self.calibration.rounds)
        shown = min(rounds + 1, self.calibration.max_rounds)
        label = "done" if self.calibration.done else f"round {shown} of at most "
        label += "" if self.calibration.done else str(self.calibration.max_rounds)
        self.query_one("#cal-round", Label).update(label)

    def _set_busy(self, busy: bool) -> None:
        self.busy = busy
        for button in self.query("#cal-choices Button").results(Button):
            button.disabled = busy

    def _start_round(self) -> None:
        self.round_id += 1
        self.cancel.set()
        self.cancel = threading.Event()
        self._show_values()
        a, b = self.calibration.values()
        self.query_one("#cal-answer-a", Static).update("generating...")
        self.query_one("#cal-answer-b", Static).update("generating...")
        self.query_one("#cal-status", Static).update(
            Content(f"Asking: {self.question}  (A and B are generated together)")
        )
        self._set_busy(True)
        self._generate(self.round_id, self.question, (a, b), self.seed, self.cancel)

    @work(thread=True, exclusive=True, group="calibrate", exit_on_error=False)
    def _generate(
        self,
        round_id: int,
        question: str,
        values: tuple[float, float],
        seed: int,
        cancel: threading.Event,
    ) -> None:
        try:
            text_a, text_b = generate_pair(
                self.engine,
                self.vectors,
                self.name_,
                question,
                a=values[0],
                b=values[1],
                base_knobs=self.base_knobs,
                sampling=self.sampling,
                cancel=cancel,
                seed=seed,
                plan_of=self.plan_of,
            )
        except Exception as exc:  # shown to the user; the screen stays usable
            self.post_message(self.PairFailed(round_id, f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(self.PairReady(round_id, text_a, text_b))

    def on_calibrate_screen_pair_ready(self, message: PairReady) -> None:
        if message.round_id != self.round_id:
            return  # a stale round (the question changed meanwhile)
        self.answers = (message.a_text, message.b_text)
        self.query_one("#cal-answer-a", Static).update(Content(message.a_text or "(empty)"))
        self.query_one("#cal-answer-b", Static).update(Content(message.b_text or "(empty)"))
        self.query_one("#cal-status", Static).update(
            Content("Which suits you better? Keys 1-5: strongly A ... no preference ... strongly B")
        )
        self._set_busy(False)

    def on_calibrate_screen_pair_failed(self, message: PairFailed) -> None:
        if message.round_id != self.round_id:
            return
        self.query_one("#cal-answer-a", Static).update("")
        self.query_one("#cal-answer-b", Static).update("")
        self.query_one("#cal-status", Static).update(
            Content(f"Could not generate: {message.error}. r tries again, Esc closes.")
        )
        self.busy = False

    # ---- actions ------------------------------------------------------------------------
    def action_choose(self, key: int) -> None:
        if self.busy or self.calibration.done or not any(self.answers):
            return
        self.calibration.answer(key)
        if self.calibration.done:
            self._finish()
        else:
            self.seed += 1
            self._start_round()

    @on(Button.Pressed, "#cal-choices Button")
    def _choice_button(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_choose(int(str(event.button.id).rsplit("-", 1)[1]))

    def _finish(self) -> None:
        self._show_values()
        a, b = self.calibration.values()
        value = self.calibration.result()
        steps = ", ".join(r.choice.label for r in self.calibration.rounds)
        self.query_one("#cal-result", Static).update(
            Content(
                f"Result: {self.name_} = {value:+.0f}  (mean of {a:+.0f} and {b:+.0f}; {steps})"
            )
        )
        where = "to your profile" if self.store is not None else "as this session's knob"
        self.query_one("#cal-status", Static).update(
            Content(f"s saves it {where}; Esc closes without saving.")
        )
        self.query_one("#cal-choices").add_class("hidden")
        self.query_one("#cal-result").remove_class("hidden")
        self.query_one("#cal-finish").remove_class("hidden")
        self.query_one("#cal-save", Button).focus()

    def action_save(self) -> None:
        if not self.calibration.done:
            return
        if self.store is not None:
            value = save_calibration(self.store, self.calibration, self.question)
        else:
            value = self.calibration.result()
        self.dismiss(value)

    def action_regenerate(self) -> None:
        if self.calibration.done:
            return
        self.seed += 1
        self._start_round()

    def action_edit_question(self) -> None:
        self.query_one("#cal-question", Input).focus()

    def action_next_question(self) -> None:
        if self.calibration.done or len(self.questions) < 2:
            return
        index = self.questions.index(self.question) if self.question in self.questions else -1
        self.question = self.questions[(index + 1) % len(self.questions)]
        self.query_one("#cal-question", Input).value = self.question
        self._start_round()

    @on(Input.Submitted, "#cal-question")
    def _question_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if text:
            self.question = text
        self.query_one("#cal-pane-a").focus()
        if not self.calibration.done:
            self._start_round()

    def action_restart(self) -> None:
        self.calibration = Calibration(
            self.name_,
            threshold=self.calibration.threshold,
            max_rounds=self.calibration.max_rounds,
        )
        self.query_one("#cal-choices").remove_class("hidden")
        self.query_one("#cal-result").add_class("hidden")
        self.query_one("#cal-finish").add_class("hidden")
        self.query_one("#cal-pane-a").focus()
        self._start_round()

    @on(Button.Pressed, "#cal-finish Button")
    def _finish_button(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "cal-save":
            self.action_save()
        elif event.button.id == "cal-restart":
            self.action_restart()
        else:
            self.action_close()

    def action_close(self) -> None:
        self.cancel.set()
        self.dismiss(None)
