"""The conversation: user messages as plain text, answers as streaming Markdown.

User text is shown as `Content` (never parsed as markup); answers go through the Markdown
widget, which renders Markdown but never interprets Rich markup. Everything shown passes
through `visible` first, so an answer's escape sequences (OSC 0 title, OSC 52 clipboard,
clear screen) reach the terminal as harmless text; `.text` keeps the raw text that is stored.
The view is anchored to the bottom, so it follows a streaming answer only while the user has
not scrolled up.

While an answer streams, its fragments reach the Markdown widget at most `STREAM_INTERVAL`
apart: every append grows the answer, and a grown answer costs a layout and a repaint of the
whole chat, so appending at token rate (or the worker's 30 Hz) keeps the event loop busy and a
key press waits behind it. Textual's `MarkdownStream` then re-parses only the last block.
"""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.timer import Timer
from textual.widgets import Markdown, Static
from textual.widgets.markdown import MarkdownStream

from steertui.safe_text import visible

STREAM_INTERVAL = 0.1  # seconds between two appends to a streaming answer (10 per second)


class UserMessage(Static):
    """A message the user sent."""

    def __init__(self, text: str) -> None:
        super().__init__(Content(visible(text)), markup=False)
        self.text = text


class AnswerMessage(Vertical):
    """One answer: Markdown body streamed token by token, then a one-line footer."""

    def __init__(self, text: str = "", footer: str = "", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.text = text
        self._footer = footer
        self._stream: MarkdownStream | None = None
        self._pending: list[str] = []
        self._flush_timer: Timer | None = None
        self._last_flush = 0.0

    def compose(self) -> ComposeResult:
        yield Markdown(visible(self.text))
        yield Static(Content(visible(self._footer)), classes="answer-footer", markup=False)

    @property
    def body(self) -> Markdown:
        return self.query_one(Markdown)

    def start_stream(self) -> None:
        self._stream = Markdown.get_stream(self.body)

    async def write(self, fragment: str) -> None:
        self.text += fragment
        if self._stream is None:
            return
        # per fragment: a sequence split across two fragments is harmless in both halves,
        # and `finish` renders the whole answer through `visible` once more
        self._pending.append(visible(fragment))
        if self._flush_timer is not None:
            return  # an append is already due: this fragment goes with it
        wait = self._last_flush + STREAM_INTERVAL - time.monotonic()
        if wait <= 0:
            await self._flush()
        else:
            self._flush_timer = self.set_timer(wait, self._flush)

    async def _flush(self) -> None:
        self._flush_timer = None
        if self._stream is None or not self._pending:
            return
        chunk = "".join(self._pending)
        self._pending.clear()
        self._last_flush = time.monotonic()
        await self._stream.write(chunk)

    async def finish(self, footer: str) -> None:
        """Stop streaming and render the whole answer once, so Markdown is parsed whole."""
        if self._flush_timer is not None:
            self._flush_timer.stop()
            self._flush_timer = None
        self._pending.clear()
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        await self.body.update(visible(self.text))
        self.set_footer(footer)

    def set_footer(self, footer: str) -> None:
        self._footer = footer
        self.query_one(".answer-footer", Static).update(Content(visible(footer)))


class ChatView(VerticalScroll):
    """The scrolling list of messages."""

    can_focus = True

    def on_mount(self) -> None:
        self.anchor()

    async def add_user(self, text: str) -> UserMessage:
        message = UserMessage(text)
        await self.mount(message)
        return message

    async def add_answer(self, text: str = "", footer: str = "") -> AnswerMessage:
        answer = AnswerMessage(text, footer)
        await self.mount(answer)
        return answer

    def last_answer(self) -> AnswerMessage | None:
        answers = self.query(AnswerMessage)
        return answers.last() if answers else None

    def last_user(self) -> UserMessage | None:
        users = self.query(UserMessage)
        return users.last() if users else None
